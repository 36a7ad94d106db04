/**
 * Run presets: everything that defines a training run besides the seed, stored as data, printed
 * at run start and saved with the results.
 *
 * - `paper` (default): the paper's uniform protocol — 224 px, batch 32, CutMix + flip +
 *   ColorJitter, lr_max 1e-3 (MobileViT 1e-4), lr_min 1e-5, 100 epochs.
 * - `reference`: what the authors' scripts actually do (docs/protocol.md §1, §2.2, §3): the
 *   per-dataset transform tables of data/protocol.ts (Imagenette at 160 px, RandAugment and
 *   RandomErasing where used, HAM flip only, per-dataset normalisation), batch 64 on five
 *   CIFAR-10 runs, and the per-run LR and model-option exceptions below.
 *
 * Flags override single fields ({@link applyOverrides}); overridden fields are listed in the
 * preset so a saved result says what it deviates from.
 *
 * @module
 */
import { type DatasetProtocol, protocolFor } from "../data/protocol.ts";
import { UserError } from "../runtime/errors.ts";

/** Preset names. */
export const PRESET_NAMES = ["paper", "reference"] as const;
/** A preset name. */
export type PresetName = typeof PRESET_NAMES[number];

/** A fully resolved run definition. */
export interface Preset {
  name: PresetName;
  model: string;
  dataset: string;
  /** Model input size (px). */
  imageSize: number;
  /** Training batch size. */
  batchSize: number;
  epochs: number;
  lrMax: number;
  lrMin: number;
  /** Cross-entropy label smoothing. */
  labelSmoothing: number;
  /** Model build options beyond numClasses/imageSize/seed (e.g. ConvMixer patchSize). */
  modelOptions: Record<string, unknown>;
  /** Data side: transforms, normalisation, CutMix, eval batch, drop_last. */
  data: DatasetProtocol;
  /** Training images used per epoch: all (undefined) or the first N of a fixed seeded subset. */
  trainLimit?: number;
  /** Evaluate on the first N test images only. */
  testLimit?: number;
  /**
   * `--init-from`: the first 12 hex digits of the initial weights file's SHA-256 (undefined: the
   * seeded initialisation). Part of the run's identity like every override.
   */
  initFrom?: string;
  /** Fields set by flags rather than by the preset. */
  overrides: string[];
  /** Why the values differ from the uniform protocol, one line each. */
  notes: string[];
}

/** lr_max of the paper: 1e-3, MobileViT 1e-4. */
const PAPER_LR_MAX: Record<string, number> = { mobilevit: 1e-4 };

/** Per-run lr_max exceptions of the reference scripts (docs/protocol.md §3 #4). */
const REFERENCE_LR_MAX: Record<string, number> = {
  "ham10000/mobilevit": 1e-3,
  "stanford-dogs/tinynet": 1e-4,
};

/** Reference scripts with train batch 64 (docs/protocol.md §3 #5). */
const REFERENCE_BATCH_64 = new Set(
  ["convmixer", "efficientnet", "fbnet", "ghostnet", "shufflenet"].map((m) => `cifar10/${m}`),
);

/** Per-run model options of the reference scripts (docs/protocol.md §3 #3, #19). */
const REFERENCE_MODEL_OPTIONS: Record<string, Record<string, unknown>> = {
  "cifar10/convmixer": { patchSize: 14 },
  "imagenette160/convmixer": { patchSize: 5 },
  "cifar100/convmixer": { patchSize: 5 },
  "imagenette160/efficientnet": { variant: "b0" },
  "cifar100/efficientnet": { variant: "tv-b0" },
};

