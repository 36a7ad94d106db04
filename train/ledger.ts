/**
 * The results ledger `OUT/results.csv`: one row per finished run, the file `deno task score
 * --results` reads. Appends take a file lock and rewrite the whole file through temp + rename, so
 * concurrent sweep jobs never lose a row and a crash never leaves a half-written file.
 *
 * @module
 */
import { formatCsv, parseCsv } from "../runtime/csv.ts";
import { exists, withFileLock, writeFileAtomic } from "../runtime/fs.ts";
import { UserError } from "../runtime/errors.ts";
import { MAX_TEXT_INPUT_BYTES, readFileBounded } from "../runtime/cli.ts";

/** The ledger's columns, in order. */
export const LEDGER_COLUMNS = [
  "model",
  "dataset",
  "accuracy",
  "best_accuracy",
  "best_epoch",
  "epochs",
  "preset",
  "seed",
  "params",
  "image_size",
  "batch_size",
  "train_seconds",
  "images_per_second",
  "adapter",
  "version",
  "finished_at",
] as const;

/** One ledger column name. */
export type LedgerColumn = typeof LEDGER_COLUMNS[number];
/** One ledger row (values are written with `String()`). */
export type LedgerRecord = Record<LedgerColumn, string | number>;

/**
 * Reads the ledger (bounded) and checks its header: a missing file is an empty ledger; a directory,
 * a binary or malformed file, or another header is a one-line UserError naming the file.
 */
async function readLedgerTable(path: string): Promise<{ header: string[]; rows: string[][] }> {
  if (!(await exists(path))) return { header: [], rows: [] };
  let table;
  try {
    table = parseCsv(
      new TextDecoder("utf-8", { fatal: true }).decode(await readFileBounded(path, MAX_TEXT_INPUT_BYTES)),
    );
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (err instanceof Deno.errors.IsADirectory) {
      throw new UserError(`${path}: is a directory, not the training ledger; use another --out`);
    }
    if (err instanceof Deno.errors.InvalidData || err instanceof TypeError) {
      throw new UserError(`${path}: not a text CSV file; use another --out directory or fix the file`);
    }
    throw new UserError(
      `${path}: malformed CSV (${
        String((err as Error).message).split("\n")[0]
      }); use another --out or fix the file`,
    );
  }
  if (table.header.length && table.header.join(",") !== LEDGER_COLUMNS.join(",")) {
    throw new UserError(
      `${path}, line 1: header "${table.header.join(",")}" is not the training ledger's ` +
        `"${LEDGER_COLUMNS.join(",")}"; use another --out directory or fix the file`,
    );
  }
  return table;
}

/**
 * The ledger's rows as column → value maps (a missing file is an empty ledger), its header checked
 * first: a training calls this before it starts, so a malformed ledger is found in seconds, not
 * after hours of training.
 */
export async function readLedgerRecords(path: string): Promise<Record<string, string>[]> {
  const table = await readLedgerTable(path);
  return table.rows.map((r) => Object.fromEntries(table.header.map((h, k) => [h, r[k]])));
}

/**
 * Appends `row` under a lock on `path`. An existing file must have exactly {@link LEDGER_COLUMNS}
 * as its header (a UserError otherwise, before anything is written). With `unlessPresent`, a row
 * equal in every column to one already there is not appended again (a run's row carries its
 * finish time, so this only skips the same run's row). Returns whether a row was appended.
 */
export async function appendLedgerRow(
  path: string,
  row: LedgerRecord,
  options: { unlessPresent?: boolean } = {},
): Promise<boolean> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true });
  return await withFileLock(path, async () => {
    const rows = (await readLedgerTable(path)).rows;
    const cells = LEDGER_COLUMNS.map((c) => String(row[c]));
    if (options.unlessPresent && rows.some((r) => r.join("\u0000") === cells.join("\u0000"))) return false;
    rows.push(cells);
    await writeFileAtomic(path, formatCsv(LEDGER_COLUMNS, rows));
    return true;
  });
}

/**
 * The 1-based line of the first ledger row of the same configuration (model, dataset, preset label,
 * seed), or undefined: a rerun of a finished configuration would add a second row for one seed.
 */
export function findLedgerRun(
  rows: readonly Record<string, string>[],
  run: { model: string; dataset: string; preset: string; seed: number },
): number | undefined {
  const i = rows.findIndex((r) =>
    r.model === run.model && r.dataset === run.dataset && r.preset === run.preset &&
    r.seed === String(run.seed)
  );
  return i < 0 ? undefined : i + 2;
}
