/**
 * Structural re-parameterisation (MobileOne, GhostNetV3): a multi-branch conv that trains as a sum
 * of conv–BN branches and runs as one conv. {@link RepConv} is the block, {@link fuseRepConv} the
 * exact fusion of its branches in eval mode, {@link loadReparameterized} the copy of a trained
 * network into its fused twin.
 *
 * Forward code goes through {@link ops} only. The one exception is {@link fuseRepConv}, a weight
 * transformation run once outside any forward pass (it never sees meta tensors).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import type { Activation, Conv2dOptions, Ctx, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { BatchNorm2d, Conv2d, ops } from "./core.ts";
import { convInit, type InitScheme } from "./blocks.ts";

/** A conv (no bias) followed by BN, named `<name>.conv` / `<name>.bn` (the re-param `_conv_bn`). */
export class ConvBn implements Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(p: Params, name: string, o: Omit<Conv2dOptions, "bias">) {
    this.conv = new Conv2d(p, `${name}.conv`, { ...o, bias: false });
    this.bn = new BatchNorm2d(p, `${name}.bn`, o.cout);
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.bn.apply(this.conv.apply(x, ctx), ctx);
  }
}

/** Options of {@link RepConv}. */
export interface RepConvOptions {
  cin: number;
  cout: number;
  k: number;
  stride: number;
  depthwise: boolean;
  /** Number of parallel k×k conv–BN branches. */
  branches: number;
  /** Add the 1×1 conv–BN "scale" branch (same stride and groups) when k > 1. */
  scale: boolean;
  /** Add the BN "skip" branch when cin = cout and stride 1. */
  skip: boolean;
  act: Activation;
  /** Branch name prefix: `rbr` (MobileOne), `primary_rpr` / `cheap_rpr` / `dw_rpr` (GhostNetV3). */
  prefix: string;
  /** Parameter name of the fused conv (e.g. `stage0.reparam_conv`, `blocks.2.0.ghost1.primary_conv.0`). */
  fusedName: string;
  /** Build the fused single conv (+bias) instead of the branches. */
  fused?: boolean;
  /** Train-time blocks register here under `fusedName`, for {@link loadReparameterized}. */
  registry?: Map<string, RepConv>;
  scheme?: InitScheme;
}

/**
 * The re-parameterisable conv of MobileOne / GhostNetV3: act(Σ conv–BN branches + [1×1 scale
 * conv–BN] + [skip BN]). With `fused` it is one conv with bias and the same activation; the
 * values come from {@link fuseRepConv} of the train-time block.
 */
export class RepConv implements Module {
  readonly skipBn?: BatchNorm2d;
  readonly convs: ConvBn[] = [];
  readonly scaleBranch?: ConvBn;
  readonly fusedConv?: Conv2d;

  constructor(p: Params, name: string, readonly o: RepConvOptions) {
    const base = { cin: o.cin, cout: o.cout, depthwise: o.depthwise, stride: o.stride };
    if (o.fused) {
      this.fusedConv = new Conv2d(p, o.fusedName, { ...base, k: o.k, bias: true });
      return;
    }
    o.registry?.set(o.fusedName, this);
    const scheme = o.scheme ?? "torch";
    if (o.skip && o.cin === o.cout && o.stride === 1) {
      this.skipBn = new BatchNorm2d(p, `${name}.${o.prefix}_skip`, o.cin);
    }
    for (let i = 0; i < o.branches; i++) {
      this.convs.push(
        new ConvBn(p, `${name}.${o.prefix}_conv.${i}`, {
          ...base,
          k: o.k,
          ...convInit(scheme, { cout: o.cout, k: o.k, depthwise: o.depthwise }),
        }),
      );
    }
    if (o.scale && o.k > 1) {
      this.scaleBranch = new ConvBn(p, `${name}.${o.prefix}_scale`, {
        ...base,
        k: 1,
        pad: 0,
        ...convInit(scheme, { cout: o.cout, k: 1, depthwise: o.depthwise }),
      });
    }
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    if (this.fusedConv) return ops.act(this.fusedConv.apply(x, ctx), this.o.act);
    let y = this.convs[0].apply(x, ctx);
    for (const c of this.convs.slice(1)) y = ops.add(y, c.apply(x, ctx));
    if (this.scaleBranch) y = ops.add(y, this.scaleBranch.apply(x, ctx));
    if (this.skipBn) y = ops.add(y, this.skipBn.apply(x, ctx));
    return ops.act(y, this.o.act);
  }
}

