/**
 * MobileNetV2 as the reference scripts instantiate it: torchvision `mobilenet_v2(num_classes,
 * weights=None)`, width 1.0 (docs/protocol.md §4.2). Parameter names follow torchvision's
 * `state_dict` (`features.<i>…`, `classifier.1.*`).
 *
 * @module
 */
import { type Ctx, Linear, type ModelOptions, type Module, ops, type Params, type Tensor } from "./core.ts";
import { ConvBnAct, InvertedResidual } from "./blocks.ts";
import type { ModelSpec } from "./registry.ts";

/** torchvision's inverted-residual setting: (t, c, n, s). */
const SETTING: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** torchvision MobileNetV2 (width 1.0, last channel 1280, dropout 0.2 before the classifier). */
export class MobileNetV2 implements Module {
  readonly features: Module[] = [];
  readonly classifier: Linear;

  constructor(p: Params, o: ModelOptions) {
    const scheme = "torchvision";
    this.features.push(
      new ConvBnAct(p, "features.0", { cin: 3, cout: 32, k: 3, stride: 2, act: "relu6", scheme }),
    );
    let cin = 32;
    for (const [t, c, n, s] of SETTING) {
      for (let i = 0; i < n; i++) {
        this.features.push(
          new InvertedResidual(p, `features.${this.features.length}`, {
            cin,
            cout: c,
            stride: i === 0 ? s : 1,
            expand: t,
            scheme,
          }),
        );
        cin = c;
      }
    }
    this.features.push(
      new ConvBnAct(p, `features.${this.features.length}`, { cin, cout: 1280, k: 1, act: "relu6", scheme }),
    );
    this.classifier = new Linear(p, "classifier.1", {
      nin: 1280,
      nout: o.numClasses,
      init: { kind: "normal", std: 0.01 },
      biasInit: { kind: "zeros" },
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const h = this.features.reduce((y, m) => m.apply(y, ctx), x);
    return this.classifier.apply(ops.dropout(ops.globalAvgPool(h, ctx), 0.2, ctx), ctx);
  }
}

/** Registry entry of MobileNetV2. */
export const mobilenetSpec: ModelSpec = {
  id: "mobilenet",
  description: "torchvision mobilenet_v2, width 1.0",
  build: (p, o) => new MobileNetV2(p, o),
};
