/**
 * PyTorch's `nn.TransformerEncoder` of `nn.TransformerEncoderLayer`s as MobileViT uses them
 * (docs/protocol.md §4.2, §4.5): batch_first, post-norm (`norm_first=False`), erf GELU, dropout
 * everywhere, `nn.MultiheadAttention` with one packed in-projection. Parameter names mirror the
 * PyTorch state_dict (`layers.<i>.self_attn.in_proj_weight`, `…linear1.weight`, `…norm2.bias`, …).
 *
 * Initialisation as PyTorch: the in-projection is xavier_uniform with zero bias, the out-projection
 * keeps nn.Linear's default weight with a zero bias, linear1/linear2 keep nn.Linear's defaults,
 * LayerNorms 1/0. `nn.TransformerEncoder` deep-copies one initialised layer, so every layer of an
 * encoder starts with identical weights (the later layers use {@link Init} `copy`).
 *
 * The attention matmuls run through `ops.matMul`: they count as MACs but not as fvcore FLOPs,
 * as in the paper's `FlopCountAnalysis` (it does not count scaled_dot_product_attention).
 *
 * @module
 */
import type { Ctx, Init, Module, Params, Tensor } from "./core.ts";
import { LayerNorm, Linear, ops } from "./core.ts";

/** Hyper-parameters of one encoder layer. */
export interface EncoderLayerOptions {
  dim: number;
  heads: number;
  ffnDim: number;
  /** Dropout on attention probabilities, after attention, inside and after the FFN. */
  dropout: number;
  /** LayerNorm eps (PyTorch default 1e-5). */
  eps?: number;
}

/** One post-norm `nn.TransformerEncoderLayer`: x = LN1(x + Drop(MHA(x))); x = LN2(x + Drop(FFN(x))). */
export class TransformerEncoderLayer implements Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;

  /**
   * @param copyOf name prefix of an already-built layer whose initial values this one copies
   *   (the deep copy of `nn.TransformerEncoder`); omitted, the layer draws fresh values.
   */
  constructor(p: Params, name: string, readonly o: EncoderLayerOptions, copyOf?: string) {
    const d = o.dim;
    if (d % o.heads !== 0) throw new Error(`${name}: dim ${d} is not divisible by ${o.heads} heads`);
    const init = (suffix: string, fresh: Init): Init =>
      copyOf ? { kind: "copy", of: `${copyOf}.${suffix}` } : fresh;
    // xavier_uniform on the torch [3d, d] weight: bound √(6 / (fan_in + fan_out)) = √(6 / 4d).
    this.inProjWeight = p.weight(
      `${name}.self_attn.in_proj_weight`,
      [d, 3 * d],
      init("self_attn.in_proj_weight", { kind: "uniform", bound: Math.sqrt(6 / (4 * d)) }),
      "linear",
    );
    this.inProjBias = p.weight(`${name}.self_attn.in_proj_bias`, [3 * d], { kind: "zeros" });
    const linear = (sub: string, nin: number, nout: number, zeroBias = false) =>
      new Linear(p, `${name}.${sub}`, {
        nin,
        nout,
        init: copyOf ? { kind: "copy", of: `${copyOf}.${sub}.weight` } : undefined,
        biasInit: zeroBias
          ? { kind: "zeros" }
          : copyOf
          ? { kind: "copy", of: `${copyOf}.${sub}.bias` }
          : undefined,
      });
    this.outProj = linear("self_attn.out_proj", d, d, true);
    this.linear1 = linear("linear1", d, o.ffnDim);
    this.linear2 = linear("linear2", o.ffnDim, d);
    this.norm1 = new LayerNorm(p, `${name}.norm1`, d, o.eps ?? 1e-5);
    this.norm2 = new LayerNorm(p, `${name}.norm2`, d, o.eps ?? 1e-5);
  }

  /** x [B, N, dim] -> [B, N, dim]. */
  apply(x: Tensor, ctx: Ctx): Tensor {
    const rate = this.o.dropout;
    const a = ops.dropout(this.attention(x, ctx), rate, ctx);
    const h = this.norm1.apply(ops.add(x, a), ctx);
    const f = ops.dropout(ops.act(this.linear1.apply(h, ctx), "gelu"), rate, ctx);
    const y = ops.dropout(this.linear2.apply(f, ctx), rate, ctx);
    return this.norm2.apply(ops.add(h, y), ctx);
  }

  /** Multi-head self-attention: softmax(q kᵀ / √head_dim) v per head, dropout on the probabilities. */
  attention(x: Tensor, ctx: Ctx): Tensor {
    const [b, n, d] = x.shape as number[];
    const heads = this.o.heads, hd = d / heads;
    const qkv = ops.linear(x, this.inProjWeight, this.inProjBias, ctx);
    const toHeads = (t: Tensor) => ops.transpose(ops.reshape(t, [b, n, heads, hd]), [0, 2, 1, 3]);
    const [q, k, v] = ops.split(qkv, [d, d, d], -1).map(toHeads);
    // Scaling q (N·hd values) is cheaper than scaling the N×N scores and equal in exact arithmetic.
    const scores = ops.matMul(ops.mul(q, 1 / Math.sqrt(hd)), k, false, true, ctx);
    const probs = ops.dropout(ops.softmax(scores), this.o.dropout, ctx);
    const out = ops.matMul(probs, v, false, false, ctx); // [B, heads, N, hd]
    const merged = ops.reshape(ops.transpose(out, [0, 2, 1, 3]), [b, n, d]);
    return this.outProj.apply(merged, ctx);
  }
}

/** `nn.TransformerEncoder(layer, num_layers)` without a final norm: `<name>.layers.<i>.…`. */
export class TransformerEncoder implements Module {
  readonly layers: TransformerEncoderLayer[] = [];

  constructor(p: Params, name: string, numLayers: number, o: EncoderLayerOptions) {
    const first = `${name}.layers.0`;
    for (let i = 0; i < numLayers; i++) {
      this.layers.push(new TransformerEncoderLayer(p, `${name}.layers.${i}`, o, i === 0 ? undefined : first));
    }
  }

  /** x [B, N, dim] -> [B, N, dim]. */
  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.layers.reduce((y, l) => l.apply(y, ctx), x);
  }
}

/** True for parameters inside an `nn.TransformerEncoderLayer` built by {@link TransformerEncoder}. */
export function isEncoderLayerParam(name: string): boolean {
  return /(^|\.)layers\.\d+\.(self_attn|linear1|linear2|norm1|norm2)\./.test(name);
}
