/**
 * The layer shapes the custom kernels serve, as benchmarks and tests list them: depthwise
 * convolutions, Squeeze-and-Excitation blocks and 1×1 convolutions (matmuls). models/inspect.ts
 * reads them off the model zoo; this module only names and merges them (kernels/ knows no model).
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
  /** Where it occurs, e.g. "mobilenet x3". */
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

/** A short human-readable label of a layer shape (also its identity when merging). */
export function describeShape(s: ZooLayerShape): string {
  if (s.kind === "dw") {
    return `dw ${s.H}x${s.W}x${s.C} k${s.kernel.join("x")} s${s.strides.join(",")} p${s.pad.join(",")}`;
  }
  return s.kind === "se"
    ? `se ${s.H}x${s.W}x${s.C} r${s.Cr} ${s.act}/${s.gate}`
    : `pw ${s.H}x${s.W}x${s.C}>${s.Cout}`;
}

/** Merges repeated shapes in first-seen order, listing each model (with a repeat count) it occurs in. */
export function mergeShapes(all: readonly ZooLayerShape[]): ZooLayerShape[] {
  const byKey = new Map<string, { shape: ZooLayerShape; counts: Map<string, number> }>();
  for (const s of all) {
    const key = describeShape(s);
    const entry = byKey.get(key) ?? { shape: { ...s, models: [] }, counts: new Map() };
    for (const m of s.models) entry.counts.set(m, (entry.counts.get(m) ?? 0) + 1);
    byKey.set(key, entry);
  }
  return [...byKey.values()].map(({ shape, counts }) => ({
    ...shape,
    models: [...counts].map(([m, n]) => (n > 1 ? `${m} x${n}` : m)),
  }));
}
