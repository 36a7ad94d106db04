/**
 * The model zoo's foundation: named parameters with PyTorch-style seeded initialisation, a forward
 * context, the op layer every model is written in, and the primitive layers (Conv2d, BatchNorm2d,
 * Linear, LayerNorm, Sequential).
 *
 * Model code calls only {@link ops} (never `tf.*` directly). That one seam gives three things:
 * - a shape-only "meta" mode that counts parameters, MACs and fvcore-style FLOPs analytically
 *   (no tensors, no GPU), e.g. at 224 px for `deno task models`;
 * - one place where depthwise convolution and Squeeze-and-Excitation switch between the stock
 *   tfjs ops and the custom WGSL kernels;
 * - one place for layout details (NHWC, PyTorch symmetric padding, 1×1 convs as matmuls).
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import { Rng } from "../runtime/rng.ts";
import {
  batchNormTrain,
  type BatchNormTrainParams,
  depthwiseConv2d,
  type KernelChoice,
  matMul,
  randomMask,
  squeezeExcite,
} from "../kernels/mod.ts";

export type { KernelChoice, Tensor };

/** How a weight is laid out, so it can be exported with PyTorch's layout and name. */
export type WeightLayout =
  | "conv" // tfjs [kh, kw, cin, cout]     <-> torch [cout, cin, kh, kw]
  | "depthwise" // tfjs [kh, kw, C, 1]     <-> torch [C, 1, kh, kw]
  | "linear" // tfjs [in, out]             <-> torch [out, in]
  | "plain"; // same layout in both (biases, norms, scales, embeddings)

/** Initialisation rules (PyTorch semantics; bounds and stds are absolute values). */
export type Init =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "uniform"; bound: number }
  | { kind: "normal"; std: number }
  | { kind: "truncNormal"; std: number; bound: number }
  /**
   * The current values of the already-created entry `of` (same shape), drawing nothing from the
   * RNG: a deep copy, as `nn.TransformerEncoder` clones one initialised layer into each of its layers.
   */
  | { kind: "copy"; of: string };

/** PyTorch's default Conv/Linear init, kaiming_uniform(a=√5): U(±1/√fan_in) (also its bias rule). */
export function torchDefaultInit(fanIn: number): Init {
  return { kind: "uniform", bound: 1 / Math.sqrt(fanIn) };
}

/** A placeholder tensor of meta mode: it has a shape and nothing else. */
export class MetaTensor {
  constructor(readonly shape: number[]) {}
  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** One registered weight or buffer. */
export interface ParamEntry {
  name: string;
  shape: number[];
  layout: WeightLayout;
  trainable: boolean;
  /** The tfjs variable (undefined in meta mode). */
  variable?: tf.Variable;
}

let nextParamsUid = 0;

/**
 * The parameters and buffers of one model, in creation order, named like the reference PyTorch
 * `state_dict` keys. Initial values come from one seeded {@link Rng}, so the same seed gives
 * identical weights. In meta mode no tensor is created; only shapes are recorded.
 */
export class Params {
  readonly entries: ParamEntry[] = [];
  readonly rng: Rng;
  #names = new Set<string>();
  // tfjs variable names are global: suffix them so two models (e.g. a network and its
  // re-parameterised copy) can coexist; entry names stay the state_dict keys.
  readonly #uid = nextParamsUid++;

  constructor(seed: number, readonly meta = false) {
    this.rng = new Rng(seed);
  }

  /** Creates a trainable weight. */
  weight(name: string, shape: number[], init: Init, layout: WeightLayout = "plain"): Tensor {
    return this.#add(name, shape, init, layout, true);
  }

  /** Creates a non-trainable buffer (e.g. BatchNorm running statistics). */
  buffer(name: string, shape: number[], value: number): Tensor {
    return this.#add(name, shape, { kind: "constant", value }, "plain", false);
  }

