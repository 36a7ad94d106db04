/**
 * StarNet-S1 as the reference builds it (`starnet.py` `starnet_s1` = `StarNet(base_dim=24,
 * depths=[2, 2, 8, 3], mlp_ratio=4, drop_path_rate=0)`, docs/protocol.md §4.2).
 *
 * Every `ConvBN` conv keeps nn.Conv2d's default bias. Initialisation follows what the reference
 * code *does*, not what it means: `isinstance(m, nn.Linear or nn.Conv2d)` evaluates to
 * `isinstance(m, nn.Linear)`, so only the Linear head gets trunc_normal(std 0.02, bounds ±2) with
 * bias 0; every conv keeps PyTorch's default U(±1/√fan_in) weight and bias. drop_path_rate 0
 * makes every drop path an identity.
 *
 * @module
 */
import type { Activation, Ctx, Init, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { BatchNorm2d, Conv2d, Linear, ops } from "./core.ts";
import type { ModelSpec } from "./registry.ts";

/** The head's init: timm `trunc_normal_(std=.02)` (a = -2, b = 2 are absolute bounds). */
export const STARNET_LINEAR_INIT: Init = { kind: "truncNormal", std: 0.02, bound: 2 };

/** `ConvBN`: conv (+bias) `<name>.conv`, then optionally BN `<name>.bn`, then `act` (the stem's ReLU6). */
class ConvBN implements Module {
  readonly conv: Conv2d;
  readonly bn?: BatchNorm2d;
  readonly act: Activation;

  constructor(
    p: Params,
    name: string,
    o: {
      cin: number;
      cout: number;
      k?: number;
      stride?: number;
      depthwise?: boolean;
      bn?: boolean;
      act?: Activation;
    },
  ) {
    this.act = o.act ?? "identity";
    this.conv = new Conv2d(p, `${name}.conv`, {
      cin: o.cin,
      cout: o.cout,
      k: o.k ?? 1,
      stride: o.stride,
      depthwise: o.depthwise,
      bias: true,
    });
    if (o.bn ?? true) this.bn = new BatchNorm2d(p, `${name}.bn`, o.cout);
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const y = this.conv.apply(x, ctx);
    // BN and its activation in one call: the fused training kernel covers relu6.
    return this.bn ? ops.batchNorm(y, this.bn.params, ctx, this.act) : ops.act(y, this.act);
  }
}

/** The star block: DW7+BN → (ReLU6(f1) · f2) → g+BN → DW7, plus the residual. */
class StarBlock implements Module {
  readonly dwconv: ConvBN;
  readonly f1: ConvBN;
  readonly f2: ConvBN;
  readonly g: ConvBN;
  readonly dwconv2: ConvBN;

  constructor(p: Params, name: string, dim: number, mlpRatio: number) {
    const hid = mlpRatio * dim;
    this.dwconv = new ConvBN(p, `${name}.dwconv`, { cin: dim, cout: dim, k: 7, depthwise: true });
    this.f1 = new ConvBN(p, `${name}.f1`, { cin: dim, cout: hid, bn: false });
    this.f2 = new ConvBN(p, `${name}.f2`, { cin: dim, cout: hid, bn: false });
    this.g = new ConvBN(p, `${name}.g`, { cin: hid, cout: dim });
    this.dwconv2 = new ConvBN(p, `${name}.dwconv2`, {
      cin: dim,
      cout: dim,
      k: 7,
      depthwise: true,
      bn: false,
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const h = this.dwconv.apply(x, ctx);
    const star = ops.mul(ops.act(this.f1.apply(h, ctx), "relu6"), this.f2.apply(h, ctx));
    return ops.add(x, this.dwconv2.apply(this.g.apply(star, ctx), ctx));
  }
}

/** The network: stem, 4 stages (stride-2 ConvBN downsampler + blocks), BN, pool, Linear. */
export class StarNet implements Module {
  readonly stem: ConvBN;
  readonly stages: Module[][] = [];
  readonly norm: BatchNorm2d;
  readonly head: Linear;

  constructor(
    p: Params,
    o: { numClasses: number; baseDim?: number; depths?: number[]; mlpRatio?: number },
  ) {
    const base = o.baseDim ?? 24, depths = o.depths ?? [2, 2, 8, 3], ratio = o.mlpRatio ?? 4;
    let cin = 32;
    // stem = Sequential(ConvBN, ReLU6)
    this.stem = new ConvBN(p, "stem.0", { cin: 3, cout: cin, k: 3, stride: 2, act: "relu6" });
    depths.forEach((n, i) => {
      const dim = base * 2 ** i;
      const stage: Module[] = [new ConvBN(p, `stages.${i}.0`, { cin, cout: dim, k: 3, stride: 2 })];
      for (let j = 0; j < n; j++) stage.push(new StarBlock(p, `stages.${i}.${j + 1}`, dim, ratio));
      this.stages.push(stage);
      cin = dim;
    });
    this.norm = new BatchNorm2d(p, "norm", cin);
    this.head = new Linear(p, "head", {
      nin: cin,
      nout: o.numClasses,
      init: STARNET_LINEAR_INIT,
      biasInit: { kind: "zeros" },
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let y = this.stem.apply(x, ctx);
    for (const stage of this.stages) for (const m of stage) y = m.apply(y, ctx);
    return this.head.apply(ops.globalAvgPool(this.norm.apply(y, ctx), ctx), ctx);
  }
}

/** Registry entry: `starnet`. */
export const starnetSpec: ModelSpec = {
  id: "starnet",
  description: "starnet.py starnet_s1: StarNet(base_dim=24, depths=[2,2,8,3], mlp_ratio=4, drop_path_rate=0)",
  build(p: Params, o: ModelOptions): Module {
    return new StarNet(p, { numClasses: o.numClasses });
  },
};
