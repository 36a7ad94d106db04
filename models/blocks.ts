/**
 * Shared building blocks every architecture composes (timm style): conv–BN–activation,
 * Squeeze-and-Excitation, inverted residual / MBConv, … Each block is a {@link Module} whose
 * parameters are named like the reference PyTorch modules.
 *
 * @module
 */
import {
  type Activation,
  BatchNorm2d,
  Conv2d,
  type Conv2dOptions,
  type Ctx,
  type Module,
  ops,
  type Params,
  type Tensor,
} from "./core.ts";

/** Options of {@link ConvBnAct}: a {@link Conv2d} without bias, then BN, then an activation. */
export interface ConvBnActOptions extends Omit<Conv2dOptions, "bias"> {
  act: Activation;
  /** Names of the conv and BN sub-modules under the block name (torchvision: "0" and "1"). */
  names?: { conv: string; bn: string };
  bnEps?: number;
}

/** Conv (no bias) → BatchNorm2d → activation; torchvision's `Conv2dNormActivation`. */
export class ConvBnAct implements Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly act: Activation;

  constructor(p: Params, name: string, o: ConvBnActOptions) {
    const names = o.names ?? { conv: "0", bn: "1" };
    this.conv = new Conv2d(p, `${name}.${names.conv}`, { ...o, bias: false });
    this.bn = new BatchNorm2d(p, `${name}.${names.bn}`, o.cout, { eps: o.bnEps });
    this.act = o.act;
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.act(this.bn.apply(this.conv.apply(x, ctx), ctx), this.act);
  }
}
