/**
 * The depthwise-convolution and Squeeze-and-Excitation layer shapes the model zoo runs, for
 * benchmarks. {@link zooKernelShapes} derives them from the model registry (models/), by running
 * every registered model in its shape-only counting mode with `ops.conv2d` / `ops.squeezeExcite`
 * wrapped to record each depthwise and SE call. When models/ cannot be loaded it falls back to
 * an analytic enumeration of MobileNetV2 and EfficientNet-B0 from their published block
 * configurations (Sandler et al. 2018, Table 2; Tan & Le 2019, Table 1; PyTorch padding k // 2).
 *
 * @module
 */
import type { SeActivation, SeGate } from "./se.ts";

/** One depthwise layer shape (input side). */
export interface DwLayerShape {
  kind: "dw";
  H: number;
  W: number;
  C: number;
  kernel: [number, number];
  strides: [number, number];
  pad: [number, number];
  /** Where it occurs, e.g. "mobilenetv2 x3". */
  models: string[];
}

/** One SE block shape (the tensor it gates). */
export interface SeLayerShape {
  kind: "se";
  H: number;
  W: number;
  C: number;
  Cr: number;
  act: SeActivation;
  gate: SeGate;
  models: string[];
}

/** One 1×1 (pointwise, stride 1) convolution: a [B·H·W, Cin] · [Cin, Cout] matmul. */
export interface PwLayerShape {
  kind: "pw";
  H: number;
  W: number;
  /** Input channels (the matmul's K). */
  C: number;
  Cout: number;
  models: string[];
}

/** A zoo layer shape. */
export type ZooLayerShape = DwLayerShape | SeLayerShape | PwLayerShape;

const convOut = (h: number, k: number, s: number) => Math.floor((h + 2 * Math.floor(k / 2) - k) / s) + 1;

/** Inverted-residual stages: expansion t, output channels c, repeats n, first stride s, kernel k, SE. */
interface Stage {
  t: number;
  c: number;
  n: number;
  s: number;
  k: number;
  se: boolean;
}

function enumerate(
  model: string,
  stemChannels: number,
  stages: Stage[],
  imageSize: number,
  seAct: SeActivation,
): ZooLayerShape[] {
  const out: ZooLayerShape[] = [];
  let h = convOut(imageSize, 3, 2); // 3x3 stride-2 stem
  let cin = stemChannels;
  for (const st of stages) {
    for (let i = 0; i < st.n; i++) {
      const stride = i === 0 ? st.s : 1;
      const hidden = cin * st.t;
      const p = Math.floor(st.k / 2);
      out.push({
        kind: "dw",
        H: h,
        W: h,
        C: hidden,
        kernel: [st.k, st.k],
        strides: [stride, stride],
        pad: [p, p],
        models: [model],
      });
      h = convOut(h, st.k, stride);
      if (st.se) {
        // EfficientNet's SE squeezes to a quarter of the block's *input* channels.
        const Cr = Math.max(1, Math.floor(cin * 0.25));
        out.push({ kind: "se", H: h, W: h, C: hidden, Cr, act: seAct, gate: "sigmoid", models: [model] });
      }
      cin = st.c;
    }
  }
  return out;
}

/** MobileNetV2 (width 1.0): depthwise layers only. */
export function mobileNetV2Shapes(imageSize = 224): ZooLayerShape[] {
  const cfg: Array<[number, number, number, number]> = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  return enumerate(
    "mobilenetv2",
    32,
    cfg.map(([t, c, n, s]) => ({ t, c, n, s, k: 3, se: false })),
    imageSize,
    "relu",
  );
}

/** EfficientNet-B0: depthwise layers (3x3 and 5x5) and SE blocks (SiLU, sigmoid gate). */
export function efficientNetB0Shapes(imageSize = 224): ZooLayerShape[] {
  const cfg: Array<[number, number, number, number, number]> = [
    [1, 16, 1, 1, 3],
    [6, 24, 2, 2, 3],
    [6, 40, 2, 2, 5],
    [6, 80, 3, 2, 3],
    [6, 112, 3, 1, 5],
    [6, 192, 4, 2, 5],
    [6, 320, 1, 1, 3],
  ];
  return enumerate(
    "efficientnet_b0",
    32,
    cfg.map(([t, c, n, s, k]) => ({ t, c, n, s, k, se: true })),
    imageSize,
    "silu",
  );
}

function shapeKey(s: ZooLayerShape): string {
  if (s.kind === "dw") {
    return `dw ${s.H}x${s.W}x${s.C} k${s.kernel.join("x")} s${s.strides.join(",")} p${s.pad.join(",")}`;
  }
  return s.kind === "se"
    ? `se ${s.H}x${s.W}x${s.C} r${s.Cr} ${s.act}/${s.gate}`
    : `pw ${s.H}x${s.W}x${s.C}>${s.Cout}`;
}

