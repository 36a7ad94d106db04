/**
 * `deno task models`: parameters, fvcore-style FLOPs and plain MACs of every registered model (and
 * the variants the reference scripts use), counted analytically in meta mode — no tensors, no GPU —
 * next to the paper's Table 1.
 *
 * @module
 */
import { intFlag, parseCli } from "../runtime/cli.ts";
import { runMain } from "../runtime/errors.ts";
import { Params } from "../models/core.ts";
import { countModelOps, MODELS } from "../models/registry.ts";
import { paperParamCount } from "../models/mobilevit.ts";
import "../models/zoo.ts";

const USAGE = `deno task models [options]

Parameters, fvcore FLOPs (M) and MACs (M) of every registered model at batch 1, counted without
running it (no GPU), beside the paper's Table 1.

  --classes N       classifier outputs (default 10)
  --image-size S    square input size in pixels (default 224)
  --json            machine-readable output
  --help            this text`;

/** Paper Table 1 (docs/protocol.md §4.4), keyed by registry id: Params (M), FLOPs (M) as printed. */
export const TABLE1: Record<string, { name: string; paramsM: number; flopsM: number }> = {
  convmixer: { name: "ConvMixer", paramsM: 2.38, flopsM: 2347 },
  convnext: { name: "ConvNext", paramsM: 2.65, flopsM: 221 },
  efficientnet: { name: "EfficientNet", paramsM: 2.58, flopsM: 542 },
  fbnet: { name: "FBNet", paramsM: 3.66, flopsM: 396 },
  ghostnet: { name: "GhostNet", paramsM: 2.35, flopsM: 314 },
  mobilenet: { name: "MobileNet", paramsM: 2.31, flopsM: 253 },
  mobileone: { name: "MobileOne", paramsM: 2.25, flopsM: 559 },
  mobilevit: { name: "MobileViT*", paramsM: 2.82, flopsM: 2100 },
  shufflenet: { name: "ShuffleNet", paramsM: 2.22, flopsM: 326 },
  starnet: { name: "StartNet", paramsM: 2.69, flopsM: 424 },
  tinynet: { name: "TinyNet", paramsM: 2.52, flopsM: 253 },
};

/** Why our count differs from Table 1 where it does (docs/protocol.md §4.4). */
const KNOWN_DIFFERENCES: Record<string, string> = {
  mobilenet: "Table 1 FLOPs 253 is TinyNet's value (copy error); torchvision MobileNetV2 is ~313",
  mobilevit: "Table 1 params exclude every transformer-encoder-layer param (column Params†)",
};

/** Variants the reference scripts instantiate besides each family's default. */
const VARIANTS: { id: string; options: Record<string, unknown>; when?: string }[] = [
  { id: "convmixer", options: { patchSize: 5 } },
  { id: "convmixer", options: { patchSize: 14 } },
  // EfficientNet's full B0 (Imagenette run) and torchvision's B0 (CIFAR-100 run).
  { id: "efficientnet", options: { variant: "b0" }, when: "variant" },
  { id: "efficientnet", options: { variant: "tv-b0" }, when: "variant" },
];

/** One line of the table. */
export interface ModelRow {
  model: string;
  /** Non-default options of this row ("" for the family default). */
  variant: string;
  params: number;
  /** Params as the paper's Table 1 counts them (encoder-layer params left out). */
  paperAccountingParams: number;
  fvFlopsM: number;
  macsM: number;
  /** Table 1's values for the family default (null for variants). */
  table1: { paramsM: number; flopsM: number } | null;
  note: string;
}