/** The preset `name` for one model on one dataset. */
export function buildPreset(name: string, model: string, dataset: string): Preset {
  if (!(PRESET_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`unknown preset "${name}"; use one of: ${PRESET_NAMES.join(", ")}`);
  }
  const preset = name as PresetName;
  const data = protocolFor(dataset, preset);
  const cell = `${dataset}/${model}`;
  const notes: string[] = [];
  let lrMax = PAPER_LR_MAX[model] ?? 1e-3;
  let batchSize = 32;
  let modelOptions: Record<string, unknown> = {};
  if (preset === "reference") {
    if (cell in REFERENCE_LR_MAX) {
      lrMax = REFERENCE_LR_MAX[cell];
      notes.push(`lr_max ${lrMax} for ${cell} (reference script exception)`);
    }
    batchSize = REFERENCE_BATCH_64.has(cell) ? 64 : data.trainBatch;
    if (batchSize !== 32) notes.push(`train batch ${batchSize} for ${cell} (reference script)`);
    modelOptions = { ...REFERENCE_MODEL_OPTIONS[cell] };
    if (Object.keys(modelOptions).length) {
      notes.push(`model options ${JSON.stringify(modelOptions)} for ${cell}`);
    }
  }
  return {
    name: preset,
    model,
    dataset,
    imageSize: preset === "paper" ? 224 : data.inputSize,
    batchSize,
    epochs: 100,
    lrMax,
    lrMin: 1e-5,
    labelSmoothing: 0.05,
    modelOptions,
    data,
    overrides: [],
    notes: [...notes, ...data.notes],
  };
}

/** Flag values that replace single preset fields. */
export interface PresetOverrides {
  epochs?: number;
  batchSize?: number;
  imageSize?: number;
  trainLimit?: number;
  /** Evaluate on the first N test images only (smoke runs; the ledger label records it). */
  testLimit?: number;
  lrMax?: number;
  /** Content hash of the `--init-from` weights (train/run.ts `initFromDigest`). */
  initFrom?: string;
}

/** `preset` with the given fields replaced and recorded in `overrides`. */
export function applyOverrides(preset: Preset, o: PresetOverrides): Preset {
  const out = structuredClone(preset);
  for (const [k, v] of Object.entries(o) as [keyof PresetOverrides, number | string | undefined][]) {
    if (v === undefined || out[k] === v) continue;
    (out as unknown as Record<string, unknown>)[k] = v;
    out.overrides.push(k);
  }
  return out;
}

/** A multi-line, human-readable description of a preset (printed at run start). */
export function describePreset(p: Preset): string {
  const ops = (list: { op: string }[]) => list.map((t) => JSON.stringify(t)).join(" → ") || "(none)";
  return [
    `preset ${p.name}: ${p.model} on ${p.dataset}` +
    (p.overrides.length ? ` (overridden by flags: ${p.overrides.join(", ")})` : ""),
    `  image ${p.imageSize} px, batch ${p.batchSize}, ${p.epochs} epochs, Adam lr_max ${p.lrMax} → lr_min ` +
    `${p.lrMin}, label smoothing ${p.labelSmoothing}, CutMix ${
      p.data.cutmix ? "on (α=1, every batch)" : "off"
    }` +
    (p.trainLimit ? `, first ${p.trainLimit} training images` : "") +
    (p.testLimit ? `, first ${p.testLimit} test images` : "") +
    (p.initFrom ? `, initial weights sha256 ${p.initFrom}…` : ""),
    `  train: ${ops(p.data.train)}`,
    `  test:  ${ops(p.data.test)}`,
    `  normalise mean ${p.data.mean.join("/")} std ${
      p.data.std.join("/")
    }; eval batch ${p.data.testBatch}; ` +
    `drop_last ${p.data.dropLast}`,
    ...(Object.keys(p.modelOptions).length ? [`  model options ${JSON.stringify(p.modelOptions)}`] : []),
    ...p.notes.map((n) => `  note: ${n}`),
  ].join("\n");
}

/**
 * The preset as the ledger's `preset` column writes it: the name, plus each overridden field
 * and its value (`paper;epochs=2;imageSize=32;trainLimit=4000`), so rows of differently
 * configured runs stay apart (the sweep skips cells by it).
 */
export function presetLabel(p: Preset): string {
  return [p.name, ...p.overrides.map((k) => `${k}=${p[k as keyof PresetOverrides]}`)].join(";");
}