  /** Number of trainable scalars. */
  countTrainable(): number {
    return this.entries.filter((e) => e.trainable).reduce(
      (n, e) => n + e.shape.reduce((a, b) => a * b, 1),
      0,
    );
  }

  /** The trainable tfjs variables in creation order. */
  trainableVariables(): tf.Variable[] {
    return this.entries.filter((e) => e.trainable && e.variable).map((e) => e.variable!);
  }

  /** Frees every variable. */
  dispose(): void {
    for (const e of this.entries) e.variable?.dispose();
  }

  #add(name: string, shape: number[], init: Init, layout: WeightLayout, trainable: boolean): Tensor {
    if (this.#names.has(name)) throw new Error(`duplicate parameter name ${name}`);
    this.#names.add(name);
    const entry: ParamEntry = { name, shape, layout, trainable };
    if (init.kind === "copy") {
      const src = this.entries.find((e) => e.name === init.of);
      if (!src || src.shape.join() !== shape.join()) {
        throw new Error(`${name}: cannot copy "${init.of}" (missing or shape ${src?.shape} != ${shape})`);
      }
      this.entries.push(entry);
      if (this.meta) return new MetaTensor(shape) as unknown as Tensor;
      entry.variable = ownedVariable(tf.clone(src.variable!), trainable, `${name}#${this.#uid}`);
      return entry.variable;
    }
    this.entries.push(entry);
    if (this.meta) return new MetaTensor(shape) as unknown as Tensor;
    const values = initialValues(shape.reduce((a, b) => a * b, 1), init, this.rng);
    entry.variable = ownedVariable(tf.tensor(values, shape, "float32"), trainable, `${name}#${this.#uid}`);
    return entry.variable;
  }
}

/** A variable over `init`'s data (ref-counted), releasing the `init` handle so nothing leaks. */
function ownedVariable(init: tf.Tensor, trainable: boolean, name: string): tf.Variable {
  const v = tf.variable(init, trainable, name);
  init.dispose();
  return v;
}

function initialValues(n: number, init: Exclude<Init, { kind: "copy" }>, rng: Rng): Float32Array {
  const v = new Float32Array(n);
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      v.fill(1);
      break;
    case "constant":
      v.fill(init.value);
      break;
    case "uniform":
      for (let i = 0; i < n; i++) v[i] = rng.uniformIn(-init.bound, init.bound);
      break;
    case "normal":
      for (let i = 0; i < n; i++) v[i] = rng.normal() * init.std;
      break;
    case "truncNormal":
      for (let i = 0; i < n; i++) {
        let s: number;
        do s = rng.normal() * init.std; while (Math.abs(s) > init.bound);
        v[i] = s;
      }
      break;
  }
  return v;
}

/** Operation counts of one forward pass (meta mode). */
export interface OpCounts {
  /** Multiply-accumulates of convolutions, linear layers and matmuls (attention included). */
  macs: number;
  /**
   * FLOPs as fvcore's FlopCountAnalysis reports them (docs/protocol.md §4.4): conv/linear MACs,
   * batch-norm 2 per element, F.layer_norm 5 per element, adaptive avg-pool 1 per input element,
   * nearest upsample 1 per output element; attention matmuls not counted.
   */
  fvFlops: number;
}

/** State of one forward pass. */
export interface Ctx {
  /** Training mode: batch statistics, dropout, stochastic depth. */
  training: boolean;
  /** Source of dropout / stochastic-depth seeds. */
  rng: Rng;
  /** Which implementation runs depthwise convolutions and SE blocks. */
  kernels: KernelChoice;
  /**
   * Set by the training step (train/step.ts): dropout and stochastic depth draw their masks from
   * this step-scalar block's counter-based RNG (kernels/random.ts), one site number per call.
   * Without it they draw a seed from `rng` (ad-hoc training-mode calls).
   */
  random?: { scalars: Tensor; site: number };
  /** Set in meta mode: operation counts accumulate here. */
  counts?: OpCounts;
  /**
   * Meta mode only: called by every op that takes a context, with the op's name, its tensor inputs,
   * its output and its options, so a forward's shapes can be read (models/inspect.ts) without
   * replacing any op. Ops without a context (elementwise, shape changes, pooling) are seen through
   * the inputs of the ops that consume their results.
   */
  trace?: (op: string, inputs: readonly Tensor[], output: Tensor, options?: object) => void;
}