/** Counts every registered model and variant at the given class count and image size. */
export function modelRows(classes: number, imageSize: number): ModelRow[] {
  const rows: ModelRow[] = [];
  const add = (id: string, extra: Record<string, unknown>) => {
    const spec = MODELS[id];
    const options = { ...spec.defaults, ...extra, numClasses: classes, imageSize };
    const c = countModelOps(id, options);
    const p = new Params(0, true);
    spec.build(p, options);
    const isDefault = Object.keys(extra).length === 0;
    const t1 = isDefault ? TABLE1[id] : undefined;
    const notes: string[] = [];
    const variant = isDefault
      ? Object.entries(spec.defaults ?? {}).map(([k, v]) => `${k}=${v}`).join(" ")
      : Object.entries(extra).map(([k, v]) => `${k}=${v}`).join(" ");
    if (t1 && KNOWN_DIFFERENCES[id]) notes.push(KNOWN_DIFFERENCES[id]);
    else if (t1 && imageSize === 224 && Math.abs(c.fvFlops / 1e6 - t1.flopsM) > 0.01 * t1.flopsM) {
      notes.push(`FLOPs differ from Table 1 by more than 1%`);
    }
    rows.push({
      model: id,
      variant,
      params: c.params,
      paperAccountingParams: paperParamCount(p),
      fvFlopsM: c.fvFlops / 1e6,
      macsM: c.macs / 1e6,
      table1: t1 ? { paramsM: t1.paramsM, flopsM: t1.flopsM } : null,
      note: notes.join("; "),
    });
  };
  for (const id of Object.keys(MODELS).sort()) {
    add(id, {});
    for (const v of VARIANTS.filter((v) => v.id === id)) {
      if (v.when && !(v.when in (MODELS[id].defaults ?? {}))) continue;
      add(id, v.options);
    }
  }
  return rows;
}

function fmtInt(n: number): string {
  return n.toLocaleString("en-US");
}

/** The aligned text table with its footnotes. */
export function formatTable(rows: ModelRow[], classes: number, imageSize: number): string {
  const header = [
    "Model",
    "Variant",
    "Params",
    "Params†",
    "fvFLOPs (M)",
    "MACs (M)",
    "T1 Params (M)",
    "T1 FLOPs (M)",
    "Note",
  ];
  const body = rows.map((r) => [
    r.model,
    r.variant,
    fmtInt(r.params),
    r.paperAccountingParams === r.params ? "=" : fmtInt(r.paperAccountingParams),
    r.fvFlopsM.toFixed(1),
    r.macsM.toFixed(1),
    r.table1 ? r.table1.paramsM.toFixed(2) : "",
    r.table1 ? String(r.table1.flopsM) : "",
    r.note,
  ]);
  const right = new Set([2, 3, 4, 5, 6, 7]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [
    `Models at ${imageSize}×${imageSize}, ${classes} classes, batch 1 (counted in meta mode)`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...body.map(line),
    "",
    "Params: all trainable parameters. fvFLOPs: fvcore FlopCountAnalysis convention (one multiply-add = 1;",
    "  BN 2/element, F.layer_norm 5/element, adaptive avg-pool 1/input element; attention matmuls not counted).",
    "  MACs: multiply-accumulates of convs, linears and matmuls (attention included).",
    "† The paper's Table 1 accounting: parameters outside transformer-encoder layers (MobileViT* 2.82 M);",
    "  '=' where it equals Params.",
    "T1: the paper's Table 1 (averages over the 7 runs' class counts, FLOPs at 224 px), family default only.",
  ].join("\n");
}

function main(): void {
  const { values: v } = parseCli(Deno.args, {
    usage: USAGE,
    options: {
      classes: { type: "string" },
      "image-size": { type: "string" },
      json: { type: "boolean" },
    },
  });
  const classes = intFlag(v.classes, "classes", USAGE, { min: 1, max: 100_000 }) ?? 10;
  // 32 px is the smallest input every model (total stride 32) maps to a non-empty feature map.
  const imageSize = intFlag(v["image-size"], "image-size", USAGE, { min: 32, max: 4096 }) ?? 224;
  const rows = modelRows(classes, imageSize);
  if (v.json) console.log(JSON.stringify({ classes, imageSize, rows }, null, 2));
  else console.log(formatTable(rows, classes, imageSize));
}

if (import.meta.main) runMain(main);
