/**
 * Shared building blocks every architecture composes (timm style): conv–BN–activation,
 * Squeeze-and-Excitation, inverted residual / MBConv, depthwise-separable, and the
 * re-parameterisable multi-branch conv of MobileOne / GhostNetV3. Each block is a {@link Module}
 * whose parameters are named like the reference PyTorch modules.
 *
 * Forward code goes through {@link ops} only. The one exception is {@link fuseRepConv}, a weight
 * transformation run once outside any forward pass (it never sees meta tensors).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import {
  type Activation,
  BatchNorm2d,
  Conv2d,
  type Conv2dOptions,
  type Ctx,
  type Init,
  Linear,
  type Module,
  ops,
  type Params,
  type Tensor,
} from "./core.ts";

/**
 * Which initialisation a family's convolutions use (reference-spec §1.1):
 * - `"torch"`: PyTorch defaults (kaiming_uniform a=√5, bias U(±1/√fan_in));
 * - `"torchvision"`: kaiming_normal fan_out, std √2/√(C_out·k·k) (groups ignored), bias 0;
 * - `"goog"`: timm `_init_weight_goog`, std √(2/fan_out) with fan_out = k·k·C_out/groups, bias 0.
 */
export type InitScheme = "torch" | "torchvision" | "goog";

/** The weight and bias initialisers of a conv under `scheme` (undefined = PyTorch default). */
export function convInit(
  scheme: InitScheme,
  o: { cout: number; k: number | [number, number]; depthwise?: boolean },
): { init?: Init; biasInit?: Init } {
  const [kh, kw] = typeof o.k === "number" ? [o.k, o.k] : o.k;
  if (scheme === "torch") return {};
  const fanOut = scheme === "goog" && o.depthwise ? kh * kw : kh * kw * o.cout;
  return { init: { kind: "normal", std: Math.sqrt(2 / fanOut) }, biasInit: { kind: "zeros" } };
}

/** `make_divisible` of the TF/torchvision/timm code: round to a multiple of `divisor`, never below 90 %. */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let nv = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (nv < 0.9 * v) nv += divisor;
  return nv;
}

/** Options of {@link ConvBnAct}: a {@link Conv2d} without bias, then BN, then an activation. */
export interface ConvBnActOptions extends Omit<Conv2dOptions, "bias"> {
  act: Activation;
  /** Names of the conv and BN sub-modules under the block name (torchvision: "0" and "1"). */
  names?: { conv: string; bn: string };
  bnEps?: number;
  /** Conv init scheme; ignored when `init` is given. Default "torch". */
  scheme?: InitScheme;
}

/** Conv (no bias) → BatchNorm2d → activation; torchvision's `Conv2dNormActivation`. */
export class ConvBnAct implements Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly act: Activation;

  constructor(p: Params, name: string, o: ConvBnActOptions) {
    const names = o.names ?? { conv: "0", bn: "1" };
    const init = o.init ?? convInit(o.scheme ?? "torch", o).init;
    this.conv = new Conv2d(p, joinName(name, names.conv), { ...o, init, bias: false });
    this.bn = new BatchNorm2d(p, joinName(name, names.bn), o.cout, { eps: o.bnEps });
    this.act = o.act;
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    // One call so the custom BatchNorm kernel can fuse the activation.
    return ops.batchNorm(this.conv.apply(x, ctx), this.bn.params, ctx, this.act);
  }
}

function joinName(a: string, b: string): string {
  return a === "" ? b : b === "" ? a : `${a}.${b}`;
}

/** Options of {@link SqueezeExcite}. */
export interface SqueezeExciteOptions {
  channels: number;
  /** Squeezed width (the reduce conv's output channels). */
  reduced: number;
  act: "relu" | "silu";
  gate: "sigmoid" | "hardsigmoid";
  /** Sub-module names: torchvision `fc1`/`fc2`, timm and GhostNet `conv_reduce`/`conv_expand`. */
  names: { reduce: string; expand: string };
  scheme: InitScheme;
  /**
   * Whether fvcore sees the spatial mean: true for `nn.AdaptiveAvgPool2d` (torchvision, GhostNet),
   * false for timm's `x.mean((2, 3))`, which fvcore does not count.
   */
  poolCounted?: boolean;
}

/** Squeeze-and-Excitation with 1×1-conv weights (+bias), computed by {@link ops.squeezeExcite}. */
export class SqueezeExcite implements Module {
  readonly reduce: Conv2d;
  readonly expand: Conv2d;

