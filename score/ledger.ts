/**
 * Results ledgers: CSV files with at least `model,dataset,accuracy` (top-1 %, 0-100), one row per
 * finished run. Other columns (the training ledger's `seed`, `epochs`, …) are kept by the writer and
 * ignored here. Several rows for one (model, dataset) are seeds and are averaged.
 *
 * Every problem is a {@link UserError} naming the file and line, so the CLI can print one line and
 * exit 2 before writing anything.
 *
 * @module
 */
import { parseCsv } from "../runtime/csv.ts";
import { UserError } from "../runtime/errors.ts";
import { MAX_TEXT_INPUT_BYTES, readFileBounded } from "../runtime/cli.ts";
import { canonicalDatasetId, squashId } from "../runtime/dataset_ids.ts";
import { type AccuracyMatrix, mean, sampleStd } from "./xscore.ts";

/** Columns a ledger must have. */
export const REQUIRED_COLUMNS: readonly string[] = ["model", "dataset", "accuracy"];

/** One ledger row, with where it came from. */
export interface LedgerRow {
  model: string;
  dataset: string;
  /** Top-1 accuracy in %. */
  accuracy: number;
  file: string;
  /** 1-based file line (the header is line 1). */
  line: number;
}

/**
 * The run configuration a row records (the training ledger's `preset`, `epochs`, `image_size`,
 * `batch_size`), kept beside the row so rows stay plain (model, dataset, accuracy) records.
 */
const rowConfigs = new WeakMap<LedgerRow, Partial<Record<ConfigColumn, string>>>();

/** The configuration fields `row` records ({@link CONFIG_COLUMNS}); empty for ledgers without them. */
export function rowConfig(row: LedgerRow): Partial<Record<ConfigColumn, string>> {
  return rowConfigs.get(row) ?? {};
}

/** Columns that identify a run's configuration; only the seed may differ between averaged rows. */
export const CONFIG_COLUMNS = ["preset", "epochs", "image_size", "batch_size"] as const;

/** One of {@link CONFIG_COLUMNS}. */
export type ConfigColumn = typeof CONFIG_COLUMNS[number];

/** The seeds of one (model, dataset) cell, averaged. */
export interface Cell {
  model: string;
  dataset: string;
  /** Mean accuracy over the seeds (%). */
  accuracy: number;
  /** Number of rows (seeds). */
  n: number;
  /** Sample standard deviation over the seeds (pp); undefined for a single seed. */
  std: number | undefined;
  /** The rows averaged, as `file:line`. */
  sources: string[];
}

/** Dataset names are canonicalised in runtime/ (data/ refuses custom names that read as a paper dataset). */
export { canonicalDatasetId };

/** Spellings of the model ids used in the paper and the reference code, squashed ({@link squashId}). */
const MODEL_ALIASES: Record<string, string> = {
  convmixer: "convmixer",
  convmixer5128: "convmixer",
  convnext: "convnext",
  efficientnet: "efficientnet",
  efficientnet2m: "efficientnet",
  effnet: "efficientnet",
  fbnet: "fbnet",
  ghostnet: "ghostnet",
  mobilenet: "mobilenet",
  mobileone: "mobileone",
  mobilevit: "mobilevit",
  shufflenet: "shufflenet",
  starnet: "starnet",
  startnet: "starnet", // Table 3's spelling
  tinynet: "tinynet",
};

