/**
 * ConvMixer as the reference `convmixer_2m.py` builds it (`ConvMixerModel(dim=512, depth=8,
 * kernel_size=5, patch_size=P)`, docs/protocol.md §4.2): a patch stem, 8 mixer layers whose residual
 * wraps only the depthwise part, and a pooled linear head. Every conv has a bias and every stage
 * runs conv → GELU → BN (in that order). PyTorch defaults for every initialisation.
 *
 * The patch size differs per dataset in the reference scripts (CIFAR-10 14, Imagenette and
 * CIFAR-100 5, the others 7), so it is the option `patchSize` (default 7).
 *
 * @module
 */
import type { Ctx, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { BatchNorm2d, Conv2d, Linear, ops } from "./core.ts";
import type { ModelSpec } from "./registry.ts";
import { UserError } from "../runtime/errors.ts";

/** Patch sizes the reference scripts use. */
export const CONVMIXER_PATCH_SIZES = [5, 7, 14] as const;

/** conv → GELU → BN, the order every ConvMixer stage uses (`nn.Sequential(conv, GELU, BN)`). */
class ConvGeluBn implements Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(
    p: Params,
    name: string,
    o: { cin: number; cout: number; k: number; stride?: number; pad?: number; depthwise?: boolean },
  ) {
    this.conv = new Conv2d(p, `${name}.0`, { ...o, bias: true });
    // index 1 is the parameter-free GELU
    this.bn = new BatchNorm2d(p, `${name}.2`, o.cout);
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.bn.apply(ops.act(this.conv.apply(x, ctx), "gelu"), ctx);
  }
}

/** One ConvMixerLayer: `x = x + depthwise(x); x = pointwise(x)`. */
class MixerLayer implements Module {
  readonly depthwise: ConvGeluBn;
  readonly pointwise: ConvGeluBn;

  constructor(p: Params, name: string, dim: number, kernel: number) {
    this.depthwise = new ConvGeluBn(p, `${name}.depthwise`, {
      cin: dim,
      cout: dim,
      k: kernel,
      depthwise: true,
    });
    this.pointwise = new ConvGeluBn(p, `${name}.pointwise`, { cin: dim, cout: dim, k: 1 });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.pointwise.apply(ops.add(x, this.depthwise.apply(x, ctx)), ctx);
  }
}

/** The whole network; `stem` is public so tests can check the patch grid. */
export class ConvMixer implements Module {
  readonly stem: Module;
  readonly blocks: MixerLayer[] = [];
  readonly head: Linear;

  constructor(
    p: Params,
    o: { numClasses: number; patchSize: number; dim?: number; depth?: number; kernel?: number },
  ) {
    const dim = o.dim ?? 512, depth = o.depth ?? 8, kernel = o.kernel ?? 5;
    // k = stride = P, no padding: the grid is floor(H / P).
    this.stem = new ConvGeluBn(p, "stem", {
      cin: 3,
      cout: dim,
      k: o.patchSize,
      stride: o.patchSize,
      pad: 0,
    });
    for (let i = 0; i < depth; i++) this.blocks.push(new MixerLayer(p, `blocks.${i}`, dim, kernel));
    // head = Sequential(AdaptiveAvgPool2d, Flatten, Linear)
    this.head = new Linear(p, "head.2", { nin: dim, nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let y = this.stem.apply(x, ctx);
    for (const b of this.blocks) y = b.apply(y, ctx);
    return this.head.apply(ops.globalAvgPool(y, ctx), ctx);
  }
}

/** Registry entry: `convmixer`, option `patchSize` ∈ {5, 7, 14} (default 7). */
export const convmixerSpec: ModelSpec = {
  id: "convmixer",
  description: "convmixer_2m.py ConvMixerModel(dim=512, depth=8, kernel_size=5, patch_size=P)",
  defaults: { patchSize: 7 },
  build(p: Params, o: ModelOptions): Module {
    const patchSize = Number(o.patchSize ?? 7);
    if (!(CONVMIXER_PATCH_SIZES as readonly number[]).includes(patchSize)) {
      throw new UserError(
        `convmixer: patchSize ${o.patchSize} is not one of ${
          CONVMIXER_PATCH_SIZES.join(", ")
        }; pick one of those`,
      );
    }
    return new ConvMixer(p, { numClasses: o.numClasses, patchSize });
  },
};
