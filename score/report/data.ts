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
  aggregateSeeds,
  assertSpread,
  buildMatrix,
  canonicalDatasetId,
  canonicalModelId,
  type Cell,
  fractionWarning,
  type LedgerRow,
  type MatrixBuild,
  mixedScaleWarnings,
  parseLedger,
  readInputFile,
  rowConfig,
} from "../ledger.ts";
import { REFERENCE_LABEL, REFERENCE_TABLE, referenceBounds } from "../reference.ts";
import { type ImagenetteCorrelation, imagenetteCorrelation } from "../correlation.ts";
import { type Bounds, CANONICAL_DATASETS, computeXScore, type XScoreResult } from "../xscore.ts";
import {
  bootstrapDatasets,
  type BootstrapResult,
  bootstrapSeeds,
  leaveOneDatasetOut,
  type LeaveOneOut,
} from "../bootstrap.ts";

/** Presets whose numbers are comparable with Table 3 (the full protocol, no overridden field). */
const COMPARABLE_PRESETS: readonly string[] = ["paper", "reference"];

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
  /** mean − paper, when the cell's preset is comparable with Table 3 (preset paper or reference). */
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

/** Everything the page and report.md show. */
export interface ReportData {
  generatedAt: string;
  version: string;
  command: string;
  inputs: InputFile[];
  /** True when the input is Table 3 itself (no comparison column). */
  paperOnly: boolean;
  rows: RunRow[];
  /** Matrix rows: the model ids, in ledger order. */
  entries: string[];
  datasets: string[];
  /** `cells[i][j]` for entry i, dataset j; null where there is no result. */
  cells: (ReportCell | null)[][];
  lambda: number;
  scored: ScoredSection | null;
  /** Why there is no xScore, when `scored` is null. */
  scoredNote: string;
  /** Table 3's column extremes per dataset (null where Table 3 lacks it), for the panel. */
  referenceBounds: ({ min: number; max: number } | null)[];
  /** The Imagenette-160 vs xScore analysis (the paper's Figure 1), as `deno task score --imagenette-correlation`. */
  imagenette: ImagenetteCorrelation | null;
  curves: RunCurves[];
  costs: ModelCost[];
  warnings: string[];
}

/**
 * The ledger's rows with their provenance: the checked rows of {@link parseLedger}, their
 * configuration from {@link rowConfig}, and the columns the scorer does not keep (seed, params, …).
 */
