/**
 * How robust an xScore ranking is: percentile-bootstrap confidence intervals over seeds (each
 * cell's seed runs resampled) and over datasets (the scored datasets resampled), and leave-one-
 * dataset-out rank stability. Every replicate is scored with {@link computeXScore}, so the
 * intervals describe exactly the score `deno task score` prints.
 *
 * @module
 */
import { Rng } from "../runtime/rng.ts";
import { type AccuracyMatrix, type Bounds, computeXScore, mean } from "./xscore.ts";

/** A two-sided interval. */
export interface Interval {
  lo: number;
  hi: number;
}

/** Options shared by the resampling analyses. */
export interface BootstrapOptions {
  /** Variance weight λ (Eq. 3). */
  lambda: number;
  /** Fixed anchors aligned with the matrix's datasets; default: observed min/max of each replicate. */
  bounds?: Bounds;
  /** Number of bootstrap replicates (default 1000). */
  replicates?: number;
  /** Seed of the resampling RNG (default 1), so a report is reproducible. */
  seed?: number;
  /** Central coverage of the intervals (default 0.95). */
  level?: number;
}

/** Result of one bootstrap, aligned with the matrix's models. */
export interface BootstrapResult {
  kind: "seeds" | "datasets";
  /** Replicates scored (replicates whose normalisation range collapsed are left out and counted). */
  replicates: number;
  /** Replicates left out because a dataset's range became empty under observed bounds. */
  degenerate: number;
  level: number;
  xscore: Interval[];
  /** Rank intervals (integer ranks: lower quantile floored, upper ceiled). */
  rank: Interval[];
  /** Fraction of replicates in which each model ranks first. */
  top1: number[];
  /** Mean xScore over the replicates. */
  meanXScore: number[];
}

/**
 * The q-quantile of ascending `sorted` values with linear interpolation between order statistics
 * (Hyndman-Fan type 7, numpy's default `percentile` method).
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError("quantile of an empty list");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile level must be in [0, 1], got ${q}`);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function summarize(
  kind: BootstrapResult["kind"],
  samples: { xscore: number[]; rank: number[] }[],
  models: number,
  degenerate: number,
  level: number,
): BootstrapResult {
  const a = (1 - level) / 2;
  const xscore: Interval[] = [], rank: Interval[] = [], top1: number[] = [], meanXScore: number[] = [];
  for (let i = 0; i < models; i++) {
    const xs = samples.map((s) => s.xscore[i]).sort((p, q) => p - q);
    const rs = samples.map((s) => s.rank[i]).sort((p, q) => p - q);
    xscore.push({ lo: quantile(xs, a), hi: quantile(xs, 1 - a) });
    rank.push({ lo: Math.floor(quantile(rs, a)), hi: Math.ceil(quantile(rs, 1 - a)) });
    top1.push(samples.filter((s) => s.rank[i] === 1).length / samples.length);
    meanXScore.push(mean(xs));
  }
  return { kind, replicates: samples.length, degenerate, level, xscore, rank, top1, meanXScore };
}

function scoreOrSkip(matrix: AccuracyMatrix, lambda: number, bounds?: Bounds) {
  try {
    const r = computeXScore(matrix, { lambda, bounds });
    return { xscore: r.scores.map((s) => s.xscore), rank: r.scores.map((s) => s.rank) };
  } catch (err) {
    // An observed range can collapse in a replicate (every model drew the same value); skip it.
    if (err instanceof RangeError && /empty normalisation range/.test(err.message)) return undefined;
    throw err;
  }
}

/**
 * Bootstrap over seeds: each replicate draws, for every (model, dataset) cell independently, as
 * many seed runs as it has, with replacement, averages them, and scores the resulting matrix.
 * `seeds[i][j]` are the seed accuracies of model i on dataset j. Returns undefined when no cell
 * has more than one seed (there is nothing to resample).
 */
