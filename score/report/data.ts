/**
 * Everything `deno task report` shows, gathered into one plain-JSON {@link ReportData} before any
 * rendering: the ledger rows with their provenance, the models × datasets accuracy matrix (seeds as
 * mean ± sd) beside the paper's Table 3, the xScore with bootstrap intervals and leave-one-dataset-
 * out stability, the training curves of each run folder, and parameters/FLOPs per model.
 *
 * @module
 */
import { parseCsv } from "../../runtime/csv.ts";
import { UserError } from "../../runtime/errors.ts";
import {
  canonicalDatasetId,
  canonicalModelId,
  fractionWarning,
  parseLedger,
  readInputFile,
} from "../ledger.ts";
import { REFERENCE_LABEL, REFERENCE_TABLE } from "../reference.ts";
import type { ImagenetteCorrelation } from "../correlation.ts";
import {
  type Bounds,
  CANONICAL_DATASETS,
  computeXScore,
  mean,
  observedBounds,
  sampleStd,
  type XScoreResult,
} from "../xscore.ts";
import {
  bootstrapDatasets,
  type BootstrapResult,
  bootstrapSeeds,
  leaveOneDatasetOut,
  type LeaveOneOut,
} from "../bootstrap.ts";
import { leastSquares, pearson, spearmanRho } from "../subsets.ts";

/** The paper's Table 3 as shipped (the default input and the comparison column; score/reference.ts). */
export const PAPER_TABLE: URL = REFERENCE_TABLE;
/** How the shipped table is named in the report (relative to the repository root). */
export const PAPER_LABEL: string = REFERENCE_LABEL;
/** Presets whose numbers are comparable with Table 3 (the full protocol, no overridden field). */
export const COMPARABLE_PRESETS: readonly string[] = ["paper", "reference"];

/** One ledger row with everything known about where it came from. */
export interface RunRow {
  model: string;
  dataset: string;
  /** Top-1 accuracy (%) as the ledger has it. */
  accuracy: number;
  /** The ledger's preset label ("" when the ledger has no such column, as Table 3). */
  preset: string;
  seed: string;
  epochs: string;
  imageSize: string;
  batchSize: string;
  params: string;
  adapter: string;
  version: string;
  finishedAt: string;
  /** A free-text `source` column when present (Table 3 has one). */
  note: string;
  /** `file:line` of the row. */
  source: string;
}

/** One (entry, dataset) cell: its seed rows averaged. */
export interface ReportCell {
  mean: number;
  /** Sample standard deviation over seeds (pp); null for one seed. */
  sd: number | null;
  n: number;
  accuracies: number[];
  /** Indices into {@link ReportData.rows}. */
  rows: number[];
  /** Table 3's value for this model and dataset, when it has one. */
  paper: number | null;
  /** mean − paper, when the cell's preset is comparable with Table 3 (see {@link COMPARABLE_PRESETS}). */
  diff: number | null;
  /** Why `diff` is absent although `paper` is present. */
  diffNote: string;
}

/** One point of a per-step curve (from metrics.jsonl). */
export interface StepPoint {
  /** Fractional epoch (epoch − 1 + step / steps per epoch) when known, else the global step. */
  x: number;
  step: number;
  epoch: number;
  lr: number | null;
  loss: number | null;
  trainAccuracy: number | null;
  imagesPerSecond: number | null;
}

/** One epoch of a run. */
export interface EpochPoint {
  epoch: number;
  trainLoss: number | null;
  trainAccuracy: number | null;
  testAccuracy: number | null;
  testLoss: number | null;
  testTop5: number | null;
  lr: number | null;
  evalSeconds: number | null;
}

/** The curves of one run folder. */
export interface RunCurves {
  /** The run folder. */
  dir: string;
  /** "model / dataset / preset / seed" when done.json or preset.json tells, else the folder name. */
  label: string;
  model: string;
  dataset: string;
  preset: string;
  seed: string;
  finished: boolean;
  /** The files the points were read from. */
  sources: string[];
  epochs: EpochPoint[];
  steps: StepPoint[];
}

