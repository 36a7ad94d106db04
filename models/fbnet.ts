/**
 * FBNet as `fbnet.py` builds it (docs/protocol.md §4.2): `timm.create_model("fbnetc_100")`, i.e.
 * timm's `EfficientNet` with FBNet-C's arch_def, stem 16, 1984 features, ReLU, no SE, BN defaults,
 * drop rates 0, `_init_weight_goog`. Every block is a timm `InvertedResidual` whose expand conv is
 * present even at e = 1. Parameter names follow timm.
 *
 * @module
 */
import { decodeTimmArch, TimmEfficientNet } from "./timm_efficientnet.ts";
import type { ModelSpec } from "./registry.ts";

/** timm `_gen_fbnetc` arch_def. */
export const FBNETC_ARCH_DEF: string[][] = [
  ["ir_r1_k3_s1_e1_c16"],
  ["ir_r1_k3_s2_e6_c24", "ir_r2_k3_s1_e1_c24"],
  ["ir_r1_k5_s2_e6_c32", "ir_r1_k5_s1_e3_c32", "ir_r1_k5_s1_e6_c32", "ir_r1_k3_s1_e6_c32"],
  ["ir_r1_k5_s2_e6_c64", "ir_r1_k5_s1_e3_c64", "ir_r2_k5_s1_e6_c64"],
  ["ir_r3_k5_s1_e6_c112", "ir_r1_k5_s1_e3_c112"],
  ["ir_r4_k5_s2_e6_c184"],
  ["ir_r1_k3_s1_e6_c352"],
];

/** Registry entry of FBNet-C (timm fbnetc_100). */
export const fbnetSpec: ModelSpec = {
  id: "fbnet",
  description: "timm fbnetc_100 (FBNet-C), ReLU, no SE",
  build: (p, o) =>
    new TimmEfficientNet(p, {
      stages: decodeTimmArch(FBNETC_ARCH_DEF),
      stemSize: 16,
      numFeatures: 1984,
      act: "relu",
      numClasses: o.numClasses,
    }),
};