/** Merges repeated shapes, listing each model (with a repeat count) it occurs in. */
function dedupe(all: ZooLayerShape[]): ZooLayerShape[] {
  const byKey = new Map<string, { shape: ZooLayerShape; counts: Map<string, number> }>();
  for (const s of all) {
    const key = shapeKey(s);
    const entry = byKey.get(key) ?? { shape: { ...s, models: [] }, counts: new Map() };
    for (const m of s.models) entry.counts.set(m, (entry.counts.get(m) ?? 0) + 1);
    byKey.set(key, entry);
  }
  return [...byKey.values()].map(({ shape, counts }) => ({
    ...shape,
    models: [...counts].map(([m, n]) => (n > 1 ? `${m} x${n}` : m)),
  }));
}

/** Analytic fallback: MobileNetV2 and EfficientNet-B0 (used when models/ cannot be loaded). */
export function fallbackKernelShapes(imageSize = 224): ZooLayerShape[] {
  return dedupe([...mobileNetV2Shapes(imageSize), ...efficientNetB0Shapes(imageSize)]);
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === "number" ? [v, v] : v);

/**
 * Records the depthwise, SE and 1×1-conv calls of every registered model (or of `models`) at batch 1 and
 * `imageSize`, using the registry's counting mode (no tensors are computed). Returns undefined
 * when models/ cannot be loaded. The models' `ops` object is patched for the duration only.
 */
export async function registryKernelShapes(
  imageSize = 224,
  models?: readonly string[],
): Promise<ZooLayerShape[] | undefined> {
  let core: typeof import("../models/core.ts");
  let registry: typeof import("../models/registry.ts");
  try {
    core = await import("../models/core.ts");
    registry = await import("../models/registry.ts");
    await import("../models/zoo.ts");
  } catch {
    return undefined;
  }
  const { ops } = core;
  const ids = models ?? Object.keys(registry.MODELS).sort();
  const found: ZooLayerShape[] = [];
  let current = "";
  const conv2d = ops.conv2d;
  const squeezeExcite = ops.squeezeExcite;
  ops.conv2d = (x, w, o, ctx) => {
    if (o.depthwise) {
      const [, H, W, C] = x.shape;
      const [kh, kw] = w.shape;
      found.push({
        kind: "dw",
        H,
        W,
        C,
        kernel: [kh, kw],
        strides: pair(o.stride ?? 1),
        pad: pair(o.pad ?? [(kh - 1) / 2, (kw - 1) / 2]),
        models: [current],
      });
    } else if (
      w.shape[0] === 1 && w.shape[1] === 1 && pair(o.stride ?? 1).join() === "1,1" &&
      pair(o.pad ?? 0).join() === "0,0"
    ) {
      const [, H, W, C] = x.shape;
      found.push({ kind: "pw", H, W, C, Cout: w.shape[w.shape.length - 1] as number, models: [current] });
    }
    return conv2d.call(ops, x, w, o, ctx);
  };
  ops.squeezeExcite = (x, p, o, ctx) => {
    const [, H, W, C] = x.shape;
    const Cr = p.w1.shape[p.w1.shape.length - 1];
    found.push({ kind: "se", H, W, C, Cr, act: o.act, gate: o.gate, models: [current] });
    return squeezeExcite.call(ops, x, p, o, ctx);
  };
  try {
    for (const id of ids) {
      current = id;
      const spec = registry.modelSpec(id);
      registry.countModelOps(id, { ...spec.defaults, numClasses: 1000, imageSize });
    }
  } finally {
    ops.conv2d = conv2d;
    ops.squeezeExcite = squeezeExcite;
  }
  return dedupe(found);
}

/**
 * Distinct depthwise, SE and 1×1-conv shapes of the zoo at `imageSize` (optionally of some models only),
 * each with the models (and repeat counts) it occurs in, and where the list came from.
 */
export async function zooKernelShapes(
  imageSize = 224,
  models?: readonly string[],
): Promise<{ source: "registry" | "fallback"; shapes: ZooLayerShape[] }> {
  const fromRegistry = await registryKernelShapes(imageSize, models);
  if (fromRegistry) return { source: "registry", shapes: fromRegistry };
  return { source: "fallback", shapes: fallbackKernelShapes(imageSize) };
}

/** A short human-readable label of a layer shape. */
export function describeShape(s: ZooLayerShape): string {
  return shapeKey(s);
}
