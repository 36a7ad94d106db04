/**
 * `deno task score`: the cross-dataset score (xScore, paper Eq. 1-3) of every model in one or more
 * results ledgers; by default the paper's Table 3 shipped in data/reference/paper-table3.csv.
 *
 * Everything is read, validated and computed before the first file is written, so bad input writes
 * nothing; each output file is written atomically.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { describeParseError, runMain, UsageError, UserError } from "../runtime/errors.ts";
import { writeOutputs } from "../runtime/cli.ts";
import {
  aggregateSeeds,
  assertSpread,
  buildMatrix,
  fractionWarning,
  type LedgerRow,
  mixedScaleWarnings,
  parseDecimal,
  readLedger,
} from "../score/ledger.ts";
import { analyzeSubsets } from "../score/subsets.ts";
import { type Bounds, computeXScore, DEFAULT_LAMBDA, SUITES } from "../score/xscore.ts";
import { SCORING_FLAGS, scoringChoice } from "../score/options.ts";
import { REFERENCE_LABEL, REFERENCE_TABLE, referenceBounds } from "../score/reference.ts";
import { imagenetteCorrelation } from "../score/correlation.ts";
import { printReport, renderOutputs, type ScoreIo, type ScoreRun } from "../score/output.ts";

const USAGE = `deno task score [options]

xScore (paper Eq. 1-3) of every model in results ledgers: per-dataset min-max normalisation,
G = mean, V = sample variance (n-1), xScore = G - lambda*V. Ledger: CSV with at least
model,dataset,accuracy (top-1 %); several rows of one model/dataset are seeds and are averaged.

  --results FILE...     ledger(s) to score; repeatable (default: ${REFERENCE_LABEL})
  --suite full|proxy4   full = ${SUITES.full.join(",")}
                        proxy4 = ${SUITES.proxy4.join(",")} (default full)
  --datasets a,b,...    score these datasets instead of a suite
  --lambda X            variance weight in [0,1] (default ${DEFAULT_LAMBDA})
  --bounds observed|reference
                        normalisation anchors: min/max over the scored models (default), or fixed
                        to Table 3's column extremes (paper §4.1; values may leave [0,1])
  --allow-missing       drop models lacking a dataset (warning) instead of failing
  --subset-size K       rank every K-dataset subset by how well it reproduces the full ranking
                        (Kendall tau, Spearman rho, least-squares predictor); writes subsets.csv
  --imagenette-correlation
                        Pearson/Spearman between Imagenette-160 accuracy and xScore; writes
                        imagenette-vs-xscore.svg (the paper's Figure 1)
  --out DIR             output folder (default results/; deno task score may write only there)
  --format table|csv|md stdout format (default table)
  --help                this text

Writes DIR/xscore.csv and DIR/normalized.csv (+ subsets.csv, imagenette-vs-xscore.svg when asked).
Bad input: one line naming the file and line, exit code 2, nothing written.`;

const consoleIo: ScoreIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

interface Options {
  files: string[];
  datasets: string[];
  suiteLabel: string;
  lambda: number;
  bounds: "observed" | "reference";
  out: string;
  format: "table" | "csv" | "md";
  allowMissing: boolean;
  subsetSize?: number;
  imagenette: boolean;
}

function parseOptions(args: string[]): Options | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...SCORING_FLAGS,
        out: { type: "string" },
        format: { type: "string" },
        "allow-missing": { type: "boolean" },
        "subset-size": { type: "string" },
        "imagenette-correlation": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError(`${describeParseError(err)}; see --help`, USAGE);
  }
  const v = parsed.values;
  if (v.help) return undefined;
  const { files, lambda, bounds, ...choice } = scoringChoice(v, parsed.positionals, USAGE);
  const datasets = choice.datasets ?? [...SUITES.full], suiteLabel = choice.suite ?? "full";
  const format = v.format ?? "table";
  if (format !== "table" && format !== "csv" && format !== "md") {
    throw new UserError(`--format must be table, csv or md, got "${format}"`);
  }
  let subsetSize: number | undefined;
  if (v["subset-size"] !== undefined) {
    const k = parseDecimal(v["subset-size"]);
    if (k === undefined || !Number.isInteger(k) || k < 2 || k > datasets.length) {
      throw new UserError(
        `--subset-size must be an integer from 2 to ${datasets.length} (the number of scored datasets), ` +
          `got "${v["subset-size"]}"`,
      );
    }
    subsetSize = k;
  }
  const out = (v.out ?? "results").replace(/\/+$/, "") || "/";
  return {
    files,
    datasets,
    suiteLabel,
    lambda,
    bounds,
    out,
    format,
    allowMissing: v["allow-missing"] ?? false,
    subsetSize,
    imagenette: v["imagenette-correlation"] ?? false,
  };
}

/** Checks that `dir` may be written before anything is, so a denied `--out` writes nothing. */
function assertWritable(dir: string): void {
  const state = Deno.permissions.querySync({ name: "write", path: dir }).state;
  if (state !== "granted") throw writeDenied(dir);
}

function writeDenied(dir: string): UserError {
  return new UserError(
    `cannot write to ${dir}: Deno has no write permission there (deno task score may write only under results/); ` +
      `use --out results/<name>, or run: deno run --allow-read --allow-write=${dir} tasks/score.ts ...`,
  );
}

/**
 * Runs the score task with command-line `args`. Throws {@link UserError} on bad input before writing
 * anything; returns what was computed and written (undefined for `--help`).
 */
export async function main(args: string[], io: ScoreIo = consoleIo): Promise<ScoreRun | undefined> {
  const opt = parseOptions(args);
  if (!opt) {
    io.out(USAGE);
    return undefined;
  }
  const isDefault = opt.files.length === 0;
  const files = isDefault ? [REFERENCE_LABEL] : opt.files;
  const rows: LedgerRow[] = [];
  for (const file of files) {
    const fileRows = await readLedger(isDefault ? REFERENCE_TABLE : file, file);
    const w = fractionWarning(fileRows);
    if (w) io.err(`warning: ${w}`);
    rows.push(...fileRows);
  }
  for (const w of mixedScaleWarnings(rows)) io.err(`warning: ${w}`);
  const cells = aggregateSeeds(rows);
  const build = buildMatrix(cells, opt.datasets, { allowMissing: opt.allowMissing, files });
  for (const d of build.dropped) {
    io.err(`warning: --allow-missing: dropped ${d.model} (no result for ${d.missing.join(", ")})`);
  }
  let bounds: Bounds | undefined;
  if (opt.bounds === "reference") bounds = await referenceBounds(opt.datasets);
  else assertSpread(build);
  const result = computeXScore(build.matrix, { lambda: opt.lambda, bounds });
  const run: ScoreRun = {
    result,
    cells: build.cells,
    files,
    dropped: build.dropped,
    subsets: opt.subsetSize ? analyzeSubsets(result, opt.subsetSize) : undefined,
    correlation: opt.imagenette ? imagenetteCorrelation(result, cells, files) : undefined,
    written: [],
  };

  // Every output is rendered, and the folder's permission checked, before the first write.
  const outputs = renderOutputs(run, opt);
  assertWritable(opt.out);
  try {
    run.written.push(...await writeOutputs(opt.out, outputs));
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw writeDenied(opt.out);
    }
    throw err;
  }
  printReport(io, opt, run, { isDefault, xscoreCsv: outputs[0][1] });
  return run;
}

if (import.meta.main) await runMain(async () => void await main(Deno.args));
