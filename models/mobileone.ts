/**
 * MobileOne-s0 as `mobileone.py` builds it (docs/protocol.md §4.2): Apple's MobileOne with width
 * multipliers (0.75, 1, 1, 2), **2** conv branches (the official s0 has 4), no SE, PyTorch default
 * init, train-time multi-branch blocks in both train and eval. {@link mobileone}'s `reparameterize`
 * gives the fused inference network (`reparam_conv` per block), equal in eval up to float error.
 * Parameter names follow the reference (`stage0.rbr_conv.0.conv.weight`, `stage1.3.rbr_skip.*`, `linear.*`).
 *
 * @module
 */
import { type Ctx, Linear, type ModelOptions, type Module, ops, Params, type Tensor } from "./core.ts";
import { reparameterizeWith, RepConv } from "./reparam.ts";
import type { ModelSpec } from "./registry.ts";

/** Blocks per stage and width multipliers of s0. */
const BLOCKS = [2, 8, 10, 1];
const WIDTHS = [0.75, 1.0, 1.0, 2.0];

/** The MobileOne network (train-time branches, or fused when `fused`). */
export class MobileOne implements Module {
  readonly blocks: RepConv[] = [];
  readonly linear: Linear;
  /** Train-time re-param blocks by fused conv name. */
  readonly reps = new Map<string, RepConv>();

  constructor(readonly p: Params, o: ModelOptions, fused = false) {
    const branches = (o.branches as number | undefined) ?? 2;
    const block = (
      name: string,
      cin: number,
      cout: number,
      k: number,
      stride: number,
      depthwise: boolean,
      br: number,
    ) =>
      this.blocks.push(
        new RepConv(p, name, {
          cin,
          cout,
          k,
          stride,
          depthwise,
          branches: br,
          scale: true,
          skip: true,
          act: "relu",
          prefix: "rbr",
          fusedName: `${name}.reparam_conv`,
          fused,
          registry: this.reps,
        }),
      );
    let inPlanes = Math.min(64, Math.trunc(64 * WIDTHS[0]));
    block("stage0", 3, inPlanes, 3, 2, false, 1);
    BLOCKS.forEach((n, si) => {
      const planes = Math.trunc(64 * 2 ** si * WIDTHS[si]);
      for (let i = 0; i < n; i++) {
        block(`stage${si + 1}.${2 * i}`, inPlanes, inPlanes, 3, i === 0 ? 2 : 1, true, branches);
        block(`stage${si + 1}.${2 * i + 1}`, inPlanes, planes, 1, 1, false, branches);
        inPlanes = planes;
      }
    });
    this.linear = new Linear(p, "linear", { nin: inPlanes, nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const h = this.blocks.reduce((y, b) => b.apply(y, ctx), x);
    return this.linear.apply(ops.globalAvgPool(h, ctx), ctx);
  }
}

/** Registry entry of MobileOne-s0 (2 branches); `reparameterize` fuses every block. */
export const mobileoneSpec: ModelSpec = {
  id: "mobileone",
  description: "mobileone(variant='s0') with num_conv_branches=2, no SE (train-time multi-branch graph)",
  defaults: { branches: 2 },
  build: (p, o) => new MobileOne(p, o),
  reparameterize: reparameterizeWith((p, o) => new MobileOne(p, o, true)),
};
