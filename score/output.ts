/**
 * What `deno task score` writes and prints for one scored run: the output files (xscore.csv,
 * normalized.csv, subsets.csv, imagenette-vs-xscore.svg) and the report on stdout as an aligned
 * table, markdown or CSV.
 *
 * @module
 */
import { formatCsv } from "../runtime/csv.ts";
import type { Cell } from "./ledger.ts";
import { scatterSvg } from "./plot.ts";
import type { SubsetResult } from "./subsets.ts";
import { SUITES, type XScoreResult } from "./xscore.ts";
import type { ImagenetteCorrelation } from "./correlation.ts";
import { REFERENCE_LABEL } from "./reference.ts";

/** Where a score run prints: `out` is stdout (the report), `err` is stderr (warnings; notes under --format csv). */
export interface ScoreIo {
  out(line: string): void;
  err(line: string): void;
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

/** The choices of a score run that shape its outputs. */
export interface OutputOptions {
  /** "custom" for an explicit dataset list, else the suite's name. */
  suiteLabel: string;
  bounds: "observed" | "reference";
  format: "table" | "csv" | "md";
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

/** Indices of `run.result.scores`, best rank first. */
const rankOrder = (run: ScoreRun) =>
  run.result.scores.map((_, i) => i).sort((a, b) => run.result.scores[a].rank - run.result.scores[b].rank);

/**
 * The paper's Figure 1: each scored model's Imagenette-160 accuracy against its xScore, with the
 * least-squares line (imagenette-vs-xscore.svg of `deno task score` and of `deno task report`).
 */
export function imagenetteFigureSvg(
  correlation: ImagenetteCorrelation,
  result: XScoreResult,
  bounds: "observed" | "reference",
): string {
  return scatterSvg({
    title: `Imagenette-160 accuracy vs xScore (${result.datasets.length} datasets, λ = ${result.lambda})`,
    subtitle: `${correlation.models.length} models · Pearson r = ${correlation.pearson.toFixed(3)} · ` +
      `Spearman ρ = ${correlation.spearman.toFixed(3)}`,
    xLabel: `xScore (${bounds} bounds)`,
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
}

/** The output files as [name, text]; xscore.csv first. */
export function renderOutputs(run: ScoreRun, opt: OutputOptions): [string, string][] {
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
    outputs.push(["imagenette-vs-xscore.svg", imagenetteFigureSvg(correlation, result, opt.bounds)]);
  }
  return outputs;
}

/** Prints the report of `run` to `io`: the ranking, notes, subsets and correlation, then the files written. */
export function printReport(
  io: ScoreIo,
  opt: OutputOptions,
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
