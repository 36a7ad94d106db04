/**
 * The reference's ShuffleNet (`shufflenet_v2.py` `ShuffleNet_2M_Model`, docs/protocol.md §4.2):
 * ShuffleNetV2 units with channels [64, 192, 360, 600, 1024] and repeats (4, 8, 4) — and **no
 * channel shuffle**: the reference's `forward` only splits, processes and concatenates, so the
 * untouched half of a basic unit passes unchanged through all basic units of its stage. This file
 * reproduces that faithfully. PyTorch default initialisation.
 *
 * @module
 */
import type { Ctx, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { Act, BatchNorm2d, Conv2d, Linear, ops } from "./core.ts";
import type { ModelSpec } from "./registry.ts";

/** BatchNorm2d followed by ReLU, run as one `ops.batchNorm` call so the fused training kernel applies. */
class BnRelu implements Module {
  constructor(readonly bn: BatchNorm2d) {}
  apply(x: Tensor, ctx: Ctx): Tensor {
    return ops.batchNorm(x, this.bn.params, ctx, "relu");
  }
}

/**
 * An `nn.Sequential` of convs (no bias), BNs and ReLUs, named by their index in the reference's
 * Sequential (activations take an index but hold no parameters).
 */
class Seq implements Module {
  readonly layers: Module[] = [];

  constructor(
    p: Params,
    name: string,
    items: (
      | { conv: { cin: number; cout: number; k: number; stride?: number; depthwise?: boolean } }
      | "bn"
      | "relu"
    )[],
  ) {
    let channels = 0;
    items.forEach((it, i) => {
      if (it === "relu") {
        if (!(this.layers.at(-1) instanceof BnRelu)) this.layers.push(new Act("relu"));
      } else if (it === "bn") {
        const bn = new BatchNorm2d(p, `${name}.${i}`, channels);
        this.layers.push(items[i + 1] === "relu" ? new BnRelu(bn) : bn);
      } else {
        channels = it.conv.cout;
        this.layers.push(new Conv2d(p, `${name}.${i}`, { ...it.conv, bias: false }));
      }
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    return this.layers.reduce((y, m) => m.apply(y, ctx), x);
  }
}

/** One unit (`ShuffleNetV2Block`): stride 2 "down" unit, or stride 1 "basic" unit (split, branch, concat). */
export class ShuffleUnit implements Module {
  readonly branch1?: Seq;
  readonly branch2: Seq;

  constructor(p: Params, name: string, readonly cin: number, cout: number, readonly stride: number) {
    const bf = cout / 2;
    if (stride === 1 && cin !== cout) throw new Error(`${name}: a stride-1 unit needs cin = cout`);
    if (stride > 1) {
      this.branch1 = new Seq(p, `${name}.branch1`, [
        { conv: { cin, cout: cin, k: 3, stride, depthwise: true } },
        "bn",
        { conv: { cin, cout: bf, k: 1 } },
        "bn",
        "relu",
      ]);
    }
    this.branch2 = new Seq(p, `${name}.branch2`, [
      { conv: { cin: stride > 1 ? cin : cin / 2, cout: bf, k: 1 } },
      "bn",
      "relu",
      { conv: { cin: bf, cout: bf, k: 3, stride, depthwise: true } },
      "bn",
      { conv: { cin: bf, cout: bf, k: 1 } },
      "bn",
      "relu",
    ]);
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    if (this.branch1) return ops.concat([this.branch1.apply(x, ctx), this.branch2.apply(x, ctx)], -1);
    // x.chunk(2, dim=C): the first half is passed through untouched (and never shuffled).
    const [x1, x2] = ops.split(x, [this.cin / 2, this.cin / 2], -1);
    return ops.concat([x1, this.branch2.apply(x2, ctx)], -1);
  }
}

/** The network. */
export class ShuffleNet implements Module {
  readonly conv1: Seq;
  readonly stages: ShuffleUnit[][] = [];
  readonly conv5: Seq;
  readonly fc: Linear;

  constructor(p: Params, o: { numClasses: number }) {
    const ch = [64, 192, 360, 600, 1024], repeats = [4, 8, 4];
    this.conv1 = new Seq(p, "conv1", [{ conv: { cin: 3, cout: ch[0], k: 3, stride: 2 } }, "bn", "relu"]);
    repeats.forEach((n, s) => {
      const units = [new ShuffleUnit(p, `stage${s + 2}.0`, ch[s], ch[s + 1], 2)];
      for (let i = 1; i < n; i++) {
        units.push(new ShuffleUnit(p, `stage${s + 2}.${i}`, ch[s + 1], ch[s + 1], 1));
      }
      this.stages.push(units);
    });
    this.conv5 = new Seq(p, "conv5", [{ conv: { cin: ch[3], cout: ch[4], k: 1 } }, "bn", "relu"]);
    this.fc = new Linear(p, "fc", { nin: ch[4], nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let y = ops.maxPool(this.conv1.apply(x, ctx), 3, 2, 1);
    for (const units of this.stages) for (const u of units) y = u.apply(y, ctx);
    return this.fc.apply(ops.globalAvgPool(this.conv5.apply(y, ctx), ctx), ctx);
  }
}

/** Registry entry: `shufflenet`. */
export const shufflenetSpec: ModelSpec = {
  id: "shufflenet",
  description:
    "shufflenet_v2.py ShuffleNet_2M_Model: channels [64,192,360,600,1024], repeats (4,8,4), no shuffle",
  build(p: Params, o: ModelOptions): Module {
    return new ShuffleNet(p, { numClasses: o.numClasses });
  },
};