function runRows(text: string, file: string): { ledger: LedgerRow[]; rows: RunRow[] } {
  const ledger = parseLedger(text, file);
  // parseLedger has accepted the CSV, and its rows are the table's rows in order.
  const table = parseCsv(text);
  const col = (i: number, name: string) => {
    const k = table.header.indexOf(name);
    return k < 0 ? "" : table.rows[i][k];
  };
  const rows = ledger.map((r, i) => {
    const config = rowConfig(r);
    return {
      model: r.model,
      dataset: r.dataset,
      accuracy: r.accuracy,
      preset: config.preset ?? "",
      seed: col(i, "seed"),
      epochs: config.epochs ?? "",
      imageSize: config.image_size ?? "",
      batchSize: config.batch_size ?? "",
      params: col(i, "params"),
      adapter: col(i, "adapter"),
      version: col(i, "version"),
      finishedAt: col(i, "finished_at"),
      note: col(i, "source"),
      source: `${file}:${r.line}`,
    };
  });
  return { ledger, rows };
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

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
    const corrupt = () =>
      new UserError(`${file}, line ${i + 1}: not a JSON object; the file is corrupt, remove it`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return; // the line being written when the run stopped
      throw corrupt();
    }
    if (!isObject(parsed)) throw corrupt();
    const o = parsed;
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

/** Parses a run's epochs.csv (the loop's per-epoch record); malformed CSV is a UserError naming `file`. */
function parseEpochsCsv(text: string, file: string): EpochPoint[] {
  let t;
  try {
    t = parseCsv(text);
  } catch (err) {
    throw new UserError(
      `${file}: malformed CSV (${(err as Error).message}); remove it or rerun the training`,
    );
  }
  return t.rows.map((r, i) => {
    const g = (name: string) => {
      const k = t.header.indexOf(name);
      return k < 0 ? null : num(r[k]);
    };
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
 * A run's done.json as an object; a truncated or otherwise unreadable one is a UserError naming it
 * (a run killed while writing it, or a file edited by hand).
 */
function parseDone(text: string, file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UserError(`${file}: not valid JSON; remove it or rerun the training`);
  }
  if (!isObject(parsed)) throw new UserError(`${file}: not a JSON object; remove it or rerun the training`);
  return parsed;
}

/**
 * The curves of every run folder under `runsDir` (folders holding metrics.jsonl or epochs.csv),
 * sorted by folder name. metrics.jsonl is preferred; epochs.csv fills in when it is absent.
 */
async function readRunCurves(runsDir: string): Promise<RunCurves[]> {
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
      epochs = parseEpochsCsv(epochsCsv, `${dir}/epochs.csv`);
      sources.push(`${dir}/epochs.csv`);
    }
    const done = await readText(`${dir}/done.json`);
    const info = done !== undefined ? parseDone(done, `${dir}/done.json`) : {};
    const model = String(info.model ?? ""), dataset = String(info.dataset ?? "");
    const preset = String(info.preset ?? ""), seed = String(info.seed ?? "");
    out.push({
      dir,
      label: done !== undefined
        ? `${model} / ${dataset} / ${preset} / seed ${seed}`
        : `${e.name} (unfinished)`,
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

const key = (model: string, dataset: string) => `${model}\u0000${dataset}`;

/**
 * Reads the inputs and computes everything the report shows, with the scorer's own functions
 * (score/ledger.ts, score/reference.ts, score/correlation.ts), so the report accepts, refuses and
 * computes exactly what `deno task score` does. Throws UserError on bad input.
 */
export async function buildReportData(o: BuildOptions): Promise<ReportData> {
  const warnings: string[] = [];
  const paperOnly = o.files.length === 0;
  const files = paperOnly ? [REFERENCE_LABEL] : o.files;
  const rows: RunRow[] = [], ledgerRows: LedgerRow[] = [];
  const inputs: InputFile[] = [];
  for (const file of files) {
    const bytes = await readInputFile(paperOnly ? REFERENCE_TABLE : file, file);
    const read = runRows(new TextDecoder().decode(bytes), file);
    const w = fractionWarning(read.ledger);
    if (w) warnings.push(w);
    rows.push(...read.rows);
    ledgerRows.push(...read.ledger);
    inputs.push({ file, rows: read.rows.length, sha256: await sha256(bytes) });
  }
  warnings.push(...mixedScaleWarnings(ledgerRows));
  // Seeds averaged as deno task score averages them: rows of one cell that differ in their
  // configuration (preset, epochs, …) are refused, not averaged.
  const ledgerCells = aggregateSeeds(ledgerRows);
  const paperCells = paperOnly ? ledgerCells : aggregateSeeds(
    parseLedger(
      new TextDecoder().decode(await readInputFile(REFERENCE_TABLE, REFERENCE_LABEL)),
      REFERENCE_LABEL,
    ),
  );
  const paper = new Map(paperCells.map((c) => [key(c.model, c.dataset), c.accuracy]));

  const entries = [...new Set(ledgerCells.map((c) => c.model))];
  const datasets = order(ledgerCells.map((c) => c.dataset), CANONICAL_DATASETS);
  const cellOf = new Map(ledgerCells.map((c) => [key(c.model, c.dataset), c]));
  const cells: (ReportCell | null)[][] = entries.map((model) =>
    datasets.map((d) => {
      const c = cellOf.get(key(model, d));
      if (!c) return null;
      const idx = rows.map((r, i) => [r, i] as const).filter(([r]) => r.model === model && r.dataset === d)
        .map(([, i]) => i);
      const p = paper.get(key(model, d)) ?? null;
      const presets = [...new Set(idx.map((i) => rows[i].preset))];
      const comparable = !paperOnly && presets.every((x) => COMPARABLE_PRESETS.includes(x));
      return {
        mean: c.accuracy,
        sd: c.std ?? null,
        n: c.n,
        accuracies: idx.map((i) => rows[i].accuracy),
        rows: idx,
        paper: paperOnly ? null : p,
        diff: p !== null && comparable ? c.accuracy - p : null,
        diffNote: p === null || paperOnly || comparable
          ? ""
          : `preset ${presets.join(", ") || "(none)"} is not the paper's full protocol (${
            COMPARABLE_PRESETS.join(" or ")
          })`,
      };
    })
  );

  // Table 3's anchors (--bounds reference) for every dataset it has, for the panel.
  const inTable3 = new Set(paperCells.map((c) => c.dataset));
  const anchored = datasets.filter((d) => inTable3.has(d));
  const anchors = anchored.length ? await referenceBounds(anchored) : undefined;
  const referenceBoundsOf = datasets.map((d) => {
    const k = anchored.indexOf(d);
    return anchors && k >= 0 ? { min: anchors.min[k], max: anchors.max[k] } : null;
  });

  const scoredDatasets = o.datasets ??
    datasets.filter((_, j) => cells.filter((row) => row[j] !== null).length >= 2);
  for (const d of scoredDatasets) {
    if (!datasets.includes(d)) throw new UserError(`--datasets: no result for ${d} in ${files.join(", ")}`);
  }
  let scored: ScoredSection | null = null, scoredNote = "";
  let build: MatrixBuild | undefined;
  if (scoredDatasets.length < 2) {
    scoredNote = `xScore needs at least 2 datasets with results for at least 2 models; this input has ${
      scoredDatasets.length === 0 ? "none" : `only ${scoredDatasets.join(", ")}`
    }`;
  } else {
    // The scorer's matrix and checks, as deno task score --allow-missing; what it refuses to score
    // is said on the page (the matrix, curves and provenance are still worth showing).
    try {
      build = buildMatrix(ledgerCells, scoredDatasets, { allowMissing: true, files });
      if (o.bounds === "observed") assertSpread(build);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      scoredNote = err.message;
      build = undefined;
    }
  }
  if (build) {
    const { matrix } = build;
    const bounds: Bounds | undefined = o.bounds === "reference"
      ? await referenceBounds(scoredDatasets)
      : undefined;
    const opts = { lambda: o.lambda, bounds, replicates: o.replicates, seed: o.seed };
    const seedsOf = (c: Cell) => cells[entries.indexOf(c.model)][datasets.indexOf(c.dataset)]!.accuracies;
    scored = {
      datasets: [...scoredDatasets],
      models: matrix.models,
      boundsMode: o.bounds,
      result: computeXScore(matrix, { lambda: o.lambda, bounds }),
      seeds: bootstrapSeeds(
        matrix.models,
        matrix.datasets,
        build.cells.map((row) => row.map(seedsOf)),
        opts,
      ) ??
        null,
      datasetBootstrap: bootstrapDatasets(matrix, opts),
      lodo: leaveOneDatasetOut(matrix, { lambda: o.lambda, bounds }) ?? null,
      dropped: build.dropped,
      replicates: o.replicates,
      bootstrapSeed: o.seed,
    };
  }

  // Figure 1 exactly as deno task score --imagenette-correlation draws it; absent where score would
  // refuse it (a scored model without an Imagenette-160 result, fewer than 3 models).
  let imagenette: ImagenetteCorrelation | null = null;
  if (scored) {
    try {
      imagenette = imagenetteCorrelation(scored.result, ledgerCells, files);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
    }
  }

  const curves = o.runsDir ? await readRunCurves(o.runsDir) : [];
  const costs: ModelCost[] = [];
  for (const model of entries) {
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
    datasets,
    cells,
    lambda: o.lambda,
    scored,
    scoredNote,
    referenceBounds: referenceBoundsOf,
    imagenette,
    curves,
    costs,
    warnings,
  };
}