/**
 * The exact single-conv equivalent of a train-time {@link RepConv} in eval mode: each branch's
 * kernel·γ/σ and β − μ·γ/σ (σ = √(running_var + eps)), the 1×1 scale kernel zero-padded to k×k and
 * the skip BN as an identity kernel, summed. Kernel in tfjs layout, bias [cout].
 */
export function fuseRepConv(rep: RepConv): { kernel: Tensor; bias: Tensor } {
  const o = rep.o;
  return tf.tidy(() => {
    const c = o.cout;
    // Per-output-channel scale lives on the last axis (dense) or the channel axis (depthwise).
    const perChannel = (t: Tensor) => (o.depthwise ? tf.reshape(t, [1, 1, c, 1]) : t);
    const fold = (kernel: Tensor, bn: BatchNorm2d) => {
      const b = bn.params;
      const s = tf.div(b.gamma, tf.sqrt(tf.add(b.runningVar, b.eps)));
      return { k: tf.mul(kernel, perChannel(s)), b: tf.sub(b.beta, tf.mul(b.runningMean, s)) };
    };
    const parts = rep.convs.map((cb) => fold(cb.conv.weight, cb.bn));
    if (rep.scaleBranch) {
      const f = fold(rep.scaleBranch.conv.weight, rep.scaleBranch.bn);
      const pd = (o.k - 1) / 2;
      parts.push({ k: tf.pad(f.k, [[pd, pd], [pd, pd], [0, 0], [0, 0]]), b: f.b });
    }
    if (rep.skipBn) {
      const center = new Float32Array(o.k * o.k);
      center[((o.k - 1) / 2) * o.k + (o.k - 1) / 2] = 1;
      const spatial = tf.tensor(center, [o.k, o.k, 1, 1]);
      const id = o.depthwise
        ? tf.tile(spatial, [1, 1, c, 1])
        : tf.mul(spatial, tf.reshape(tf.eye(c), [1, 1, c, c]));
      parts.push(fold(id, rep.skipBn));
    }
    return { kernel: tf.addN(parts.map((q) => q.k)), bias: tf.addN(parts.map((q) => q.b)) };
  });
}

/**
 * Fills `dst` (parameters of a network built with fused {@link RepConv}s) from the train-time
 * network: fused convs from {@link fuseRepConv} of the block in `reps` (keyed by fused name), every
 * other parameter and buffer copied by name from `src`. No-op in meta mode.
 */
export function loadReparameterized(src: Params, reps: Map<string, RepConv>, dst: Params): void {
  if (dst.meta) return;
  const byName = new Map(src.entries.map((e) => [e.name, e]));
  const fused = new Map<string, { kernel: Tensor; bias: Tensor }>();
  for (const e of dst.entries) {
    const cut = e.name.lastIndexOf(".");
    const owner = e.name.slice(0, cut), leaf = e.name.slice(cut + 1);
    const rep = reps.get(owner);
    let value: Tensor;
    if (rep && (leaf === "weight" || leaf === "bias")) {
      if (!fused.has(owner)) fused.set(owner, fuseRepConv(rep));
      value = leaf === "weight" ? fused.get(owner)!.kernel : fused.get(owner)!.bias;
    } else {
      const s = byName.get(e.name);
      if (!s?.variable) throw new Error(`reparameterize: no source for parameter ${e.name}`);
      value = s.variable;
    }
    e.variable!.assign(value);
  }
  for (const f of fused.values()) tf.dispose([f.kernel, f.bias]);
}

/** A network whose re-parameterisable operators are listed in `reps`, keyed by parameter prefix. */
export interface Reparameterizable extends Module {
  readonly p: Params;
  readonly reps: Map<string, RepConv>;
}

/**
 * A registry `reparameterize` for a network class: builds the fused (deploy) network on `p` with
 * `buildFused` and loads it from the trained multi-branch network's parameters.
 */
export function reparameterizeWith(
  buildFused: (p: Params, o: ModelOptions) => Module,
): (net: Module, p: Params, o: ModelOptions) => Module {
  return (net, p, o) => {
    const src = net as Reparameterizable;
    const fused = buildFused(p, o);
    loadReparameterized(src.p, src.reps, p);
    return fused;
  };
}
