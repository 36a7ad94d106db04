/**
 * Test-only hooks on the model layer's `ops`: they wrap an op for the duration of `fn` and restore
 * it afterwards, so tests can pin BatchNorm statistics or switch randomness off without a seam in
 * production code.
 *
 * @module
 */
import { BatchNorm2d, Conv2d, type Ctx, Linear, type Model, ops, Params } from "../models/core.ts";
import { type Tensor, tf } from "../runtime/tf.ts";

/**
 * Runs `fn` with every BatchNorm's momentum at 1, so that a train-mode pass leaves the running
 * statistics equal to those of the batch it saw. With `biasedVariance` the stored variance is the
 * biased one (what training normalises with), so that eval on that batch reproduces the train-mode
 * forward exactly; without it the unbiased variance is kept, as PyTorch's BatchNorm stores it.
 */
export function withBatchNormMomentumOne<T>(fn: () => T, { biasedVariance = false } = {}): T {
  const original = ops.batchNorm;
  ops.batchNorm = (...args: Parameters<typeof original>) => {
    const [x, bn, ctx] = args;
    const momentum = bn.momentum;
    bn.momentum = 1;
    try {
      const y = original(...args);
      if (biasedVariance && ctx.training) {
        const n = x.size / (x.shape[x.rank - 1] as number);
        (bn.runningVar as tf.Variable).assign(tf.mul(bn.runningVar, (n - 1) / n));
      }
      return y;
    } finally {
      bn.momentum = momentum;
    }
  };
  try {
    return fn();
  } finally {
    ops.batchNorm = original;
  }
}

/** Runs `fn` with dropout and stochastic depth off (their draws cannot match another framework's). */
export function withoutRandomness<T>(fn: () => T): T {
  const saved = { dropout: ops.dropout, dropPath: ops.dropPath };
  ops.dropout = (t: Tensor) => t;
  ops.dropPath = (t: Tensor) => t;
  try {
    return fn();
  } finally {
    ops.dropout = saved.dropout;
    ops.dropPath = saved.dropPath;
  }
}

/** How {@link tinyModel} is built. */
export interface TinyModelOptions {
  classes: number;
  /** Input side in pixels (only recorded in the model's options: the network is size-agnostic). */
  size: number;
  /** Channels after the first conv. */
  width: number;
  /** A 3×3 depthwise conv (with bias) after the first block. */
  depthwise?: boolean;
  /** Dropout before the classifier. */
  dropout?: number;
  /** Makes every logit NaN (a divergence that no optimizer step caused). */
  poison?: boolean;
}

/**
 * A network small enough for loop tests on any backend: conv3x3 → BN → ReLU (→ depthwise 3x3) →
 * global average pool (→ dropout) → linear. Parameters are drawn from `seed` in that order.
 */
export function tinyModel(seed: number, o: TinyModelOptions): Model {
  const params = new Params(seed);
  const conv = new Conv2d(params, "conv", { cin: 3, cout: o.width, k: 3 });
  const bn = new BatchNorm2d(params, "bn", o.width);
  const dw = o.depthwise
    ? new Conv2d(params, "dw", { cin: o.width, cout: o.width, k: 3, depthwise: true, bias: true })
    : undefined;
  const fc = new Linear(params, "fc", { nin: o.width, nout: o.classes });
  return {
    id: "tiny",
    options: { numClasses: o.classes, imageSize: o.size, seed },
    params,
    apply(x: Tensor, ctx: Ctx): Tensor {
      let h = ops.act(bn.apply(conv.apply(x, ctx), ctx), "relu");
      if (dw) h = dw.apply(h, ctx);
      h = ops.globalAvgPool(h, ctx);
      if (o.dropout) h = ops.dropout(h, o.dropout, ctx);
      const y = fc.apply(h, ctx);
      return o.poison ? tf.mul(y, NaN) : y;
    },
  };
}