/** Parameters and FLOPs of one model, as counted by the model zoo (or the ledger's `params`). */
export interface ModelCost {
  model: string;
  params: number | null;
  fvFlopsM: number | null;
  macsM: number | null;
  imageSize: number | null;
  classes: number | null;
  source: string;
}

/** One input file. */
export interface InputFile {
  file: string;
  rows: number;
  sha256: string;
}

/** The scored part: an xScore table with its robustness analyses. */
export interface ScoredSection {
  datasets: string[];
  /** Entries with a result on every scored dataset, in matrix order. */
  models: string[];
  boundsMode: "observed" | "reference";
  result: XScoreResult;
  seeds: BootstrapResult | null;
  datasetBootstrap: BootstrapResult;
  lodo: LeaveOneOut | null;
  /** Entries left out of the score, with the scored datasets they lack. */
  dropped: { model: string; missing: string[] }[];
  replicates: number;
  bootstrapSeed: number;
}

/** The Imagenette-160 accuracy vs xScore analysis (the paper's Figure 1; score/correlation.ts). */
export type ImagenetteFigure = ImagenetteCorrelation;

/** Everything the page and report.md show. */
export interface ReportData {
  generatedAt: string;
  version: string;
  command: string;
  inputs: InputFile[];
  /** True when the input is Table 3 itself (no comparison column). */
  paperOnly: boolean;
  rows: RunRow[];
  /** Matrix rows: a model id, or `model [preset]` when one model appears under several presets. */
  entries: string[];
  /** The model id behind each entry. */
  entryModels: string[];
  datasets: string[];
  /** `cells[i][j]` for entry i, dataset j; null where there is no result. */
  cells: (ReportCell | null)[][];
  lambda: number;
  scored: ScoredSection | null;
  /** Why there is no xScore, when `scored` is null. */
  scoredNote: string;
  /** Table 3's column extremes per dataset (null where Table 3 lacks it), for the panel. */
  referenceBounds: ({ min: number; max: number } | null)[];
  imagenette: ImagenetteFigure | null;
  curves: RunCurves[];
  costs: ModelCost[];
  warnings: string[];
}

const col = (header: string[], row: string[], name: string) => {
  const i = header.indexOf(name);
  return i < 0 ? "" : row[i];
};

/** Reads ledger text into provenance-carrying rows (validated by {@link parseLedger}). */
export function parseRunRows(text: string, file: string): RunRow[] {
  const checked = parseLedger(text, file);
  const table = parseCsv(text);
  return checked.map((r, i) => {
    const row = table.rows[i], h = table.header;
    return {
      model: r.model,
      dataset: r.dataset,
      accuracy: r.accuracy,
      preset: col(h, row, "preset"),
      seed: col(h, row, "seed"),
      epochs: col(h, row, "epochs"),
      imageSize: col(h, row, "image_size"),
      batchSize: col(h, row, "batch_size"),
      params: col(h, row, "params"),
      adapter: col(h, row, "adapter"),
      version: col(h, row, "version"),
      finishedAt: col(h, row, "finished_at"),
      note: col(h, row, "source"),
      source: `${file}:${r.line}`,
    };
  });
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const num = (v: unknown): number | null => {
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
};

/**
 * Parses a metrics.jsonl (see train/metrics.ts): `{"kind":"step",…}` and `{"kind":"epoch",…}`
 * objects, one a line. A malformed line is a UserError naming it; a truncated last line (a run
 * killed while writing) is ignored.
 */
export function parseMetricsJsonl(text: string, file: string): { steps: StepPoint[]; epochs: EpochPoint[] } {
  const steps: StepPoint[] = [], epochs: EpochPoint[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return; // the line being written when the run stopped
      throw new UserError(`${file}, line ${i + 1}: not a JSON object; the file is corrupt, remove it`);
    }
    if (o.kind === "step") {
      const step = num(o.step) ?? 0, epoch = num(o.epoch) ?? 0, per = num(o.steps_per_epoch);
      steps.push({
        x: per ? epoch - 1 + step / per : num(o.global_step) ?? step,
        step,
        epoch,
        lr: num(o.lr),
        loss: num(o.loss),
        trainAccuracy: num(o.train_accuracy),
        imagesPerSecond: num(o.images_per_second),
      });
    } else if (o.kind === "epoch") {
      epochs.push({
        epoch: num(o.epoch) ?? epochs.length + 1,
        trainLoss: num(o.train_loss),
        trainAccuracy: num(o.train_accuracy),
        testAccuracy: num(o.test_accuracy),
        testLoss: num(o.test_loss),
        testTop5: num(o.test_top5),
        lr: num(o.lr_last ?? o.lr),
        evalSeconds: num(o.eval_seconds),
      });
    }
  });
  return { steps, epochs };
}

