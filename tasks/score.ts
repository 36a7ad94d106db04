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
import { formatCsv } from "../runtime/csv.ts";
import { runMain, UserError } from "../runtime/errors.ts";
import { writeFileAtomic } from "../runtime/fs.ts";
import {
  aggregateSeeds,
  assertSpread,
  buildMatrix,
  canonicalDatasetId,
  type Cell,
  fractionWarning,
  type LedgerRow,
  parseDecimal,
  readLedger,
} from "../score/ledger.ts";
import { scatterSvg } from "../score/plot.ts";
import { analyzeSubsets, leastSquares, pearson, spearmanRho, type SubsetResult } from "../score/subsets.ts";
import {
  type Bounds,
  computeXScore,
  DEFAULT_LAMBDA,
  observedBounds,
  SUITES,
  type XScoreResult,
} from "../score/xscore.ts";

/** The shipped Table 3 (as printed), the default input and the source of `--bounds reference`. */
export const REFERENCE_TABLE: URL = new URL("../data/reference/paper-table3.csv", import.meta.url);
/** How the shipped table is named in messages (paths are relative to the repository root). */
export const REFERENCE_LABEL = "data/reference/paper-table3.csv";

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

/** Where `main` prints: `out` is stdout (the report), `err` is stderr (warnings; notes under --format csv). */
export interface ScoreIo {
  out(line: string): void;
  err(line: string): void;
}

const consoleIo: ScoreIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** The Imagenette-vs-xScore analysis (paper §4.2, Figure 1). */
export interface ImagenetteCorrelation {
  models: string[];
  imagenette: number[];
  xscore: number[];
  pearson: number;
  spearman: number;
  /** Least squares imagenette = intercept + slope·xScore (the figure's line). */
  intercept: number;
  slope: number;
}

/** What one run computed and wrote (returned for tests and library use). */
export interface ScoreRun {
  result: XScoreResult;
  /** Averaged seeds behind each matrix cell, `cells[i][j]` for `result.scores[i]`, dataset j. */
  cells: Cell[][];
  files: string[];
  dropped: { model: string; missing: string[] }[];
  subsets?: SubsetResult[];
  correlation?: ImagenetteCorrelation;
  /** Paths written, in order. */
  written: string[];
}

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
        results: { type: "string", multiple: true },
        suite: { type: "string" },
        datasets: { type: "string" },
        lambda: { type: "string" },
        bounds: { type: "string" },
        out: { type: "string" },
        format: { type: "string" },
        "allow-missing": { type: "boolean" },
        "subset-size": { type: "string" },
        "imagenette-correlation": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    // node:util messages may span lines; the CLI prints exactly one.
    throw new UserError(`${(err as Error).message.replace(/\s*\n\s*/g, " ").replace(/\.$/, "")}; see --help`);
  }
  const v = parsed.values;
  if (v.help) return undefined;
  // `--results a.csv b.csv`: the files after the first arrive as positionals.
  const files = [...(v.results ?? []), ...parsed.positionals];
  if (parsed.positionals.length > 0 && !v.results) {
    throw new UserError(
      `unexpected argument "${parsed.positionals[0]}"; pass ledgers with --results FILE; see --help`,
    );
  }

  if (v.suite !== undefined && v.datasets !== undefined) {
    throw new UserError("give either --suite or --datasets, not both");
  }
  let datasets: string[], suiteLabel: string;
  if (v.datasets !== undefined) {
    datasets = v.datasets.split(",").map((d) => d.trim()).filter((d) => d).map(canonicalDatasetId);
    const dup = datasets.find((d, i) => datasets.indexOf(d) !== i);
    if (dup) throw new UserError(`--datasets: ${dup} is listed twice`);
    if (datasets.length < 2) {
      throw new UserError(
        `--datasets: need at least 2 datasets (V is a sample variance), got "${v.datasets}"`,
      );
    }
    suiteLabel = "custom";
  } else {
    suiteLabel = v.suite ?? "full";
    if (!Object.hasOwn(SUITES, suiteLabel)) {
      throw new UserError(
        `unknown suite "${suiteLabel}"; use ${Object.keys(SUITES).join(" or ")}, or --datasets a,b,...`,
      );
    }
    datasets = [...SUITES[suiteLabel]];
  }

  const lambda = v.lambda === undefined ? DEFAULT_LAMBDA : parseDecimal(v.lambda);
  if (lambda === undefined || lambda < 0 || lambda > 1) {
    throw new UserError(`--lambda must be a number in [0, 1] (paper Eq. 3), got "${v.lambda}"`);
  }
  const bounds = v.bounds ?? "observed";
  if (bounds !== "observed" && bounds !== "reference") {
    throw new UserError(`--bounds must be observed or reference, got "${bounds}"`);
  }
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