function isMeta(x: unknown): boolean {
  return x instanceof MetaTensor;
}
function shp(t: Tensor): number[] {
  return t.shape as number[];
}
function meta(shape: number[]): Tensor {
  return new MetaTensor(shape) as unknown as Tensor;
}
function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
function convOut(size: number, k: number, s: number, p: number): number {
  return Math.floor((size + 2 * p - k) / s) + 1;
}
/** Reports a meta-mode op to `ctx.trace` (if any) and returns its output. */
function traced(ctx: Ctx, op: string, inputs: Tensor[], output: Tensor, options?: object): Tensor {
  ctx.trace?.(op, inputs, output, options);
  return output;
}
function seedFrom(ctx: Ctx): number {
  return ctx.rng.nextUint32();
}

/** Options of {@link ops.conv2d}: PyTorch semantics (symmetric zero padding). */
export interface ConvOptions {
  stride?: number | [number, number];
  /** Symmetric padding [ph, pw] (PyTorch `padding`); default (k-1)/2. */
  pad?: number | [number, number];
  /** Depthwise when true (groups = C_in = C_out; weight [kh, kw, C, 1]). */
  depthwise?: boolean;
  bias?: Tensor;
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : v;
}

/**
 * The op layer. Every function works on real tensors and, in meta mode, on {@link MetaTensor}s
 * (shape propagation + counting). Tensors are NHWC float32.
 */
