/**
 * TinyNet as `tinynet.py` builds it (docs/protocol.md §4.2): timm's `EfficientNet` on the
 * EfficientNet-B0 `arch_def` at depth multiplier 0.5 (repeats [1,1,1,2,2,2,1]), stem 32 (fixed),
 * 1280 features, Swish, SE 0.25 of the block input, `_init_weight_goog`, no dropout / drop path.
 * Not timm's `tinynet_a..e`. Parameter names follow timm (`conv_stem`, `blocks.<s>.<i>.conv_pw`, …).
 *
 * @module
 */
import { decodeTimmArch, TimmEfficientNet } from "./timm_efficientnet.ts";
import type { ModelSpec } from "./registry.ts";

/** EfficientNet-B0's timm arch_def. */
export const B0_ARCH_DEF: string[][] = [
  ["ds_r1_k3_s1_e1_c16_se0.25"],
  ["ir_r2_k3_s2_e6_c24_se0.25"],
  ["ir_r2_k5_s2_e6_c40_se0.25"],
  ["ir_r3_k3_s2_e6_c80_se0.25"],
  ["ir_r3_k5_s1_e6_c112_se0.25"],
  ["ir_r4_k5_s2_e6_c192_se0.25"],
  ["ir_r1_k3_s1_e6_c320_se0.25"],
];

/** Registry entry of TinyNet (`depthMultiplier`, default 0.5). */
export const tinynetSpec: ModelSpec = {
  id: "tinynet",
  description: "TinyNet(): timm EfficientNet, B0 arch_def at depth 0.5, Swish, stem 32, 1280 features",
  defaults: { depthMultiplier: 0.5 },
  build: (p, o) =>
    new TimmEfficientNet(p, {
      stages: decodeTimmArch(B0_ARCH_DEF, (o.depthMultiplier as number | undefined) ?? 0.5),
      stemSize: 32,
      numFeatures: 1280,
      act: "silu",
      numClasses: o.numClasses,
    }),
};
