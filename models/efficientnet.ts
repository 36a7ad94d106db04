/**
 * EfficientNet as the reference scripts instantiate it (docs/protocol.md §4.2): a copy of
 * torchvision's EfficientNet-V1 class with three configurations.
 * - `"b0-2m"` (default): `EfficientNet_B0_2M`, a truncated B0 (stages 5–6 widened to 192/256, no
 *   stride in stage 5, head 1024), used on CIFAR-10, HAM, Dogs, Indoor, Places.
 * - `"b0"`: `EfficientNet_B0_Model`, the standard B0 table (Imagenette).
 * - `"tv-b0"`: `torchvision.models.efficientnet_b0` (CIFAR-100); the same network as `"b0"`.
 *
 * Parameter names follow torchvision (`features.<stage>.<i>.block.<j>…`, `classifier.1.*`).
 *
 * @module
 */
import { type Ctx, Linear, type ModelOptions, type Module, ops, type Params, type Tensor } from "./core.ts";
import { ConvBnAct, makeDivisible, MBConv } from "./blocks.ts";
import type { ModelSpec } from "./registry.ts";

/** The configurations of {@link EfficientNet}. */
export type EfficientNetVariant = "b0-2m" | "b0" | "tv-b0";

/** torchvision `MBConvConfig(expand_ratio, kernel, stride, in, out, layers)`. */
type StageConfig = [number, number, number, number, number, number];

const B0: StageConfig[] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

/** B0's first four stages, then two wider, shallower ones ending at 256 channels (docs/protocol.md §4.2). */
const B0_2M: StageConfig[] = [...B0.slice(0, 4), [6, 5, 1, 80, 192, 3], [6, 3, 1, 192, 256, 1]];

/** The stage table of a variant. */
export function efficientNetStages(variant: EfficientNetVariant): StageConfig[] {
  switch (variant) {
    case "b0-2m":
      return B0_2M;
    case "b0":
    case "tv-b0":
      return B0;
    default:
      throw new Error(`unknown EfficientNet variant "${variant}" (b0-2m, b0, tv-b0)`);
  }
}

/**
 * torchvision EfficientNet-V1: stem Conv 3×3/2 → BN → SiLU, MBConv stages (SE squeeze
 * max(1, in//4), stochastic depth 0.2·block/total on residual blocks), head PW → 4·last_in,
 * avgpool, Dropout(0.2), Linear.
 */
export class EfficientNet implements Module {
  readonly features: Module[] = [];
  readonly classifier: Linear;

  constructor(p: Params, o: ModelOptions) {
    const stages = efficientNetStages((o.variant as EfficientNetVariant | undefined) ?? "b0-2m");
    const scheme = "torchvision";
    const dropPathMax = 0.2;
    const stemOut = stages[0][3];
    this.features.push(
      new ConvBnAct(p, "features.0", { cin: 3, cout: stemOut, k: 3, stride: 2, act: "silu", scheme }),
    );
    const total = stages.reduce((n, s) => n + s[5], 0);
    let blockId = 0;
    for (const [e, k, s, cin0, cout, n] of stages) {
      const stage: Module[] = [];
      const name = `features.${this.features.length}`;
      for (let i = 0; i < n; i++) {
        const cin = i === 0 ? cin0 : cout;
        stage.push(
          new MBConv(p, `${name}.${i}`, {
            cin,
            cout,
            mid: makeDivisible(cin * e, 8),
            k,
            stride: i === 0 ? s : 1,
            act: "silu",
            se: {
              reduced: Math.max(1, Math.floor(cin / 4)),
              act: "silu",
              gate: "sigmoid",
              poolCounted: true,
            },
            dropPath: (dropPathMax * blockId) / total,
            style: "torchvision",
            scheme,
          }),
        );
        blockId++;
      }
      this.features.push({ apply: (x, ctx) => stage.reduce((h, m) => m.apply(h, ctx), x) });
    }
    const lastIn = stages[stages.length - 1][4];
    const lastOut = 4 * lastIn;
    this.features.push(
      new ConvBnAct(p, `features.${this.features.length}`, {
        cin: lastIn,
        cout: lastOut,
        k: 1,
        act: "silu",
        scheme,
      }),
    );
    const range = 1 / Math.sqrt(o.numClasses);
    this.classifier = new Linear(p, "classifier.1", {
      nin: lastOut,
      nout: o.numClasses,
      init: { kind: "uniform", bound: range },
      biasInit: { kind: "zeros" },
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const h = this.features.reduce((y, m) => m.apply(y, ctx), x);
    return this.classifier.apply(ops.dropout(ops.globalAvgPool(h, ctx), 0.2, ctx), ctx);
  }
}

/** Registry entry of EfficientNet (`variant`: "b0-2m" default, "b0", "tv-b0"). */
export const efficientnetSpec: ModelSpec = {
  id: "efficientnet",
  description:
    "EfficientNet_B0_2M (torchvision EfficientNet-V1 class); variants b0 (EfficientNet_B0_Model), " +
    "tv-b0 (torchvision efficientnet_b0)",
  defaults: { variant: "b0-2m" },
  build: (p, o) => new EfficientNet(p, o),
};
