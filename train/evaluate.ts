/**
 * Full test-set evaluation of a model in eval mode (BatchNorm running statistics): top-1 and top-5
 * accuracy, the mean cross-entropy loss (no label smoothing) and the confusion matrix, all from the
 * logits read back to the CPU once per batch: top-1 is their argmax (the first of equal maxima, as
 * `tf.argMax` and `torch.argmax` take it), top-5 and the loss are computed in float64.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import { assertGpuHealthy } from "../runtime/webgpu.ts";
import type { Ctx, Model } from "../models/core.ts";
import type { EvalBatch } from "../data/types.ts";

/** What {@link evaluateModel} measures. */
export interface EvalResult {
  images: number;
  /** Top-1 accuracy (%). */
  top1: number;
  /** Top-5 accuracy (%), null for 5 classes or fewer (it would be 100 by definition). */
  top5: number | null;
  /** Mean cross-entropy (natural log) of the true class. */
  loss: number;
  /** `confusion[t][p]`: images of true class t predicted as p. */
  confusion: number[][];
  correct: number;
}

/** Per-row statistics of a [rows, classes] logit block (exported for tests). */
export function scoreLogits(
  logits: Float32Array,
  classes: number,
  labels: ArrayLike<number>,
  rows: number,
): { predictions: number[]; top5: boolean[]; losses: number[] } {
  const predictions: number[] = [], top5: boolean[] = [], losses: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    const label = labels[r];
    const target = row[label];
    let above = 0;
    for (let c = 0; c < classes; c++) if (row[c] > target) above++;
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - row[best]);
    predictions.push(best);
    top5.push(above < 5);
    losses.push(Math.log(sum) + row[best] - target);
  }
  return { predictions, top5, losses };
}

/** One batch's logits from an NHWC batch (the caller disposes the result). */
export type Forward = (x: Tensor) => Tensor;

/**
 * Evaluates a forward pass on every batch (only each batch's first `valid` rows count; each batch's
 * `x` is disposed). Top-1, top-5, loss and the confusion matrix come from the logits read back
 * ({@link scoreLogits}). `numClasses` defaults to the width of the logits.
 */
export async function evaluateBatches(
  forward: Forward,
  batches: AsyncIterable<EvalBatch> | Iterable<EvalBatch>,
  numClasses?: number,
): Promise<EvalResult> {
  let confusion: number[][] | undefined;
  let images = 0, correct = 0, top5 = 0, loss = 0;
  for await (const batch of batches) {
    const logits = forward(batch.x);
    const values = (await logits.data()) as Float32Array;
    assertGpuHealthy();
    const classes = logits.shape[1]!;
    tf.dispose([logits, batch.x]);
    numClasses ??= classes;
    if (classes !== numClasses) {
      throw new Error(`model has ${classes} outputs, the dataset ${numClasses} classes`);
    }
    confusion ??= Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    const s = scoreLogits(values, classes, batch.labels, batch.valid);
    const p = s.predictions;
    for (let i = 0; i < batch.valid; i++) {
      const label = batch.labels[i];
      confusion[label][p[i]]++;
      if (p[i] === label) correct++;
      if (s.top5[i]) top5++;
      loss += s.losses[i];
    }
    images += batch.valid;
  }
  return {
    images,
    top1: (100 * correct) / images,
    top5: (numClasses ?? 0) > 5 ? (100 * top5) / images : null,
    loss: loss / images,
    confusion: confusion ?? [],
    correct,
  };
}

/** Evaluates `model` eagerly in eval mode (BatchNorm running statistics) on every batch. */
export function evaluateModel(
  model: Model,
  batches: AsyncIterable<EvalBatch> | Iterable<EvalBatch>,
  numClasses: number,
  ctx: Ctx,
): Promise<EvalResult> {
  const evalCtx: Ctx = { ...ctx, training: false };
  return evaluateBatches((x) => tf.tidy(() => model.apply(x, evalCtx)), batches, numClasses);
}
