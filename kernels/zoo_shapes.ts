/**
 * The depthwise-convolution and Squeeze-and-Excitation layer shapes the model zoo runs, for
 * benchmarks.
 *
 * TODO(registry): derive the list from models/registry.ts once the model definitions land
 * (walk each model's layers and collect its depthwise/SE calls). Until then this enumerates
 * MobileNetV2 and EfficientNet-B0 analytically from their published block configurations
 * (Sandler et al. 2018, Table 2; Tan & Le 2019, Table 1), with PyTorch's padding k // 2.
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
  stride: number;
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

/** A zoo layer shape. */
export type ZooLayerShape = DwLayerShape | SeLayerShape;

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
        stride,
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
  return s.kind === "dw"
    ? `dw ${s.H}x${s.W}x${s.C} k${s.kernel.join("x")} s${s.stride} p${s.pad.join(",")}`
    : `se ${s.H}x${s.W}x${s.C} r${s.Cr} ${s.act}/${s.gate}`;
}

/**
 * Distinct depthwise and SE shapes of the zoo at `imageSize`, each with the models (and repeat
 * counts) it occurs in. Fallback enumeration; see the module TODO.
 */
export function zooKernelShapes(imageSize = 224): ZooLayerShape[] {
  const all = [...mobileNetV2Shapes(imageSize), ...efficientNetB0Shapes(imageSize)];
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

/** A short human-readable label of a layer shape. */
export function describeShape(s: ZooLayerShape): string {
  return shapeKey(s);
}