  constructor(p: Params, name: string, readonly o: SqueezeExciteOptions) {
    this.reduce = new Conv2d(p, `${name}.${o.names.reduce}`, {
      cin: o.channels,
      cout: o.reduced,
      k: 1,
      bias: true,
      ...convInit(o.scheme, { cout: o.reduced, k: 1 }),
    });
    this.expand = new Conv2d(p, `${name}.${o.names.expand}`, {
      cin: o.reduced,
      cout: o.channels,
      k: 1,
      bias: true,
      ...convInit(o.scheme, { cout: o.channels, k: 1 }),
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.squeezeExcite(
      x,
      { w1: this.reduce.weight, b1: this.reduce.bias!, w2: this.expand.weight, b2: this.expand.bias! },
      { act: this.o.act, gate: this.o.gate, poolCounted: this.o.poolCounted ?? true },
      ctx,
    );
  }
}

/** Options of {@link InvertedResidual}. */
export interface InvertedResidualOptions {
  cin: number;
  cout: number;
  stride: number;
  /** Expansion ratio t; the hidden width is round(cin·t) as in torchvision. */
  expand: number;
  act?: Activation;
  scheme?: InitScheme;
}

/**
 * torchvision MobileNetV2 `InvertedResidual`: [PW expand → BN → ReLU6] (t ≠ 1) → DW 3×3 → BN →
 * ReLU6 → PW project → BN, residual when stride 1 and cin = cout. Parameters `<name>.conv.<i>…`.
 */
export class InvertedResidual implements Module {
  readonly layers: Module[] = [];
  readonly residual: boolean;

  constructor(p: Params, name: string, o: InvertedResidualOptions) {
    const act = o.act ?? "relu6";
    const scheme = o.scheme ?? "torchvision";
    const hidden = Math.round(o.cin * o.expand);
    let i = 0;
    if (o.expand !== 1) {
      this.layers.push(
        new ConvBnAct(p, `${name}.conv.${i++}`, { cin: o.cin, cout: hidden, k: 1, act, scheme }),
      );
    }
    this.layers.push(
      new ConvBnAct(p, `${name}.conv.${i++}`, {
        cin: hidden,
        cout: hidden,
        k: 3,
        stride: o.stride,
        depthwise: true,
        act,
        scheme,
      }),
    );
    this.layers.push(
      new Conv2d(p, `${name}.conv.${i++}`, {
        cin: hidden,
        cout: o.cout,
        k: 1,
        ...convInit(scheme, { cout: o.cout, k: 1 }),
      }),
    );
    this.layers.push(new BatchNorm2d(p, `${name}.conv.${i++}`, o.cout));
    this.residual = o.stride === 1 && o.cin === o.cout;
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const y = this.layers.reduce((h, m) => m.apply(h, ctx), x);
    return this.residual ? ops.add(x, y) : y;
  }
}

/** SE settings of an {@link MBConv} / {@link DepthwiseSeparable} block. */
export interface BlockSE {
  reduced: number;
  act: "relu" | "silu";
  gate: "sigmoid" | "hardsigmoid";
  poolCounted: boolean;
}

/** Options of {@link MBConv}. */
export interface MBConvOptions {
  cin: number;
  cout: number;
  /** Expanded (hidden) width. */
  mid: number;
  k: number;
  stride: number;
  act: Activation;
  se?: BlockSE;
  /** Stochastic-depth rate on the residual branch (training only). */
  dropPath?: number;
  /**
   * Parameter naming and structure:
   * - `"torchvision"`: torchvision `MBConv` (`block.<i>.0/1`, SE `fc1`/`fc2`), no expand conv when mid = cin;
   * - `"timm"`: timm `InvertedResidual` (`conv_pw`, `bn1`, `conv_dw`, `bn2`, `se.conv_*`, `conv_pwl`,
   *   `bn3`), the expand conv always present.
   */
  style: "torchvision" | "timm";
  scheme: InitScheme;
}

/**
 * Mobile inverted bottleneck: PW expand → BN → act → DW k×k → BN → act → [SE] → PW project → BN,
 * plus the input (after stochastic depth of the branch) when stride 1 and cin = cout.
 */
export class MBConv implements Module {
  readonly expand?: ConvBnAct;
  readonly dw: ConvBnAct;
  readonly se?: SqueezeExcite;
  readonly project: ConvBnAct;
  readonly residual: boolean;

  constructor(p: Params, name: string, readonly o: MBConvOptions) {
    const tv = o.style === "torchvision";
    const scheme = o.scheme;
    let i = 0;
    const sub = (tvIndex: number, conv: string, bn: string) =>
      tv
        ? { name: `${name}.block.${tvIndex}`, names: { conv: "0", bn: "1" } }
        : { name, names: { conv, bn } };
    if (!tv || o.mid !== o.cin) {
      const s = sub(i++, "conv_pw", "bn1");
      this.expand = new ConvBnAct(p, s.name, {
        cin: o.cin,
        cout: o.mid,
        k: 1,
        act: o.act,
        scheme,
        names: s.names,
      });
    }
    const d = sub(i++, "conv_dw", "bn2");
    this.dw = new ConvBnAct(p, d.name, {
      cin: o.mid,
      cout: o.mid,
      k: o.k,
      stride: o.stride,
      depthwise: true,
      act: o.act,
      scheme,
      names: d.names,
    });
    if (o.se) {
      this.se = new SqueezeExcite(p, tv ? `${name}.block.${i++}` : `${name}.se`, {
        channels: o.mid,
        ...o.se,
        names: tv ? { reduce: "fc1", expand: "fc2" } : { reduce: "conv_reduce", expand: "conv_expand" },
        scheme,
      });
    }
    const pr = sub(i++, "conv_pwl", "bn3");
    this.project = new ConvBnAct(p, pr.name, {
      cin: o.mid,
      cout: o.cout,
      k: 1,
      act: "identity",
      scheme,
      names: pr.names,
    });
    this.residual = o.stride === 1 && o.cin === o.cout;
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.expand ? this.expand.apply(x, ctx) : x;
    h = this.dw.apply(h, ctx);
    if (this.se) h = this.se.apply(h, ctx);
    h = this.project.apply(h, ctx);
    if (!this.residual) return h;
    return ops.add(ops.dropPath(h, this.o.dropPath ?? 0, ctx), x);
  }
}

/** Options of {@link DepthwiseSeparable}. */
export interface DepthwiseSeparableOptions {
  cin: number;
  cout: number;
  k: number;
  stride: number;
  act: Activation;
  se?: BlockSE;
  dropPath?: number;
  scheme: InitScheme;
}

/**
 * timm `DepthwiseSeparableConv`: DW k×k → BN → act → [SE] → PW → BN (no act), residual when
 * stride 1 and cin = cout. Parameters `conv_dw`, `bn1`, `se.conv_*`, `conv_pw`, `bn2`.
 */
export class DepthwiseSeparable implements Module {
  readonly dw: ConvBnAct;
  readonly se?: SqueezeExcite;
  readonly pw: ConvBnAct;
  readonly residual: boolean;

  constructor(p: Params, name: string, readonly o: DepthwiseSeparableOptions) {
    this.dw = new ConvBnAct(p, name, {
      cin: o.cin,
      cout: o.cin,
      k: o.k,
      stride: o.stride,
      depthwise: true,
      act: o.act,
      scheme: o.scheme,
      names: { conv: "conv_dw", bn: "bn1" },
    });
    if (o.se) {
      this.se = new SqueezeExcite(p, `${name}.se`, {
        channels: o.cin,
        ...o.se,
        names: { reduce: "conv_reduce", expand: "conv_expand" },
        scheme: o.scheme,
      });
    }
    this.pw = new ConvBnAct(p, name, {
      cin: o.cin,
      cout: o.cout,
      k: 1,
      act: "identity",
      scheme: o.scheme,
      names: { conv: "conv_pw", bn: "bn2" },
    });
    this.residual = o.stride === 1 && o.cin === o.cout;
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.dw.apply(x, ctx);
    if (this.se) h = this.se.apply(h, ctx);
    h = this.pw.apply(h, ctx);
    return this.residual ? ops.add(ops.dropPath(h, this.o.dropPath ?? 0, ctx), x) : h;
  }
}

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

/** One timm block of an `arch_def` (e.g. `ir_r1_k5_s2_e6_c32_se0.25`, already depth-scaled). */
export interface TimmBlockDef {
  /** `ir`: InvertedResidual; `ds`: DepthwiseSeparableConv. */
  type: "ir" | "ds";
  k: number;
  s: number;
  e: number;
  /** Output channels. */
  c: number;
  /** SE ratio relative to the block input (timm `se_from_exp=False`). */
  se?: number;
}

/** Options of {@link TimmEfficientNet}. */
export interface TimmEfficientNetOptions {
  /** Blocks per stage (each stage is one `blocks.<s>` Sequential). */
  stages: TimmBlockDef[][];
  stemSize: number;
  numFeatures: number;
  act: Activation;
  numClasses: number;
}

/**
 * timm's `EfficientNet` class with BN defaults, drop rates 0 and `_init_weight_goog`: stem
 * `conv_stem`/`bn1`, `blocks.<s>.<i>`, head `conv_head`/`bn2`, average pool, `classifier`.
 * FBNet-C and TinyNet are both instances.
 */
export class TimmEfficientNet implements Module {
  readonly stem: ConvBnAct;
  readonly blocks: Module[] = [];
  readonly head: ConvBnAct;
  readonly classifier: Linear;

  constructor(p: Params, o: TimmEfficientNetOptions) {
    const scheme = "goog";
    const act = o.act;
    this.stem = new ConvBnAct(p, "", {
      cin: 3,
      cout: o.stemSize,
      k: 3,
      stride: 2,
      act,
      scheme,
      names: { conv: "conv_stem", bn: "bn1" },
    });
    let cin = o.stemSize;
    o.stages.forEach((stage, si) => {
      stage.forEach((b, bi) => {
        const name = `blocks.${si}.${bi}`;
        const se = b.se
          ? {
            reduced: Math.round(cin * b.se),
            act: act as "relu" | "silu",
            gate: "sigmoid" as const,
            poolCounted: false,
          }
          : undefined;
        this.blocks.push(
          b.type === "ds"
            ? new DepthwiseSeparable(p, name, { cin, cout: b.c, k: b.k, stride: b.s, act, se, scheme })
            : new MBConv(p, name, {
              cin,
              cout: b.c,
              mid: makeDivisible(cin * b.e, 8),
              k: b.k,
              stride: b.s,
              act,
              se,
              style: "timm",
              scheme,
            }),
        );
        cin = b.c;
      });
    });
    this.head = new ConvBnAct(p, "", {
      cin,
      cout: o.numFeatures,
      k: 1,
      act,
      scheme,
      names: { conv: "conv_head", bn: "bn2" },
    });
    this.classifier = new Linear(p, "classifier", {
      nin: o.numFeatures,
      nout: o.numClasses,
      init: { kind: "uniform", bound: 1 / Math.sqrt(o.numClasses) },
      biasInit: { kind: "zeros" },
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.stem.apply(x, ctx);
    for (const b of this.blocks) h = b.apply(h, ctx);
    return this.classifier.apply(ops.globalAvgPool(this.head.apply(h, ctx), ctx), ctx);
  }
}

/**
 * Decodes timm block strings (`ir_r2_k3_s2_e6_c24_se0.25`) into {@link TimmBlockDef}s, scaling each
 * stage's repeats by `depthMultiplier` with timm's "ceil" rule (stride only on a stage's first block).
 */
export function decodeTimmArch(arch: string[][], depthMultiplier = 1): TimmBlockDef[][] {
  return arch.map((stage) => {
    const defs = stage.map((s) => {
      const [type, ...fields] = s.split("_");
      const get = (key: string) => {
        const t = fields.find((q) => q.startsWith(key) && !isNaN(Number(q.slice(key.length))));
        return t === undefined ? undefined : Number(t.slice(key.length));
      };
      return {
        def: {
          type: type as "ir" | "ds",
          k: get("k")!,
          s: get("s")!,
          e: get("e") ?? 1,
          c: get("c")!,
          se: get("se"),
        },
        r: get("r")!,
      };
    });
    // timm `_scale_stage_depth` ("ceil"): scale the stage total, then share it out from the last
    // string backwards; in a stage only the first block keeps its stride.
    let left = defs.reduce((n, d) => n + d.r, 0);
    let leftScaled = Math.ceil(left * depthMultiplier);
    const reps = new Array<number>(defs.length);
    for (let i = defs.length - 1; i >= 0; i--) {
      reps[i] = Math.max(1, pyRound((defs[i].r / left) * leftScaled));
      left -= defs[i].r;
      leftScaled -= reps[i];
    }
    const out: TimmBlockDef[] = [];
    defs.forEach((d, i) => {
      for (let j = 0; j < reps[i]; j++) out.push({ ...d.def, s: out.length === 0 ? d.def.s : 1 });
    });
    return out;
  });
}

/** Python 3 `round` (half to even). */
function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}
