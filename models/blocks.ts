/**
 * Shared building blocks every architecture composes (timm style): conv–BN–activation,
 * Squeeze-and-Excitation, inverted residual / MBConv and depthwise-separable. Each block is a
 * {@link Module} whose parameters are named like the reference PyTorch modules. The
 * re-parameterisable conv of MobileOne / GhostNetV3 is in reparam.ts, timm's EfficientNet class
 * (FBNet, TinyNet) in timm_efficientnet.ts.
 *
 * Forward code goes through {@link ops} only.
 *
 * @module
 */
import type { Activation, Conv2dOptions, Ctx, Init, Module, Params, Tensor } from "./core.ts";
import { BatchNorm2d, Conv2d, ops } from "./core.ts";

/**
 * Which initialisation a family's convolutions use (docs/protocol.md §4.1):
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
