/**
 * The reference's "MobileViT_Small" (`mobilevit.py`, docs/protocol.md §4.2) — not Apple's MobileViT-S:
 * every pixel is a token (patch_h/patch_w are stored but unused, no unfold/fold), no positional
 * encoding, 2 post-norm PyTorch encoder layers per block (4 heads, FFN 2·d, dropout 0.1), and the
 * fusion is the sum `x + y + z` (no concat + 3×3 conv). Convs: PyTorch defaults, no bias, SiLU.
 *
 * It has 4,667,562 parameters at 10 classes; the paper's Table 1 "2.82 M" leaves out every
 * encoder-layer parameter (a forward-hook artefact, docs/protocol.md §4.4): {@link paperParamCount}.
 *
 * @module
 */
import { type Ctx, Linear, type ModelOptions, type Module, ops, type Params, type Tensor } from "./core.ts";
import { ConvBnAct } from "./blocks.ts";
import { isEncoderLayerParam, TransformerEncoder } from "./transformer.ts";
import type { ModelSpec } from "./registry.ts";

/**
 * [B, H, W, d] -> [B, H·W, d]. In NHWC a plain reshape gives PyTorch's `z.flatten(2).transpose(1, 2)`
 * order: token h·W + w holds pixel (h, w).
 */
export function toTokens(z: Tensor): Tensor {
  const [b, h, w, d] = z.shape as number[];
  return ops.reshape(z, [b, h * w, d]);
}

/** [B, H·W, d] -> [B, H, W, d], PyTorch's `z.transpose(1, 2).view(B, -1, H, W)` in NHWC. */
export function fromTokens(z: Tensor, h: number, w: number): Tensor {
  const [b, , d] = z.shape as number[];
  return ops.reshape(z, [b, h, w, d]);
}

/** `InvertedResidual(in, out, stride, exp_ratio=4)`: PW → DW 3×3 → PW, each with BN; SiLU after the first two. */
class InvertedResidual implements Module {
  readonly layers: ConvBnAct[];
  readonly residual: boolean;

  constructor(p: Params, name: string, cin: number, cout: number, stride: number) {
    const hid = cin * 4;
    this.residual = stride === 1 && cin === cout;
    // block = Sequential(conv, bn, SiLU, dwconv, bn, SiLU, conv, bn)
    this.layers = [
      new ConvBnAct(p, `${name}.block`, { cin, cout: hid, k: 1, act: "silu", names: { conv: "0", bn: "1" } }),
      new ConvBnAct(p, `${name}.block`, {
        cin: hid,
        cout: hid,
        k: 3,
        stride,
        depthwise: true,
        act: "silu",
        names: { conv: "3", bn: "4" },
      }),
      new ConvBnAct(p, `${name}.block`, {
        cin: hid,
        cout,
        k: 1,
        act: "identity",
        names: { conv: "6", bn: "7" },
      }),
    ];
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const y = this.layers.reduce((t, m) => m.apply(t, ctx), x);
    return this.residual ? ops.add(y, x) : y;
  }
}

/** Transformer width, FFN width and heads of one MobileViT block. */
export interface MViTBlockOptions {
  channels: number;
  dim: number;
  ffnDim: number;
  heads: number;
  layers: number;
  dropout: number;
}

/** `MobileViTBlock`: y = local 3×3; z = expand(encoder(tokens(reduce(y)))); out = x + y + z. */
export class MobileViTBlock implements Module {
  readonly localConv: ConvBnAct;
  readonly reduceConv: ConvBnAct;
  readonly transformer: TransformerEncoder;
  readonly expandConv: ConvBnAct;

  constructor(p: Params, name: string, o: MViTBlockOptions) {
    this.localConv = new ConvBnAct(p, `${name}.local_conv`, {
      cin: o.channels,
      cout: o.channels,
      k: 3,
      act: "silu",
    });
    this.reduceConv = new ConvBnAct(p, `${name}.reduce_conv`, {
      cin: o.channels,
      cout: o.dim,
      k: 1,
      act: "silu",
    });
    this.transformer = new TransformerEncoder(p, `${name}.transformer`, o.layers, {
      dim: o.dim,
      heads: o.heads,
      ffnDim: o.ffnDim,
      dropout: o.dropout,
      eps: 1e-5,
    });
    this.expandConv = new ConvBnAct(p, `${name}.expand_conv`, {
      cin: o.dim,
      cout: o.channels,
      k: 1,
      act: "silu",
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const y = this.localConv.apply(x, ctx);
    const [, h, w] = y.shape as number[];
    const tokens = this.transformer.apply(toTokens(this.reduceConv.apply(y, ctx)), ctx);
    const z = this.expandConv.apply(fromTokens(tokens, h, w), ctx);
    return ops.add(ops.add(x, y), z);
  }
}

/** The network (`MobileViT_Small`). */
export class MobileViT implements Module {
  readonly layers: Module[] = [];
  readonly fc: Linear;

  constructor(p: Params, o: { numClasses: number }) {
    const block = (name: string, channels: number, dim: number) =>
      new MobileViTBlock(p, name, { channels, dim, ffnDim: 2 * dim, heads: 4, layers: 2, dropout: 0.1 });
    this.layers.push(
      new ConvBnAct(p, "conv1", { cin: 3, cout: 32, k: 3, stride: 2, act: "silu" }),
      new InvertedResidual(p, "layer1.0", 32, 64, 1),
      new InvertedResidual(p, "layer2.0", 64, 128, 2),
      new InvertedResidual(p, "layer2.1", 128, 128, 1),
      new InvertedResidual(p, "layer3.0", 128, 128, 2),
      block("layer3.1", 128, 144),
      new InvertedResidual(p, "layer4.0", 128, 256, 2),
      block("layer4.1", 256, 192),
      new InvertedResidual(p, "layer5.0", 256, 256, 2),
      block("layer5.1", 256, 240),
      new ConvBnAct(p, "conv_exp", { cin: 256, cout: 512, k: 1, act: "silu" }),
    );
    this.fc = new Linear(p, "fc", { nin: 512, nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const y = this.layers.reduce((t, m) => m.apply(t, ctx), x);
    return this.fc.apply(ops.globalAvgPool(y, ctx), ctx);
  }
}

/**
 * Parameters as the paper's Table 1 counted them: trainable parameters outside every
 * `nn.TransformerEncoderLayer` (their hooks never fire on PyTorch's fused eval fast path).
 * Equal to {@link Params.countTrainable} for models without encoder layers.
 */
export function paperParamCount(p: Params): number {
  return p.entries.filter((e) => e.trainable && !isEncoderLayerParam(e.name))
    .reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
}

/** Registry entry: `mobilevit`. */
export const mobilevitSpec: ModelSpec = {
  id: "mobilevit",
  description: "mobilevit.py MobileViT_Small: pixel tokens, 2 post-norm encoder layers per block, sum fusion",
  build(p: Params, o: ModelOptions): Module {
    return new MobileViT(p, { numClasses: o.numClasses });
  },
};
