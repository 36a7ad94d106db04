/**
 * GhostNet as `ghostnetv3.py` builds it (docs/protocol.md §4.2): a truncated GhostNetV3 (9
 * bottlenecks, output stride 16) with train-time re-parameterisable branches (3 conv branches +
 * 1×1 scale + BN skip), GhostNetV2 DFC attention from layer 2 on, hard-sigmoid SE, and the head
 * pool → 1×1 conv 720→1280 (+bias) → ReLU → Linear. PyTorch default init. The multi-branch graph
 * is used in train and eval; {@link ghostnet}'s `reparameterize` fuses it (`primary_conv.0`,
 * `cheap_operation.0`, `conv_dw`) for inference. Parameter names follow the reference.
 *
 * @module
 */
import type { Ctx, ModelOptions, Module, Params, Tensor } from "./core.ts";
import { BatchNorm2d, Conv2d, Linear, ops } from "./core.ts";
import { ConvBnAct, makeDivisible, SqueezeExcite } from "./blocks.ts";
import { reparameterizeWith, RepConv } from "./reparam.ts";
import type { ModelSpec } from "./registry.ts";

/** Bottleneck rows (k, exp, out, se, s), grouped into the `blocks.<i>` stages of the reference. */
const CFGS: [number, number, number, number, number][][] = [
  [[3, 16, 16, 0, 1]],
  [[3, 48, 24, 0, 2]],
  [[3, 72, 24, 0, 1]],
  [[5, 72, 40, 0.25, 2]],
  [[5, 120, 40, 0.25, 1]],
  [[3, 240, 80, 0, 2]],
  [[3, 184, 80, 0, 1], [3, 240, 160, 0.25, 1]],
  [[5, 720, 192, 0.25, 1]],
];

/** Build-time switches shared by every block of one network. */
interface Build {
  fused: boolean;
  reps: Map<string, RepConv>;
}

/**
 * GhostModule (ratio 2, 1×1 primary, 3×3 depthwise cheap op); in `dfc` mode the output is gated
 * by sigmoid(short_conv(avg_pool2d(x, 2))) upsampled (nearest) to the output size.
 */
class GhostModule implements Module {
  readonly shortConv?: Module[];
  readonly primary: RepConv;
  readonly cheap: RepConv;