export const ops = {
  /** 2-D convolution (dense or depthwise) with PyTorch-style symmetric padding. */
  conv2d(x: Tensor, w: Tensor, o: ConvOptions, ctx: Ctx): Tensor {
    const [kh, kw, cin, cout0] = shp(w);
    const [sh, sw] = pair(o.stride ?? 1);
    const [ph, pw] = pair(o.pad ?? [(kh - 1) / 2, (kw - 1) / 2]);
    const cout = o.depthwise ? cin : cout0;
    const [b, h, wd] = shp(x);
    if (isMeta(x)) {
      const oh = convOut(h, kh, sh, ph), ow = convOut(wd, kw, sw, pw);
      const macs = b * oh * ow * cout * (o.depthwise ? 1 : cin) * kh * kw;
      ctx.counts!.macs += macs;
      ctx.counts!.fvFlops += macs;
      return traced(ctx, "conv2d", [x, w], meta([b, oh, ow, cout]), o);
    }
    if (o.depthwise) {
      const y = depthwiseConv2d(x, w, { strides: [sh, sw], pad: [ph, pw] }, ctx.kernels);
      return o.bias ? tf.add(y, o.bias) : y;
    }
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && ph === 0 && pw === 0) {
      // 1×1 convs as matmuls: the stock Conv2D backprop-filter kernel is far slower (BENCHMARKS.md).
      const y = matMul(tf.reshape(x, [-1, cin]), tf.reshape(w, [cin, cout]), false, false, ctx.kernels);
      return tf.reshape(o.bias ? tf.add(y, o.bias) : y, [b, h, wd, cout]);
    }
    if (ctx.kernels === "custom" && kh === sh && kw === sw && ph === 0 && pw === 0) {
      // Patchify convs (ConvNeXt stem/downsampling, ConvMixer patch embedding): non-overlapping
      // patches are a reshape + transpose, so the conv is one matmul instead of tfjs's slow
      // Conv2D / Conv2DBackpropFilter pair.
      const ho = Math.floor(h / kh), wo = Math.floor(wd / kw);
      const xc = ho * kh === h && wo * kw === wd ? x : tf.slice(x, [0, 0, 0, 0], [b, ho * kh, wo * kw, cin]);
      const rows = tf.reshape(xc, [b * ho, kh, wo, kw * cin]);
      const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b * ho * wo, kh * kw * cin]);
      const y = matMul(patches, tf.reshape(w, [kh * kw * cin, cout]), false, false, ctx.kernels);
      return tf.reshape(o.bias ? tf.add(y, o.bias) : y, [b, ho, wo, cout]);
    }
    const padded = ph || pw ? tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) : x;
    const y = tf.conv2d(padded as tf.Tensor4D, w as tf.Tensor4D, [sh, sw], "valid");
    return o.bias ? tf.add(y, o.bias) : y;
  },

  /** x[..., in] · w[in, out] (+ bias): a Linear layer over the last axis. */
  linear(x: Tensor, w: Tensor, bias: Tensor | undefined, ctx: Ctx): Tensor {
    const [nin, nout] = shp(w);
    const outShape = [...shp(x).slice(0, -1), nout];
    if (isMeta(x)) {
      const macs = numel(shp(x).slice(0, -1)) * nin * nout;
      ctx.counts!.macs += macs;
      ctx.counts!.fvFlops += macs;
      return traced(ctx, "linear", [x, w], meta(outShape));
    }
    const y = matMul(x.rank === 2 ? x : tf.reshape(x, [-1, nin]), w, false, false, ctx.kernels);
    const yb = bias ? tf.add(y, bias) : y;
    return x.rank === 2 ? yb : tf.reshape(yb, outShape);
  },

  /** Batched matmul a[..., m, k] · b[..., k, n] (attention); counted as MACs, not fvcore FLOPs. */
  matMul(a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean, ctx: Ctx): Tensor {
    if (isMeta(a)) {
      const r = shp(a).length;
      const m = transposeA ? shp(a)[r - 1] : shp(a)[r - 2];
      const k = transposeA ? shp(a)[r - 2] : shp(a)[r - 1];
      const n = transposeB ? shp(b)[r - 2] : shp(b)[r - 1];
      ctx.counts!.macs += numel(shp(a).slice(0, -2)) * m * n * k;
      return traced(ctx, "matMul", [a, b], meta([...shp(a).slice(0, -2), m, n]));
    }
    return tf.matMul(a, b, transposeA, transposeB);
  },

  /**
   * BatchNorm over all axes but the last (PyTorch BatchNorm2d/1d): batch statistics in training,
   * updating the running stats with momentum 0.1 and the unbiased variance; running stats in eval.
   * With `kernels: "custom"` on webgpu, training runs the fused kernels of kernels/batchnorm.ts
   * (BENCHMARKS.md), which also fuse `act` when it is relu, relu6 or silu.
   */
  batchNorm(x: Tensor, bn: BatchNormParams, ctx: Ctx, act: Activation = "identity"): Tensor {
    if (isMeta(x)) {
      ctx.counts!.fvFlops += 2 * numel(shp(x));
      return traced(ctx, "batchNorm", [x], meta(shp(x)));
    }
    if (!ctx.training) {
      return ops.act(tf.batchNorm(x, bn.runningMean, bn.runningVar, bn.beta, bn.gamma, bn.eps), act);
    }
    if (ctx.kernels === "custom" && tf.getBackend() === "webgpu") {
      const fused = act === "relu" || act === "relu6" || act === "silu" ? act : "identity";
      return ops.act(batchNormTrain(x, bn, fused), fused === act ? "identity" : act);
    }
    const axes = shp(x).slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    const n = numel(shp(x).slice(0, -1));
    const m = bn.momentum;
    (bn.runningMean as tf.Variable).assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
    (bn.runningVar as tf.Variable).assign(
      tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(variance, (m * n) / Math.max(n - 1, 1))),
    );
    return ops.act(tf.batchNorm(x, mean, variance, bn.beta, bn.gamma, bn.eps), act);
  },

  /** LayerNorm over the last axis. `fvCounted` marks F.layer_norm (5 FLOPs/element in fvcore). */
  layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number, ctx: Ctx, fvCounted = true): Tensor {
    if (isMeta(x)) {
      if (fvCounted) ctx.counts!.fvFlops += 5 * numel(shp(x));
      return traced(ctx, "layerNorm", [x], meta(shp(x)));
    }
    const { mean, variance } = tf.moments(x, [x.rank - 1], true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  },

  /** Elementwise activation by name. */
  act(x: Tensor, kind: Activation): Tensor {
    if (isMeta(x) || kind === "identity") return x;
    switch (kind) {
      case "relu":
        return tf.relu(x);
      case "relu6":
        return tf.relu6(x);
      case "silu":
        return tf.mul(x, tf.sigmoid(x));
      case "gelu":
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
      case "sigmoid":
        return tf.sigmoid(x);
      case "hardsigmoid":
        return tf.div(tf.relu6(tf.add(x, 3)), 6);
      case "hardswish":
        return tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
    }
  },

  /** Elementwise a + b (broadcasting). */
  add(a: Tensor, b: Tensor): Tensor {
    return isMeta(a) ? meta(broadcast(shp(a), shp(b))) : tf.add(a, b);
  },
  /** Elementwise a · b (broadcasting). */
  mul(a: Tensor, b: Tensor | number): Tensor {
    if (isMeta(a)) return meta(typeof b === "number" ? shp(a) : broadcast(shp(a), shp(b)));
    return tf.mul(a, b);
  },
  /** Elementwise a - b (broadcasting). */
  sub(a: Tensor, b: Tensor): Tensor {
    return isMeta(a) ? meta(broadcast(shp(a), shp(b))) : tf.sub(a, b);
  },

  /** Concatenation along `axis` (negative counts from the end). */
  concat(xs: Tensor[], axis: number): Tensor {
    if (isMeta(xs[0])) {
      const ax = axis < 0 ? shp(xs[0]).length + axis : axis;
      const shape = [...shp(xs[0])];
      shape[ax] = xs.reduce((n, t) => n + shp(t)[ax], 0);
      return meta(shape);
    }
    return tf.concat(xs, axis);
  },

  /** Splits along `axis` into the given sizes. */
  split(x: Tensor, sizes: number[], axis: number): Tensor[] {
    if (isMeta(x)) {
      const ax = axis < 0 ? shp(x).length + axis : axis;
      return sizes.map((s) => meta(shp(x).map((d, i) => (i === ax ? s : d))));
    }
    return tf.split(x, sizes, axis);
  },

  /** Reshape (one dimension may be -1). */
  reshape(x: Tensor, shape: number[]): Tensor {
    if (isMeta(x)) {
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      return meta(shape.map((d) => (d === -1 ? numel(shp(x)) / known : d)));
    }
    return tf.reshape(x, shape);
  },

  /** Axis permutation. */
  transpose(x: Tensor, perm: number[]): Tensor {
    return isMeta(x) ? meta(perm.map((p) => shp(x)[p])) : tf.transpose(x, perm);
  },

  /** Softmax over the last axis. */
  softmax(x: Tensor): Tensor {
    return isMeta(x) ? x : tf.softmax(x);
  },

  /**
   * Global average pool [B,H,W,C] -> [B,C] (adaptive_avg_pool2d(1) + flatten). `fvCounted` false
   * marks a plain `x.mean(dim=(-2,-1))`, which fvcore does not count (ConvNeXt's head).
   */
  globalAvgPool(x: Tensor, ctx: Ctx, fvCounted = true): Tensor {
    if (isMeta(x)) {
      if (fvCounted) ctx.counts!.fvFlops += numel(shp(x));
      return traced(ctx, "globalAvgPool", [x], meta([shp(x)[0], shp(x)[3]]));
    }
    return tf.mean(x, [1, 2]);
  },

  /** Average pool, kernel = stride = k, no padding, floor (F.avg_pool2d(k, k)). */
  avgPool(x: Tensor, k: number): Tensor {
    if (isMeta(x)) return meta([shp(x)[0], Math.floor(shp(x)[1] / k), Math.floor(shp(x)[2] / k), shp(x)[3]]);
    return tf.avgPool(x as tf.Tensor4D, k, k, "valid");
  },

  /** Max pool with PyTorch symmetric padding (padded with -inf). */
  maxPool(x: Tensor, k: number, stride: number, pad: number): Tensor {
    if (isMeta(x)) {
      const [b, h, w, c] = shp(x);
      return meta([b, convOut(h, k, stride, pad), convOut(w, k, stride, pad), c]);
    }
    const padded = pad ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], -Infinity) : x;
    return tf.maxPool(padded as tf.Tensor4D, k, stride, "valid");
  },

  /** Nearest-neighbour resize to [h, w], PyTorch 'nearest' (src = floor(dst·in/out)). */
  resizeNearest(x: Tensor, h: number, w: number, ctx: Ctx): Tensor {
    if (isMeta(x)) {
      ctx.counts!.fvFlops += shp(x)[0] * h * w * shp(x)[3];
      return traced(ctx, "resizeNearest", [x], meta([shp(x)[0], h, w, shp(x)[3]]));
    }
    if (tf.getBackend() !== "webgpu") {
      // tfjs-backend-cpu's ResizeNearestNeighborGrad puts batch items > 0 in the wrong places
      // (found by tests/parity_test.ts in GhostNet's DFC gate): the same 'nearest' as two gathers,
      // whose gradients are right on every backend.
      const [, ih, iw] = shp(x);
      const idx = (n: number, size: number) =>
        tf.tensor1d(Array.from({ length: n }, (_, i) => Math.floor((i * size) / n)), "int32");
      return tf.gather(tf.gather(x, idx(h, ih), 1), idx(w, iw), 2);
    }
    return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [h, w], false, false);
  },

  /** Dropout (inverted scaling) in training; identity in eval. */
  dropout(x: Tensor, rate: number, ctx: Ctx): Tensor {
    if (isMeta(x) || !ctx.training || rate <= 0) return x;
    if (ctx.random) return tf.mul(x, randomMask(ctx.random.scalars, shp(x), 1 - rate, ctx.random.site++));
    return tf.dropout(x, rate, undefined, seedFrom(ctx));
  },

  /** Stochastic depth: per-sample keep mask [B,1,1,1] / keep-prob, training only. */
  dropPath(x: Tensor, rate: number, ctx: Ctx): Tensor {
    if (isMeta(x) || !ctx.training || rate <= 0) return x;
    const keep = 1 - rate;
    const shape = [shp(x)[0], ...shp(x).slice(1).map(() => 1)];
    if (ctx.random) return tf.mul(x, randomMask(ctx.random.scalars, shape, keep, ctx.random.site++));
    const mask = tf.floor(tf.add(tf.randomUniform(shape, 0, 1, "float32", seedFrom(ctx)), keep));
    return tf.mul(x, tf.div(mask, keep));
  },

  /**
   * Squeeze-and-Excitation: x · gate(expand(act(reduce(mean_hw(x))))). Weights are 1×1 convs
   * ([1,1,C,Cr] and [1,1,Cr,C]) as in the reference code.
   */
  squeezeExcite(
    x: Tensor,
    p: SEParams,
    o: {
      act: "relu" | "silu";
      gate: "sigmoid" | "hardsigmoid";
      /** fvcore counts nn.AdaptiveAvgPool2d (default) but not timm's `x.mean((2, 3))`. */
      poolCounted?: boolean;
    },
    ctx: Ctx,
  ) {
    const [b, , , c] = shp(x);
    const cr = shp(p.w1)[3];
    if (isMeta(x)) {
      ctx.counts!.fvFlops += (o.poolCounted === false ? 0 : numel(shp(x))) + 2 * b * c * cr;
      ctx.counts!.macs += 2 * b * c * cr;
      return traced(ctx, "squeezeExcite", [x, p.w1, p.b1, p.w2, p.b2], x, o);
    }
    return squeezeExcite(
      x,
      { w1: tf.reshape(p.w1, [c, cr]), b1: p.b1, w2: tf.reshape(p.w2, [cr, c]), b2: p.b2 },
      { act: o.act, gate: o.gate },
      ctx.kernels,
    );
  },
};