/** The canonical id of a model name as the paper spells it ("StartNet", "ConvNeXt"); other ids unchanged. */
export function canonicalModelId(name: string): string {
  return MODEL_ALIASES[squashId(name)] ?? name.trim();
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A plain decimal number ("89.25", "-1e-3"), or undefined for anything else ("", "abc", "0x10", "NaN"). */
export function parseDecimal(text: string): number | undefined {
  const s = text.trim();
  return DECIMAL.test(s) ? Number(s) : undefined;
}

/**
 * Parses ledger text. `file` is used in messages only. Throws UserError on an empty file, malformed CSV,
 * a duplicate or missing column, an empty model/dataset, or an accuracy that is not a number in 0-100.
 */
export function parseLedger(text: string, file: string): LedgerRow[] {
  let table;
  try {
    table = parseCsv(text);
  } catch (err) {
    throw new UserError(`${file}: malformed CSV: ${(err as Error).message}`);
  }
  if (table.header.length === 0) {
    throw new UserError(
      `${file}: empty file; a results ledger needs a header with ${REQUIRED_COLUMNS.join(",")}`,
    );
  }
  const seen = new Set<string>();
  for (const col of table.header) {
    if (seen.has(col)) {
      throw new UserError(`${file}, line 1: duplicate column "${col}" in the header; keep one`);
    }
    seen.add(col);
  }
  const missing = REQUIRED_COLUMNS.filter((c) => !seen.has(c));
  if (missing.length > 0) {
    throw new UserError(
      `${file}, line 1: missing column${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ` +
        `(header is "${table.header.join(",")}"); a results ledger needs ${REQUIRED_COLUMNS.join(",")}`,
    );
  }
  if (table.rows.length === 0) throw new UserError(`${file}: no data rows after the header`);
  const [im, id, ia] = REQUIRED_COLUMNS.map((c) => table.header.indexOf(c));
  const configIndex = CONFIG_COLUMNS.map((c) => [c, table.header.indexOf(c)] as const).filter(([, i]) =>
    i >= 0
  );
  return table.rows.map((row, r) => {
    const line = table.lines[r];
    const where = `${file}, line ${line}`;
    const model = canonicalModelId(row[im]);
    const dataset = canonicalDatasetId(row[id]);
    if (!model) throw new UserError(`${where}: empty model`);
    if (!dataset) throw new UserError(`${where}: empty dataset`);
    const raw = row[ia];
    const accuracy = parseDecimal(raw);
    if (accuracy === undefined) {
      throw new UserError(`${where}: accuracy "${raw}" is not a number; write top-1 accuracy in % (0-100)`);
    }
    if (accuracy < 0 || accuracy > 100) {
      throw new UserError(`${where}: accuracy ${raw} is outside 0-100; write top-1 accuracy in %`);
    }
    const config: Partial<Record<ConfigColumn, string>> = {};
    for (const [c, i] of configIndex) {
      if (row[i] !== undefined && row[i].trim() !== "") config[c] = row[i].trim();
    }
    const parsed: LedgerRow = { model, dataset, accuracy, file, line };
    if (configIndex.length) rowConfigs.set(parsed, config);
    return parsed;
  });
}

/**
 * The bytes of an input file (a ledger, a table), bounded: a device (`--results /dev/zero`) or a
 * huge file is refused instead of read forever. Every failure is a one-line UserError naming `label`.
 */
export async function readInputFile(path: string | URL, label = String(path)): Promise<Uint8Array> {
  try {
    return await readFileBounded(path, MAX_TEXT_INPUT_BYTES);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(err.message.replace(String(path), label));
    if (err instanceof Deno.errors.NotFound) throw new UserError(`${label}: file not found`);
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(`${label}: read access denied; run with --allow-read`);
    }
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UserError(`${label}: is a directory, not a CSV file`);
    }
    throw new UserError(`${label}: cannot read: ${(err as Error).message}`);
  }
}

/** Reads and parses one ledger file (see {@link parseLedger}); a missing or unreadable file is a UserError. */
export async function readLedger(path: string | URL, label = String(path)): Promise<LedgerRow[]> {
  return parseLedger(new TextDecoder().decode(await readInputFile(path, label)), label);
}

/**
 * A warning if every accuracy of a file is ≤ 1 (probably fractions, not %), else undefined.
 * Not an error: a ledger of untrained models could legitimately sit below 1 %.
 */
export function fractionWarning(rows: readonly LedgerRow[]): string | undefined {
  if (rows.length >= 2 && rows.every((r) => r.accuracy <= 1)) {
    return `${rows[0].file}: every accuracy is ≤ 1; the ledger expects top-1 % (0-100), not fractions`;
  }
  return undefined;
}

/**
 * Warnings for dataset columns that mix fractions (0 < accuracy ≤ 1) with percentages (> 1), e.g.
 * two ledgers merged where one wrote 0.91 for 91 %.
 */
export function mixedScaleWarnings(rows: readonly LedgerRow[]): string[] {
  const byDataset = new Map<string, LedgerRow[]>();
  for (const r of rows) byDataset.set(r.dataset, [...(byDataset.get(r.dataset) ?? []), r]);
  const out: string[] = [];
  for (const [dataset, rs] of byDataset) {
    const frac = rs.filter((r) => r.accuracy > 0 && r.accuracy <= 1), pct = rs.filter((r) => r.accuracy > 1);
    if (frac.length && pct.length) {
      out.push(
        `dataset ${dataset} mixes fractions (${frac[0].accuracy} at ${frac[0].file}, line ${frac[0].line}) ` +
          `and percentages (${pct[0].accuracy} at ${pct[0].file}, line ${pct[0].line}); ` +
          `write every accuracy in % (0-100)`,
      );
    }
  }
  return out;
}