/** Parses a run's epochs.csv (the loop's per-epoch record). */
export function parseEpochsCsv(text: string): EpochPoint[] {
  const t = parseCsv(text);
  return t.rows.map((r, i) => {
    const g = (name: string) => num(col(t.header, r, name));
    return {
      epoch: g("epoch") ?? i + 1,
      trainLoss: g("train_loss"),
      trainAccuracy: g("train_accuracy"),
      testAccuracy: g("test_accuracy"),
      testLoss: g("test_loss"),
      testTop5: g("test_top5"),
      lr: g("lr_last"),
      evalSeconds: g("eval_seconds"),
    };
  });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * The curves of every run folder under `runsDir` (folders holding metrics.jsonl or epochs.csv),
 * sorted by folder name. metrics.jsonl is preferred; epochs.csv fills in when it is absent.
 */
export async function readRunCurves(runsDir: string): Promise<RunCurves[]> {
  const out: RunCurves[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(runsDir)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UserError(`--runs ${runsDir}: no such directory`);
    if (err instanceof Deno.errors.NotADirectory) throw new UserError(`--runs ${runsDir}: not a directory`);
    throw err;
  }
  for (const e of entries.filter((e) => e.isDirectory).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const dir = `${runsDir.replace(/\/+$/, "")}/${e.name}`;
    const metrics = await readText(`${dir}/metrics.jsonl`);
    const epochsCsv = await readText(`${dir}/epochs.csv`);
    if (metrics === undefined && epochsCsv === undefined) continue;
    const sources: string[] = [];
    let steps: StepPoint[] = [], epochs: EpochPoint[] = [];
    if (metrics !== undefined) {
      ({ steps, epochs } = parseMetricsJsonl(metrics, `${dir}/metrics.jsonl`));
      sources.push(`${dir}/metrics.jsonl`);
    }
    if (epochs.length === 0 && epochsCsv !== undefined) {
      epochs = parseEpochsCsv(epochsCsv);
      sources.push(`${dir}/epochs.csv`);
    }
    const done = await readText(`${dir}/done.json`);
    const info = done ? JSON.parse(done) as Record<string, unknown> : {};
    const model = String(info.model ?? ""), dataset = String(info.dataset ?? "");
    const preset = String(info.preset ?? ""), seed = String(info.seed ?? "");
    out.push({
      dir,
      label: done ? `${model} / ${dataset} / ${preset} / seed ${seed}` : `${e.name} (unfinished)`,
      model: model ? canonicalModelId(model) : "",
      dataset: dataset ? canonicalDatasetId(dataset) : "",
      preset,
      seed,
      finished: done !== undefined,
      sources,
      epochs,
      steps,
    });
  }
  return out;
}

/** Options of {@link buildReportData}. */
export interface BuildOptions {
  /** Ledger files (labels as given on the command line); empty = Table 3. */
  files: string[];
  runsDir?: string;
  /** Datasets to score; default: every dataset on which at least two entries have a result. */
  datasets?: string[];
  lambda: number;
  bounds: "observed" | "reference";
  replicates: number;
  seed: number;
  /** Counts parameters/FLOPs of a registered model (null for one the zoo does not know). */
  cost?: (model: string) => ModelCost | null;
  command: string;
  version: string;
  now?: Date;
}

const order = (ids: Iterable<string>, canonical: readonly string[]) => {
  const list = [...new Set(ids)];
  return [
    ...canonical.filter((c) => list.includes(c)),
    ...list.filter((c) => !canonical.includes(c)),
  ];
};

/** Reads the inputs and computes everything the report shows. Throws UserError on bad input. */
export async function buildReportData(o: BuildOptions): Promise<ReportData> {
  const warnings: string[] = [];
  const paperOnly = o.files.length === 0;
  const files = paperOnly ? [PAPER_LABEL] : o.files;
  const rows: RunRow[] = [];
  const inputs: InputFile[] = [];
  for (const file of files) {
    const bytes = await readInputFile(paperOnly ? PAPER_TABLE : file, file);
    const fileRows = parseRunRows(new TextDecoder().decode(bytes), file);
    const w = fractionWarning(fileRows.map((r) => ({ ...r, file, line: 0 })));
    if (w) warnings.push(w);
    rows.push(...fileRows);
    inputs.push({ file, rows: fileRows.length, sha256: await sha256(bytes) });
  }
  const paperRows = paperOnly ? rows : parseRunRows(
    new TextDecoder().decode(await readInputFile(PAPER_TABLE, PAPER_LABEL)),
    PAPER_LABEL,
  );
  const paper = new Map(paperRows.map((r) => [`${r.model}\u0000${r.dataset}`, r.accuracy]));

  // Entries: one per model, or one per (model, preset) when a model was run under several presets.
  const presetsOf = new Map<string, Set<string>>();
  for (const r of rows) {
    if (!presetsOf.has(r.model)) presetsOf.set(r.model, new Set());
    presetsOf.get(r.model)!.add(r.preset);
  }
  const entryOf = (
    r: RunRow,
  ) => (presetsOf.get(r.model)!.size > 1 ? `${r.model} [${r.preset || "-"}]` : r.model);
  const entries: string[] = [], entryModels: string[] = [];
  for (const r of rows) {
    const e = entryOf(r);
    if (!entries.includes(e)) entries.push(e), entryModels.push(r.model);
  }
  const datasets = order(rows.map((r) => r.dataset), CANONICAL_DATASETS);
  const cells: (ReportCell | null)[][] = entries.map((entry) =>
    datasets.map((d) => {
      const idx = rows.map((r, i) => [r, i] as const).filter(([r]) => entryOf(r) === entry && r.dataset === d)
        .map(([, i]) => i);
      if (idx.length === 0) return null;
      const accuracies = idx.map((i) => rows[i].accuracy);
      const p = paper.get(`${rows[idx[0]].model}\u0000${d}`) ?? null;
      const presets = [...new Set(idx.map((i) => rows[i].preset))];
      const comparable = !paperOnly && presets.every((x) => COMPARABLE_PRESETS.includes(x));
      const m = mean(accuracies);
      return {
        mean: m,
        sd: sampleStd(accuracies) ?? null,
        n: idx.length,
        accuracies,
        rows: idx,
        paper: paperOnly ? null : p,
        diff: p !== null && comparable ? m - p : null,
        diffNote: p === null || paperOnly || comparable
          ? ""
          : `preset ${presets.join(", ") || "(none)"} is not the paper's full protocol (${
            COMPARABLE_PRESETS.join(" or ")
          })`,
      };
    })
  );

  const referenceBounds = datasets.map((d) => {
    const v = paperRows.filter((r) => r.dataset === d).map((r) => r.accuracy);
    return v.length >= 2 ? { min: Math.min(...v), max: Math.max(...v) } : null;
  });

  const scoredDatasets = o.datasets ??
    datasets.filter((_, j) => cells.filter((row) => row[j] !== null).length >= 2);
  for (const d of scoredDatasets) {
    if (!datasets.includes(d)) throw new UserError(`--datasets: no result for ${d} in ${files.join(", ")}`);
  }
  let scored: ScoredSection | null = null, scoredNote = "";
  const cols = scoredDatasets.map((d) => datasets.indexOf(d));
  const complete = entries.map((_, i) => i).filter((i) => cols.every((j) => cells[i][j] !== null));
  const dropped = entries.map((e, i) => ({
    model: e,
    missing: scoredDatasets.filter((_, k) => !cells[i][cols[k]]),
  }))
    .filter((d) => d.missing.length > 0);
  if (scoredDatasets.length < 2) {
    scoredNote = `xScore needs at least 2 datasets with results for at least 2 models; this input has ${
      scoredDatasets.length === 0 ? "none" : `only ${scoredDatasets.join(", ")}`
    }`;
  } else if (complete.length < 2) {
    scoredNote = `only ${complete.length} model(s) have a result on every dataset of ${
      scoredDatasets.join(", ")
    }; min-max normalisation needs at least 2 (choose datasets with --datasets)`;
  } else {
    const matrix = {
      models: complete.map((i) => entries[i]),
      datasets: [...scoredDatasets],
      values: complete.map((i) => cols.map((j) => cells[i][j]!.mean)),
    };
    let bounds: Bounds | undefined;
    if (o.bounds === "reference") {
      const missing = cols.filter((j) => !referenceBounds[j]).map((j) => datasets[j]);
      if (missing.length) {
        throw new UserError(
          `--bounds reference: ${PAPER_LABEL} has no anchors for ${
            missing.join(", ")
          }; use --bounds observed`,
        );
      }
      bounds = {
        min: cols.map((j) => referenceBounds[j]!.min),
        max: cols.map((j) => referenceBounds[j]!.max),
      };
    }
    const flat = observedBounds(matrix);
    const collapsed = scoredDatasets.filter((_, k) => !(flat.max[k] > flat.min[k]));
    if (!bounds && collapsed.length) {
      scoredNote = `every scored model has the same accuracy on ${collapsed.join(", ")}; ` +
        `min-max normalisation needs a spread (leave it out with --datasets)`;
    } else {
      const opts = { lambda: o.lambda, bounds, replicates: o.replicates, seed: o.seed };
      scored = {
        datasets: [...scoredDatasets],
        models: matrix.models,
        boundsMode: o.bounds,
        result: computeXScore(matrix, { lambda: o.lambda, bounds }),
        seeds: bootstrapSeeds(
          matrix.models,
          matrix.datasets,
          complete.map((i) => cols.map((j) => cells[i][j]!.accuracies)),
          opts,
        ) ??
          null,
        datasetBootstrap: bootstrapDatasets(matrix, opts),
        lodo: leaveOneDatasetOut(matrix, { lambda: o.lambda, bounds }) ?? null,
        dropped,
        replicates: o.replicates,
        bootstrapSeed: o.seed,
      };
    }
  }

  let imagenette: ImagenetteFigure | null = null;
  const ji = datasets.indexOf("imagenette160");
  if (scored && ji >= 0) {
    const ms = scored.models.filter((m) => cells[entries.indexOf(m)][ji] !== null);
    if (ms.length >= 3) {
      const x = ms.map((m) => scored!.result.scores[scored!.models.indexOf(m)].xscore);
      const y = ms.map((m) => cells[entries.indexOf(m)][ji]!.mean);
      const fit = leastSquares(x.map((v) => [v]), y);
      imagenette = {
        models: ms,
        imagenette: y,
        xscore: x,
        pearson: pearson(y, x),
        spearman: spearmanRho(y, x),
        intercept: fit.coefficients[0],
        slope: fit.coefficients[1],
      };
    }
  }

  const curves = o.runsDir ? await readRunCurves(o.runsDir) : [];
  const costs: ModelCost[] = [];
  for (const model of [...new Set(entryModels)]) {
    const counted = o.cost?.(model) ?? null;
    const fromLedger = [...new Set(rows.filter((r) => r.model === model && r.params).map((r) => r.params))];
    if (counted) costs.push(counted);
    for (const p of fromLedger) {
      if (counted && String(counted.params) === p) continue;
      const src = rows.filter((r) => r.model === model && r.params === p);
      costs.push({
        model,
        params: Number(p),
        fvFlopsM: null,
        macsM: null,
        imageSize: num(src[0].imageSize),
        classes: null,
        source: `ledger params column (${src.map((r) => r.source).join(", ")})`,
      });
    }
  }

  return {
    generatedAt: (o.now ?? new Date()).toISOString(),
    version: o.version,
    command: o.command,
    inputs,
    paperOnly,
    rows,
    entries,
    entryModels,
    datasets,
    cells,
    lambda: o.lambda,
    scored,
    scoredNote,
    referenceBounds,
    imagenette,
    curves,
    costs,
    warnings,
  };
}