function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1, db = b[b.length - n + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Activation names used by the zoo. */
export type Activation =
  | "identity"
  | "relu"
  | "relu6"
  | "silu"
  | "gelu"
  | "sigmoid"
  | "hardsigmoid"
  | "hardswish";

/** Parameters of one BatchNorm layer: γ, β, running statistics, eps, momentum (kernels/batchnorm.ts). */
export type BatchNormParams = BatchNormTrainParams;

/** Parameters of one SE block (1×1 conv weights as in the reference code). */
export interface SEParams {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/** A layer: parameters created in the constructor, computation in `apply`. */
export interface Module {
  apply(x: Tensor, ctx: Ctx): Tensor;
}

/** Options of {@link Conv2d}. */
export interface Conv2dOptions {
  cin: number;
  cout: number;
  k: number | [number, number];
  stride?: number | [number, number];
  /** Symmetric padding; default (k-1)/2. */
  pad?: number | [number, number];
  /** Depthwise (groups = cin = cout). */
  depthwise?: boolean;
  bias?: boolean;
  /** Weight init; default PyTorch's kaiming_uniform(a=√5). */
  init?: Init;
  /** Bias init; default PyTorch's U(±1/√fan_in). */
  biasInit?: Init;
}

/** nn.Conv2d (groups 1 or depthwise). Parameters `<name>.weight`, `<name>.bias`. */
export class Conv2d implements Module {
  readonly weight: Tensor;
  readonly bias?: Tensor;
  readonly options: Conv2dOptions;

  constructor(p: Params, name: string, o: Conv2dOptions) {
    this.options = o;
    const [kh, kw] = pair(o.k);
    const fanIn = (o.depthwise ? 1 : o.cin) * kh * kw;
    const shape = o.depthwise ? [kh, kw, o.cin, 1] : [kh, kw, o.cin, o.cout];
    this.weight = p.weight(
      `${name}.weight`,
      shape,
      o.init ?? torchDefaultInit(fanIn),
      o.depthwise ? "depthwise" : "conv",
    );
    if (o.bias) this.bias = p.weight(`${name}.bias`, [o.cout], o.biasInit ?? torchDefaultInit(fanIn));
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const o = this.options;
    return ops.conv2d(x, this.weight, {
      stride: o.stride,
      pad: o.pad,
      depthwise: o.depthwise,
      bias: this.bias,
    }, ctx);
  }
}

/** nn.BatchNorm2d (eps 1e-5, momentum 0.1 unless given). Parameters `<name>.{weight,bias,running_mean,running_var}`. */
export class BatchNorm2d implements Module {
  readonly params: BatchNormParams;

  constructor(
    p: Params,
    name: string,
    channels: number,
    o: { eps?: number; momentum?: number; gammaInit?: number } = {},
  ) {
    this.params = {
      gamma: p.weight(`${name}.weight`, [channels], { kind: "constant", value: o.gammaInit ?? 1 }),
      beta: p.weight(`${name}.bias`, [channels], { kind: "zeros" }),
      runningMean: p.buffer(`${name}.running_mean`, [channels], 0),
      runningVar: p.buffer(`${name}.running_var`, [channels], 1),
      eps: o.eps ?? 1e-5,
      momentum: o.momentum ?? 0.1,
    };
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.batchNorm(x, this.params, ctx);
  }
}

/** nn.Linear. Parameters `<name>.weight` (stored [in, out]), `<name>.bias`. */
export class Linear implements Module {
  readonly weight: Tensor;
  readonly bias?: Tensor;

  constructor(
    p: Params,
    name: string,
    o: { nin: number; nout: number; bias?: boolean; init?: Init; biasInit?: Init },
  ) {
    this.weight = p.weight(`${name}.weight`, [o.nin, o.nout], o.init ?? torchDefaultInit(o.nin), "linear");
    if (o.bias ?? true) this.bias = p.weight(`${name}.bias`, [o.nout], o.biasInit ?? torchDefaultInit(o.nin));
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.linear(x, this.weight, this.bias, ctx);
  }
}

/** nn.LayerNorm over the last axis. Parameters `<name>.weight`, `<name>.bias`. */
export class LayerNorm implements Module {
  readonly gamma: Tensor;
  readonly beta: Tensor;

  constructor(p: Params, name: string, dim: number, readonly eps: number, readonly fvCounted = true) {
    this.gamma = p.weight(`${name}.weight`, [dim], { kind: "ones" });
    this.beta = p.weight(`${name}.bias`, [dim], { kind: "zeros" });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.layerNorm(x, this.gamma, this.beta, this.eps, ctx, this.fvCounted);
  }
}

/** Applies modules in order. */
export class Sequential implements Module {
  constructor(readonly layers: Module[]) {}
  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.layers.reduce((y, m) => m.apply(y, ctx), x);
  }
}

/** An activation as a module. */
export class Act implements Module {
  constructor(readonly kind: Activation) {}
  apply(x: Tensor): Tensor {
    return ops.act(x, this.kind);
  }
}

/** Build options every model accepts. */
export interface ModelOptions {
  numClasses: number;
  imageSize: number;
  /** Initialisation seed (same seed => identical initial weights). Default 0. */
  seed?: number;
  /** Family-specific options (e.g. ConvMixer `patchSize`, EfficientNet `variant`). */
  [option: string]: unknown;
}

/** A built model: its parameters and its forward function. */
export interface Model {
  /** Registry id (e.g. "mobilenet"). */
  readonly id: string;
  readonly options: ModelOptions;
  readonly params: Params;
  /** Logits [B, numClasses] for an NHWC float32 batch. */
  apply(x: Tensor, ctx: Ctx): Tensor;
  /** MobileOne / GhostNet: an inference model with fused branches (same outputs within float error). */
  reparameterize?(): Model;
}

/** Options of {@link metaForward}. */
export interface MetaForwardOptions {
  /** Batch size of the meta input (default 1). */
  batch?: number;
  /** Forward in training mode (default false). */
  training?: boolean;
  /** Sees every context-taking op (see {@link Ctx.trace}). */
  trace?: Ctx["trace"];
}

/**
 * Builds a model in meta mode (shapes only, no tensor computed) and runs one forward over a
 * [batch, imageSize, imageSize, 3] meta input: its trainable parameters and operation counts.
 */
export function metaForward(
  build: (p: Params) => Module,
  imageSize: number,
  { batch = 1, training = false, trace }: MetaForwardOptions = {},
): OpCounts & { params: number } {
  const p = new Params(0, true);
  const net = build(p);
  const counts: OpCounts = { macs: 0, fvFlops: 0 };
  net.apply(meta([batch, imageSize, imageSize, 3]), {
    training,
    rng: new Rng(0),
    kernels: "stock",
    counts,
    trace,
  });
  return { ...counts, params: p.countTrainable() };
}

/** Counts a model's trainable parameters and its operations at batch 1 without running it. */
export function countModel(build: (p: Params) => Module, imageSize: number): OpCounts & { params: number } {
  return metaForward(build, imageSize);
}
