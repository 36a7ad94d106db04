/**
 * The reference's small ConvNeXt (`convnext.py` `ConvNextModel` → `ConvNext(layer_dims=[32, 64,
 * 128, 512], depths=[1, 1, 1, 1], patch_size=4, drop_rate=0)`, docs/protocol.md §4.2).
 *
 * Two LayerNorm flavours appear in the reference, and they differ only in how fvcore counts them:
 * the "channels_first" LN of the stem and the downsamplers is written by hand (mean/pow/sqrt: not
 * counted), the "channels_last" LN inside each block and in the head is `F.layer_norm` (5 FLOPs per
 * element). In NHWC both normalise the last axis. The head's `x.mean(dim=(-2,-1))` is not an
 * adaptive pool, so fvcore does not count it either. drop_rate 0 means no stochastic depth.
 * PyTorch default initialisation everywhere; layer-scale γ starts at 1e-6.
 *
 * @module
 */
import type { Ctx, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { Conv2d, LayerNorm, Linear, ops } from "./core.ts";
import type { ModelSpec } from "./registry.ts";

const LN_EPS = 1e-6;
/** Initial value of every block's layer-scale γ (the reference's `layer_scale`). */
export const CONVNEXT_LAYER_SCALE_INIT = 1e-6;

/**
 * One ConvNeXt block: DW 7×7 (+bias) → LN → Linear(d, 4d) → GELU → Linear(4d, d) → ·γ, plus the
 * residual. γ is stored as [d, 1, 1], the reference's shape, so the exported `state_dict` loads with
 * `strict=True`; the forward reshapes it to [d] to broadcast over NHWC's last axis (same values).
 */
class ConvNextBlock implements Module {
  readonly dwconv: Conv2d;
  readonly norm: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly gamma: Tensor;

  constructor(p: Params, name: string, readonly dim: number) {
    // `block` = Sequential(dwconv, Permute, LayerNorm, Linear, GELU, Linear, Permute)
    this.dwconv = new Conv2d(p, `${name}.block.0`, {
      cin: dim,
      cout: dim,
      k: 7,
      depthwise: true,
      bias: true,
    });
    this.norm = new LayerNorm(p, `${name}.block.2`, dim, LN_EPS);
    this.fc1 = new Linear(p, `${name}.block.3`, { nin: dim, nout: 4 * dim });
    this.fc2 = new Linear(p, `${name}.block.5`, { nin: 4 * dim, nout: dim });
    this.gamma = p.weight(`${name}.gamma`, [dim, 1, 1], {
      kind: "constant",
      value: CONVNEXT_LAYER_SCALE_INIT,
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let y = this.norm.apply(this.dwconv.apply(x, ctx), ctx);
    y = this.fc2.apply(ops.act(this.fc1.apply(y, ctx), "gelu"), ctx);
    return ops.add(x, ops.mul(y, ops.reshape(this.gamma, [this.dim])));
  }
}

/** The network; stage i = downsample_layers[i] then stage_layers[i]. */
export class ConvNext implements Module {
  readonly stages: { down: Module[]; blocks: ConvNextBlock[] }[] = [];
  readonly headNorm: LayerNorm;
  readonly head: Linear;

  constructor(
    p: Params,
    o: { numClasses: number; dims?: number[]; depths?: number[]; patchSize?: number },
  ) {
    const dims = o.dims ?? [32, 64, 128, 512], depths = o.depths ?? [1, 1, 1, 1];
    const patch = o.patchSize ?? 4;
    const downs: Module[][] = [[
      new Conv2d(p, "downsample_layers.0.0", {
        cin: 3,
        cout: dims[0],
        k: patch,
        stride: patch,
        pad: 0,
        bias: true,
      }),
      new LayerNorm(p, "downsample_layers.0.1", dims[0], LN_EPS, false),
    ]];
    for (let i = 1; i < dims.length; i++) {
      downs.push([
        new LayerNorm(p, `downsample_layers.${i}.0`, dims[i - 1], LN_EPS, false),
        new Conv2d(p, `downsample_layers.${i}.1`, {
          cin: dims[i - 1],
          cout: dims[i],
          k: 2,
          stride: 2,
          pad: 0,
          bias: true,
        }),
      ]);
    }
    // The reference creates every downsampler before any stage; keep that order for the seeded init.
    for (let i = 0; i < dims.length; i++) {
      const blocks: ConvNextBlock[] = [];
      for (let j = 0; j < depths[i]; j++) {
        blocks.push(new ConvNextBlock(p, `stage_layers.${i}.blocks.${j}`, dims[i]));
      }
      this.stages.push({ down: downs[i], blocks });
    }
    this.headNorm = new LayerNorm(p, "cls.0", dims[dims.length - 1], LN_EPS);
    this.head = new Linear(p, "cls.1", { nin: dims[dims.length - 1], nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let y = x;
    for (const s of this.stages) {
      for (const m of s.down) y = m.apply(y, ctx);
      for (const b of s.blocks) y = b.apply(y, ctx);
    }
    return this.head.apply(this.headNorm.apply(ops.globalAvgPool(y, ctx, false), ctx), ctx);
  }
}

/** Registry entry: `convnext`. */
export const convnextSpec: ModelSpec = {
  id: "convnext",
  description: "convnext.py ConvNextModel: ConvNext(dims [32,64,128,512], depths [1,1,1,1], patch 4, drop 0)",
  build(p: Params, o: ModelOptions): Module {
    return new ConvNext(p, { numClasses: o.numClasses });
  },
};