/** Table 3's column extremes for `datasets` (paper §4.1), from the shipped reference table. */
export async function referenceBounds(datasets: readonly string[]): Promise<Bounds> {
  const cells = aggregateSeeds(await readLedger(REFERENCE_TABLE, REFERENCE_LABEL));
  const known = new Set(cells.map((c) => c.dataset));
  const unknown = datasets.filter((d) => !known.has(d));
  if (unknown.length > 0) {
    throw new UserError(
      `--bounds reference: ${REFERENCE_LABEL} has no anchors for ${
        unknown.join(", ")
      }; use --bounds observed`,
    );
  }
  return observedBounds(buildMatrix(cells, datasets, { files: [REFERENCE_LABEL] }).matrix);
}

function imagenetteCorrelation(
  result: XScoreResult,
  cells: readonly Cell[],
  files: string[],
): ImagenetteCorrelation {
  const acc = new Map(cells.filter((c) => c.dataset === "imagenette160").map((c) => [c.model, c.accuracy]));
  const models = result.scores.map((s) => s.model);
  const lacking = models.filter((m) => !acc.has(m));
  if (lacking.length > 0) {
    throw new UserError(
      `--imagenette-correlation: no imagenette160 result for ${lacking.join(", ")} in ${files.join(", ")}`,
    );
  }
  if (models.length < 3) throw new UserError("--imagenette-correlation needs at least 3 models");
  const imagenette = models.map((m) => acc.get(m)!);
  const xscore = result.scores.map((s) => s.xscore);
  const fit = leastSquares(xscore.map((x) => [x]), imagenette);
  return {
    models,
    imagenette,
    xscore,
    pearson: pearson(imagenette, xscore),
    spearman: spearmanRho(imagenette, xscore),
    intercept: fit.coefficients[0],
    slope: fit.coefficients[1],
  };
}

const n6 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "" : Number(v.toFixed(6)));
const n3 = (v: number) => (Number.isNaN(v) ? "n/a" : v.toFixed(3));