/**
 * Groups rows by (model, dataset) and averages seeds. Cells keep first-seen order. Rows of one
 * cell that record different configurations ({@link CONFIG_COLUMNS}) are not seeds of one run: a
 * UserError names both rows and the fields that differ.
 */
export function aggregateSeeds(rows: readonly LedgerRow[]): Cell[] {
  const groups = new Map<string, LedgerRow[]>();
  for (const r of rows) {
    const key = `${r.model}\u0000${r.dataset}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  for (const g of groups.values()) {
    for (const r of g.slice(1)) {
      const a = rowConfig(g[0]), b = rowConfig(r);
      const differ = CONFIG_COLUMNS.filter((c) => a[c] !== undefined && b[c] !== undefined && a[c] !== b[c]);
      if (differ.length) {
        throw new UserError(
          `${r.file}, line ${r.line} and ${g[0].file}, line ${g[0].line}: ${r.model} on ${r.dataset} with ` +
            `different ${differ.map((c) => `${c} (${a[c]} vs ${b[c]})`).join(", ")}; ` +
            `only seeds may differ between averaged rows: score one configuration per ledger`,
        );
      }
    }
  }
  return [...groups.values()].map((g) => {
    const accs = g.map((r) => r.accuracy);
    return {
      model: g[0].model,
      dataset: g[0].dataset,
      accuracy: mean(accs),
      n: g.length,
      std: sampleStd(accs),
      sources: g.map((r) => `${r.file}:${r.line}`),
    };
  });
}

/** Result of {@link buildMatrix}. */
export interface MatrixBuild {
  matrix: AccuracyMatrix;
  /** `cells[i][j]` backs `matrix.values[i][j]`. */
  cells: Cell[][];
  /** Models left out by `allowMissing`, with the datasets they lack. */
  dropped: { model: string; missing: string[] }[];
}

/**
 * The models × `datasets` matrix of the cells. Models keep first-seen order. A model lacking any of
 * `datasets` is an error listing every missing cell, or is dropped when `allowMissing` is set.
 * Cells of other datasets are ignored. `files` names the inputs in messages.
 */
export function buildMatrix(
  cells: readonly Cell[],
  datasets: readonly string[],
  options: { allowMissing?: boolean; files?: readonly string[] } = {},
): MatrixBuild {
  const byModel = new Map<string, Map<string, Cell>>();
  for (const c of cells) {
    if (!byModel.has(c.model)) byModel.set(c.model, new Map());
    byModel.get(c.model)!.set(c.dataset, c);
  }
  const from = options.files?.length ? ` in ${options.files.join(", ")}` : "";
  if (byModel.size === 0) throw new UserError(`no results${from}`);
  const models: string[] = [];
  const rows: Cell[][] = [];
  const dropped: { model: string; missing: string[] }[] = [];
  for (const [model, have] of byModel) {
    const missing = datasets.filter((d) => !have.has(d));
    if (missing.length > 0) {
      dropped.push({ model, missing });
      continue;
    }
    models.push(model);
    rows.push(datasets.map((d) => have.get(d)!));
  }
  if (dropped.length > 0 && !options.allowMissing) {
    const list = dropped.flatMap((d) => d.missing.map((ds) => `${d.model}/${ds}`));
    throw new UserError(
      `${list.length} missing result${list.length > 1 ? "s" : ""}${from} (model/dataset): ${
        list.join(", ")
      }; ` +
        `train them, choose datasets with --datasets, or pass --allow-missing to drop incomplete models`,
    );
  }
  if (models.length < 2) {
    throw new UserError(
      `only ${models.length} model${models.length === 1 ? "" : "s"} with results on every dataset of ` +
        `${datasets.join(",")}${from}; min-max normalisation needs at least 2`,
    );
  }
  return {
    matrix: { models, datasets: [...datasets], values: rows.map((r) => r.map((c) => c.accuracy)) },
    cells: rows,
    dropped,
  };
}

/**
 * Throws a UserError for a dataset whose accuracies are all equal over the matrix's models: observed
 * min-max bounds (Eq. 1) would divide by zero. Names the dataset and the rows behind it.
 */
export function assertSpread(build: MatrixBuild): void {
  const { matrix, cells } = build;
  matrix.datasets.forEach((d, j) => {
    const col = matrix.values.map((row) => row[j]);
    if (col.every((v) => v === col[0])) {
      const sources = cells.flatMap((row) => row[j].sources);
      const shown = sources.length > 6 ? [...sources.slice(0, 6), "…"] : sources;
      throw new UserError(
        `dataset ${d}: all ${col.length} models have accuracy ${col[0]} (${shown.join(", ")}); ` +
          `min-max normalisation needs a spread: leave it out with --datasets or add models`,
      );
    }
  });
}
