/**
 * timm's `EfficientNet` class, the network FBNet-C (fbnet.ts) and TinyNet (tinynet.ts) instantiate
 * with their own `arch_def`: the block-string decoder with timm's depth scaling, and the network
 * built from the decoded stages out of the shared blocks.
 *
 * @module
 */
import { type Activation, type Ctx, Linear, type Module, ops, type Params, type Tensor } from "./core.ts";
import { ConvBnAct, DepthwiseSeparable, makeDivisible, MBConv } from "./blocks.ts";

/** One timm block of an `arch_def` (e.g. `ir_r1_k5_s2_e6_c32_se0.25`, already depth-scaled). */
export interface TimmBlockDef {
  /** `ir`: InvertedResidual; `ds`: DepthwiseSeparableConv. */
  type: "ir" | "ds";
  k: number;
  s: number;
  e: number;
  /** Output channels. */
  c: number;
  /** SE ratio relative to the block input (timm `se_from_exp=False`). */
  se?: number;
}

/** Options of {@link TimmEfficientNet}. */
export interface TimmEfficientNetOptions {
  /** Blocks per stage (each stage is one `blocks.<s>` Sequential). */
  stages: TimmBlockDef[][];
  stemSize: number;
  numFeatures: number;
  act: Activation;
  numClasses: number;
}

/**
 * timm's `EfficientNet` class with BN defaults, drop rates 0 and `_init_weight_goog`: stem
 * `conv_stem`/`bn1`, `blocks.<s>.<i>`, head `conv_head`/`bn2`, average pool, `classifier`.
 * FBNet-C and TinyNet are both instances.
 */
export class TimmEfficientNet implements Module {
  readonly stem: ConvBnAct;
  readonly blocks: Module[] = [];
  readonly head: ConvBnAct;
  readonly classifier: Linear;

  constructor(p: Params, o: TimmEfficientNetOptions) {
    const scheme = "goog";
    const act = o.act;
    this.stem = new ConvBnAct(p, "", {
      cin: 3,
      cout: o.stemSize,
      k: 3,
      stride: 2,
      act,
      scheme,
      names: { conv: "conv_stem", bn: "bn1" },
    });
    let cin = o.stemSize;
    o.stages.forEach((stage, si) => {
      stage.forEach((b, bi) => {
        const name = `blocks.${si}.${bi}`;
        const se = b.se
          ? {
            reduced: Math.round(cin * b.se),
            act: act as "relu" | "silu",
            gate: "sigmoid" as const,
            poolCounted: false,
          }
          : undefined;
        this.blocks.push(
          b.type === "ds"
            ? new DepthwiseSeparable(p, name, { cin, cout: b.c, k: b.k, stride: b.s, act, se, scheme })
            : new MBConv(p, name, {
              cin,
              cout: b.c,
              mid: makeDivisible(cin * b.e, 8),
              k: b.k,
              stride: b.s,
              act,
              se,
              style: "timm",
              scheme,
            }),
        );
        cin = b.c;
      });
    });
    this.head = new ConvBnAct(p, "", {
      cin,
      cout: o.numFeatures,
      k: 1,
      act,
      scheme,
      names: { conv: "conv_head", bn: "bn2" },
    });
    this.classifier = new Linear(p, "classifier", {
      nin: o.numFeatures,
      nout: o.numClasses,
      init: { kind: "uniform", bound: 1 / Math.sqrt(o.numClasses) },
      biasInit: { kind: "zeros" },
    });
  }

  apply(x: Tensor, ctx: Ctx): Tensor {
    let h = this.stem.apply(x, ctx);
    for (const b of this.blocks) h = b.apply(h, ctx);
    return this.classifier.apply(ops.globalAvgPool(this.head.apply(h, ctx), ctx), ctx);
  }
}

/**
 * Decodes timm block strings (`ir_r2_k3_s2_e6_c24_se0.25`) into {@link TimmBlockDef}s, scaling each
 * stage's repeats by `depthMultiplier` with timm's "ceil" rule (stride only on a stage's first block).
 */
export function decodeTimmArch(arch: string[][], depthMultiplier = 1): TimmBlockDef[][] {
  return arch.map((stage) => {
    const defs = stage.map((s) => {
      const [type, ...fields] = s.split("_");
      const get = (key: string) => {
        const t = fields.find((q) => q.startsWith(key) && !isNaN(Number(q.slice(key.length))));
        return t === undefined ? undefined : Number(t.slice(key.length));
      };
      return {
        def: {
          type: type as "ir" | "ds",
          k: get("k")!,
          s: get("s")!,
          e: get("e") ?? 1,
          c: get("c")!,
          se: get("se"),
        },
        r: get("r")!,
      };
    });
    // timm `_scale_stage_depth` ("ceil"): scale the stage total, then share it out from the last
    // string backwards; in a stage only the first block keeps its stride.
    let left = defs.reduce((n, d) => n + d.r, 0);
    let leftScaled = Math.ceil(left * depthMultiplier);
    const reps = new Array<number>(defs.length);
    for (let i = defs.length - 1; i >= 0; i--) {
      reps[i] = Math.max(1, pyRound((defs[i].r / left) * leftScaled));
      left -= defs[i].r;
      leftScaled -= reps[i];
    }
    const out: TimmBlockDef[] = [];
    defs.forEach((d, i) => {
      for (let j = 0; j < reps[i]; j++) out.push({ ...d.def, s: out.length === 0 ? d.def.s : 1 });
    });
    return out;
  });
}

/** Python 3 `round` (half to even). */
function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}