  constructor(
    p: Params,
    name: string,
    readonly o: { inp: number; oup: number; relu: boolean; dfc: boolean },
    b: Build,
  ) {
    if (o.oup % 2 !== 0) throw new Error(`GhostModule ${name}: odd width ${o.oup} is not supported`);
    const init = Math.ceil(o.oup / 2);
    if (o.dfc) {
      const s = `${name}.short_conv`;
      this.shortConv = [
        new Conv2d(p, `${s}.0`, { cin: o.inp, cout: o.oup, k: 1 }),
        new BatchNorm2d(p, `${s}.1`, o.oup),
        new Conv2d(p, `${s}.2`, { cin: o.oup, cout: o.oup, k: [1, 5], pad: [0, 2], depthwise: true }),
        new BatchNorm2d(p, `${s}.3`, o.oup),
        new Conv2d(p, `${s}.4`, { cin: o.oup, cout: o.oup, k: [5, 1], pad: [2, 0], depthwise: true }),
        new BatchNorm2d(p, `${s}.5`, o.oup),
      ];
    }
    const act = o.relu ? "relu" : "identity";
    const common = { branches: 3, scale: true, skip: true, act, fused: b.fused, registry: b.reps } as const;
    this.primary = new RepConv(p, name, {
      ...common,
      cin: o.inp,
      cout: init,
      k: 1,
      stride: 1,
      depthwise: false,
      prefix: "primary_rpr",
      fusedName: `${name}.primary_conv.0`,
    });
    this.cheap = new RepConv(p, name, {
      ...common,
      cin: init,
      cout: init,
      k: 3,
      stride: 1,
      depthwise: true,
      prefix: "cheap_rpr",
      fusedName: `${name}.cheap_operation.0`,
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    const x1 = this.primary.apply(x, ctx);
    const out = ops.concat([x1, this.cheap.apply(x1, ctx)], -1);
    if (!this.shortConv) return out;
    const res = this.shortConv.reduce((h, m) => m.apply(h, ctx), ops.avgPool(x, 2));
    const [, h, w] = out.shape;
    return ops.mul(out, ops.resizeNearest(ops.act(res, "sigmoid"), h, w, ctx));
  }
}

/** Ghost bottleneck: ghost1 → [re-param DW k×k stride s] → [SE] → ghost2, plus the shortcut. */
class GhostBottleneck implements Module {
  readonly ghost1: GhostModule;
  readonly dw?: RepConv;
  readonly se?: SqueezeExcite;
  readonly ghost2: GhostModule;
  readonly shortcut?: Module[];

  constructor(
    p: Params,
    name: string,
    o: { cin: number; mid: number; cout: number; k: number; s: number; se: number; layerId: number },
    b: Build,
  ) {
    this.ghost1 = new GhostModule(p, `${name}.ghost1`, {
      inp: o.cin,
      oup: o.mid,
      relu: true,
      dfc: o.layerId > 1,
    }, b);
    if (o.s > 1) {
      this.dw = new RepConv(p, name, {
        cin: o.mid,
        cout: o.mid,
        k: o.k,
        stride: o.s,
        depthwise: true,
        branches: 3,
        scale: true,
        skip: true,
        act: "identity",
        prefix: "dw_rpr",
        fusedName: `${name}.conv_dw`,
        fused: b.fused,
        registry: b.reps,
      });
    }
    if (o.se > 0) {
      this.se = new SqueezeExcite(p, `${name}.se`, {
        channels: o.mid,
        reduced: makeDivisible(o.mid * o.se, 4),
        act: "relu",
        gate: "hardsigmoid",
        names: { reduce: "conv_reduce", expand: "conv_expand" },
        scheme: "torch",
        poolCounted: true,
      });
    }
    this.ghost2 = new GhostModule(
      p,
      `${name}.ghost2`,
      { inp: o.mid, oup: o.cout, relu: false, dfc: false },
      b,
    );
    if (!(o.cin === o.cout && o.s === 1)) {
      const s = `${name}.shortcut`;
      this.shortcut = [
        new Conv2d(p, `${s}.0`, { cin: o.cin, cout: o.cin, k: o.k, stride: o.s, depthwise: true }),
        new BatchNorm2d(p, `${s}.1`, o.cin),
        new Conv2d(p, `${s}.2`, { cin: o.cin, cout: o.cout, k: 1 }),
        new BatchNorm2d(p, `${s}.3`, o.cout),
      ];
    }
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.ghost1.apply(x, ctx);
    if (this.dw) h = this.dw.apply(h, ctx);
    if (this.se) h = this.se.apply(h, ctx);
    h = this.ghost2.apply(h, ctx);
    const r = this.shortcut ? this.shortcut.reduce((y, m) => m.apply(y, ctx), x) : x;
    return ops.add(h, r);
  }
}

/** The GhostNetV3 network of the reference (width 1.0). */
export class GhostNet implements Module {
  readonly stem: ConvBnAct;
  readonly blocks: Module[] = [];
  readonly convHead: Conv2d;
  readonly classifier: Linear;
  readonly reps = new Map<string, RepConv>();

  constructor(readonly p: Params, o: ModelOptions, fused = false) {
    const b: Build = { fused, reps: this.reps };
    this.stem = new ConvBnAct(p, "", {
      cin: 3,
      cout: 16,
      k: 3,
      stride: 2,
      act: "relu",
      names: { conv: "conv_stem", bn: "bn1" },
    });
    let cin = 16, layerId = 0, last = 0;
    CFGS.forEach((stage, si) => {
      stage.forEach(([k, exp, c, se, s], bi) => {
        this.blocks.push(
          new GhostBottleneck(p, `blocks.${si}.${bi}`, {
            cin,
            mid: exp,
            cout: c,
            k,
            s,
            se,
            layerId: layerId++,
          }, b),
        );
        cin = c;
        last = exp;
      });
    });
    this.blocks.push(
      new ConvBnAct(p, `blocks.${CFGS.length}.0`, {
        cin,
        cout: last,
        k: 1,
        act: "relu",
        names: { conv: "conv", bn: "bn1" },
      }),
    );
    this.convHead = new Conv2d(p, "conv_head", { cin: last, cout: 1280, k: 1, bias: true });
    this.classifier = new Linear(p, "classifier", { nin: 1280, nout: o.numClasses });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.stem.apply(x, ctx);
    for (const b of this.blocks) h = b.apply(h, ctx);
    const pooled = ops.globalAvgPool(h, ctx);
    const c = pooled.shape[1] as number;
    const head = ops.act(this.convHead.apply(ops.reshape(pooled, [-1, 1, 1, c]), ctx), "relu");
    return this.classifier.apply(ops.reshape(head, [-1, 1280]), ctx);
  }
}

/** Registry entry of GhostNetV3 (reference config); `reparameterize` fuses the re-param branches. */
export const ghostnetSpec: ModelSpec = {
  id: "ghostnet",
  description:
    "ghostnetv3(width=1.0): truncated GhostNetV3 with DFC attention (train-time multi-branch graph)",
  build: (p, o) => new GhostNet(p, o),
  reparameterize: reparameterizeWith((p, o) => new GhostNet(p, o, true)),
};