export function bootstrapSeeds(
  models: readonly string[],
  datasets: readonly string[],
  seeds: readonly (readonly (readonly number[])[])[],
  options: BootstrapOptions,
): BootstrapResult | undefined {
  if (!seeds.some((row) => row.some((cell) => cell.length > 1))) return undefined;
  const rng = new Rng(options.seed ?? 1);
  const samples: { xscore: number[]; rank: number[] }[] = [];
  let degenerate = 0;
  for (let b = 0; b < (options.replicates ?? 1000); b++) {
    const values = seeds.map((row) =>
      row.map((cell) => {
        let s = 0;
        for (let k = 0; k < cell.length; k++) s += cell[rng.int(0, cell.length - 1)];
        return s / cell.length;
      })
    );
    const r = scoreOrSkip(
      { models: [...models], datasets: [...datasets], values },
      options.lambda,
      options.bounds,
    );
    if (r) samples.push(r);
    else degenerate++;
  }
  if (samples.length === 0) return undefined;
  return summarize("seeds", samples, models.length, degenerate, options.level ?? 0.95);
}

/**
 * Bootstrap over datasets: each replicate draws N of the N datasets with replacement (a dataset
 * drawn twice counts twice in G and V) and scores the models on them.
 */
export function bootstrapDatasets(matrix: AccuracyMatrix, options: BootstrapOptions): BootstrapResult {
  const rng = new Rng(options.seed ?? 1);
  const n = matrix.datasets.length;
  const samples: { xscore: number[]; rank: number[] }[] = [];
  let degenerate = 0;
  for (let b = 0; b < (options.replicates ?? 1000); b++) {
    const pick = Array.from({ length: n }, () => rng.int(0, n - 1));
    const m: AccuracyMatrix = {
      models: [...matrix.models],
      datasets: pick.map((j, k) => `${matrix.datasets[j]}#${k}`),
      values: matrix.values.map((row) => pick.map((j) => row[j])),
    };
    const bounds = options.bounds
      ? { min: pick.map((j) => options.bounds!.min[j]), max: pick.map((j) => options.bounds!.max[j]) }
      : undefined;
    const r = scoreOrSkip(m, options.lambda, bounds);
    if (r) samples.push(r);
    else degenerate++;
  }
  return summarize("datasets", samples, matrix.models.length, degenerate, options.level ?? 0.95);
}

/** Leave-one-dataset-out ranks and how often each model keeps its full-suite rank. */
export interface LeaveOneOut {
  /** The full-suite ranks, aligned with the models. */
  fullRank: number[];
  /** One fold per left-out dataset: the ranks on the remaining datasets. */
  folds: { left: string; rank: number[] }[];
  /** Fraction of folds in which each model keeps its full-suite rank. */
  stability: number[];
  /** Lowest and highest rank each model takes over the folds. */
  range: Interval[];
}

/**
 * Scores the models once per dataset left out (needs at least 3 datasets, as each fold keeps the
 * two that the sample variance needs). Fixed `bounds` lose the left-out column with it.
 */
export function leaveOneDatasetOut(
  matrix: AccuracyMatrix,
  options: { lambda: number; bounds?: Bounds },
): LeaveOneOut | undefined {
  const n = matrix.datasets.length;
  if (n < 3) return undefined;
  const fullRank = computeXScore(matrix, options).scores.map((s) => s.rank);
  const folds = matrix.datasets.map((left, j) => {
    const keep = matrix.datasets.map((_, k) => k).filter((k) => k !== j);
    const m: AccuracyMatrix = {
      models: [...matrix.models],
      datasets: keep.map((k) => matrix.datasets[k]),
      values: matrix.values.map((row) => keep.map((k) => row[k])),
    };
    const bounds = options.bounds
      ? { min: keep.map((k) => options.bounds!.min[k]), max: keep.map((k) => options.bounds!.max[k]) }
      : undefined;
    return { left, rank: computeXScore(m, { lambda: options.lambda, bounds }).scores.map((s) => s.rank) };
  });
  const stability = fullRank.map((r, i) => folds.filter((f) => f.rank[i] === r).length / n);
  const range = fullRank.map((_, i) => ({
    lo: Math.min(...folds.map((f) => f.rank[i])),
    hi: Math.max(...folds.map((f) => f.rank[i])),
  }));
  return { fullRank, folds, stability, range };
}