function alignTable(header: string[], rows: string[][], right: boolean[]): string[] {
  const w = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((s, c) => (right[c] ? s.padStart(w[c]) : s.padEnd(w[c]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

function mdTable(header: string[], rows: string[][], right: boolean[]): string[] {
  return [
    `| ${header.join(" | ")} |`,
    `|${right.map((r) => (r ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
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
    await Deno.mkdir(opt.out, { recursive: true });
    for (const [name, text] of outputs) {
      const path = `${opt.out}/${name}`;
      await writeFileAtomic(path, text);
      run.written.push(path);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw writeDenied(opt.out);
    }
    if (err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotADirectory) {
      throw new UserError(`--out ${opt.out}: exists and is not a directory`);
    }
    throw err;
  }
  report(io, opt, run, { isDefault, xscoreCsv: outputs[0][1] });
  return run;
}

/** Indices of `run.result.scores`, best rank first. */
const rankOrder = (run: ScoreRun) =>
  run.result.scores.map((_, i) => i).sort((a, b) => run.result.scores[a].rank - run.result.scores[b].rank);

/** The output files as [name, text]; xscore.csv first. */
function renderOutputs(run: ScoreRun, opt: Options): [string, string][] {
  const { result, subsets, correlation } = run;
  const order = rankOrder(run);
  const outputs: [string, string][] = [];
  outputs.push([
    "xscore.csv",
    formatCsv(
      ["rank", "model", "G", "V", "xscore", "n_datasets", "lambda", "bounds", "datasets"],
      order.map((i) => result.scores[i]).map((s) => [
        s.rank,
        s.model,
        n6(s.G),
        n6(s.V),
        n6(s.xscore),
        result.datasets.length,
        result.lambda,
        opt.bounds,
        result.datasets.join(" "),
      ]),
    ),
  ]);
  outputs.push([
    "normalized.csv",
    formatCsv(
      ["model", "dataset", "accuracy", "n", "std", "normalized", "min", "max", "outside_0_1"],
      order.flatMap((i) =>
        result.datasets.map((d, j) => {
          const s = result.scores[i], c = run.cells[i][j], a = s.normalized[j];
          return [
            s.model,
            d,
            n6(c.accuracy),
            c.n,
            n6(c.std),
            n6(a),
            result.bounds.min[j],
            result.bounds.max[j],
            String(a < 0 || a > 1),
          ];
        })
      ),
    ),
  ]);
  if (subsets) {
    outputs.push([
      "subsets.csv",
      formatCsv(
        [
          "rank",
          "k",
          "datasets",
          "kendall_tau",
          "spearman_rho",
          "fit_max_abs_error",
          "fit_mean_abs_error",
          "exact_fit",
        ],
        subsets.map((s) => [
          s.rank,
          s.datasets.length,
          s.datasets.join(" "),
          n6(s.tau),
          n6(s.rho),
          n6(s.fitMaxAbsError),
          n6(s.fitMeanAbsError),
          String(s.exactFit),
        ]),
      ),
    ]);
  }
  if (correlation) {
    const svg = scatterSvg({
      title: `Imagenette-160 accuracy vs xScore (${result.datasets.length} datasets, λ = ${result.lambda})`,
      subtitle: `${correlation.models.length} models · Pearson r = ${correlation.pearson.toFixed(3)} · ` +
        `Spearman ρ = ${correlation.spearman.toFixed(3)}`,
      xLabel: `xScore (${opt.bounds} bounds)`,
      yLabel: "Imagenette-160 top-1 accuracy (%)",
      points: correlation.models.map((m, i) => ({
        label: m,
        x: correlation.xscore[i],
        y: correlation.imagenette[i],
      })),
      line: {
        slope: correlation.slope,
        intercept: correlation.intercept,
        label: `least squares: ${correlation.intercept.toFixed(2)} + ${correlation.slope.toFixed(2)}·xScore`,
      },
    });
    outputs.push(["imagenette-vs-xscore.svg", svg]);
  }
  return outputs;
}

function report(
  io: ScoreIo,
  opt: Options,
  run: ScoreRun,
  extra: { isDefault: boolean; xscoreCsv: string },
): void {
  const { result } = run;
  // With --format csv stdout is the CSV alone; everything else goes to stderr.
  const note = opt.format === "csv" ? (l: string) => io.err(l) : (l: string) => io.out(l);
  if (opt.format === "csv") io.out(extra.xscoreCsv.trimEnd());

  const seeded = run.cells.flat().some((c) => c.n > 1);
  const header = ["rank", "model", "G", "V", "xScore", "datasets"];
  if (seeded) header.push("seeds", "max std (pp)");
  const rows = rankOrder(run).map((i) => {
    const s = result.scores[i], c = run.cells[i];
    const r = [String(s.rank), s.model, n3(s.G), n3(s.V), n3(s.xscore), String(result.datasets.length)];
    if (seeded) {
      const ns = c.map((x) => x.n), stds = c.map((x) => x.std ?? 0);
      const lo = Math.min(...ns), hi = Math.max(...ns);
      r.push(lo === hi ? String(lo) : `${lo}-${hi}`, hi > 1 ? Math.max(...stds).toFixed(2) : "");
    }
    return r;
  });
  const right = header.map((h) => h !== "model");
  const suite = opt.suiteLabel === "custom" ? "datasets" : `suite ${opt.suiteLabel}`;
  const bounds = opt.bounds === "observed"
    ? "observed (per-dataset min/max over the scored models)"
    : `reference (Table 3 column extremes, ${REFERENCE_LABEL})`;
  const intro = [
    `xScore: ${suite} (${result.datasets.length}): ${result.datasets.join(", ")}`,
    `${result.scores.length} models from ${run.files.join(", ")}; λ = ${result.lambda}; bounds: ${bounds}`,
  ];
  if (opt.format === "md") {
    note(intro.map((l) => `${l}  `).join("\n"));
    note("");
    mdTable(header, rows, right).forEach(note);
  } else if (opt.format === "table") {
    intro.forEach(note);
    note("");
    alignTable(header, rows, right).forEach(note);
  } else {
    intro.forEach(note);
  }

  const notes: string[] = [];
  if (run.dropped.length > 0) {
    notes.push(`dropped (incomplete, --allow-missing): ${run.dropped.map((d) => d.model).join(", ")}`);
  }
  if (seeded) {
    notes.push("seeds: rows of one model/dataset are averaged; per-cell n and std are in normalized.csv");
  }
  if (result.outsideUnitRange > 0) {
    notes.push(
      `${result.outsideUnitRange} normalized value${
        result.outsideUnitRange > 1 ? "s" : ""
      } fall outside [0, 1] ` +
        `under the reference bounds; kept, not clipped (column outside_0_1 of normalized.csv)`,
    );
  }
  if (extra.isDefault && result.datasets.includes("miniplaces") && result.datasets.includes("mit-indoor67")) {
    notes.push(
      "this is Table 3 as printed: 9 of 11 rows reproduce the paper's Table 4; convmixer and mobilevit match it " +
        "only with their miniplaces and mit-indoor67 values swapped (see score/README.md)",
    );
  }
  if (notes.length > 0) {
    note("");
    notes.forEach((n) => note(`note: ${n}`));
  }

  if (run.subsets) {
    const all = run.subsets, k = all[0].datasets.length;
    const shown = all.filter((s, i) => i < 10 || s.rank === 1);
    note("");
    note(
      `Best ${k}-dataset subsets (${shown.length} of ${all.length}) by rank agreement with the xScore above:`,
    );
    note(
      "  tau, rho: Kendall tau-b and Spearman rho between the subset's plain xScore and the full xScore;",
    );
    note(
      "  fit: least-squares prediction of the full xScore from the subset's normalized accuracies (+ intercept).",
    );
    const h = ["rank", "datasets", "tau", "rho", "fit max|err|", "fit mean|err|"];
    const r = shown.map((s) => [
      String(s.rank),
      s.datasets.join(","),
      n3(s.tau),
      n3(s.rho),
      n3(s.fitMaxAbsError) + (s.exactFit ? " (exact fit)" : ""),
      n3(s.fitMeanAbsError),
    ]);
    const rr = h.map((x) => x !== "datasets");
    (opt.format === "md" ? mdTable(h, r, rr) : alignTable(h, r, rr)).forEach(note);
    const proxy = SUITES.proxy4;
    if (k === proxy.length && proxy.every((d) => result.datasets.includes(d))) {
      const p = all.find((s) => proxy.every((d) => s.datasets.includes(d)))!;
      const tied = all.filter((s) => s.rank === p.rank).length - 1;
      note(
        `the paper's proxy4 subset (${proxy.join(",")}) ranks ${p.rank} of ${all.length}` +
          (tied > 0 ? ` (tied with ${tied} other${tied > 1 ? "s" : ""}).` : "."),
      );
      note(
        'the paper\'s "4-dataset xScore" column (Table 4) is not reproducible from Table 3 by any lambda, ' +
          "subset or linear predictor, so it is not emitted (see score/README.md).",
      );
    }
  }
  if (run.correlation) {
    const c = run.correlation;
    note("");
    note(
      `Imagenette-160 accuracy vs xScore (${c.models.length} models): Pearson r = ${n3(c.pearson)}, ` +
        `Spearman rho = ${n3(c.spearman)}; least squares: imagenette = ${c.intercept.toFixed(2)} + ` +
        `${c.slope.toFixed(2)}·xScore`,
    );
  }
  note("");
  note(`wrote ${run.written.join(", ")}`);
}

if (import.meta.main) await runMain(async () => void await main(Deno.args));
