/**
 * The cross-dataset score of the paper (§3.3, Eq. 1-3), as pure functions over an accuracy matrix.
 *
 * ```
 * Â[i,j]    = (A[i,j] − lo[j]) / (hi[j] − lo[j])    lo/hi: column min/max over the scored models,
 *                                                   or Table 3's fixed anchors ("reference" bounds)
 * G[i]      = mean_j Â[i,j]
 * V[i]      = sample variance_j Â[i,j]              (divide by N−1; reproduces Table 4, N gives no match)
 * xScore[i] = G[i] − λ·V[i],  λ ∈ [0, 1]
 * ```
 *
 * Nothing here reads files or knows about ledgers: see `ledger.ts` for that.
 *
 * @module
 */

/** Canonical dataset ids, the paper's seven in Table 3 column order, then the extra ones the tool knows. */
export const CANONICAL_DATASETS: readonly string[] = [
  "cifar10",
  "imagenette160",
  "cifar100",
  "ham10000",
  "stanford-dogs",
  "miniplaces",
  "mit-indoor67",
  "fashion-mnist",
];

/** Canonical model ids of the paper's 11 architectures (alphabetical). */
export const CANONICAL_MODELS: readonly string[] = [
  "convmixer",
  "convnext",
  "efficientnet",
  "fbnet",
  "ghostnet",
  "mobilenet",
  "mobileone",
  "mobilevit",
  "shufflenet",
  "starnet",
  "tinynet",
];

/**
 * Named dataset suites. `full` is the paper's seven datasets (Table 3 order); `proxy4` is the four-dataset
 * subset the paper recommends for future models (§4.1).
 */
export const SUITES: Readonly<Record<string, readonly string[]>> = {
  full: CANONICAL_DATASETS.slice(0, 7),
  proxy4: ["imagenette160", "cifar100", "ham10000", "stanford-dogs"],
};

/** Default λ (Table 4). */
export const DEFAULT_LAMBDA = 0.5;

/** Models × datasets accuracies (top-1 %), `values[i][j]` = model `models[i]` on dataset `datasets[j]`. */
export interface AccuracyMatrix {
  models: string[];
  datasets: string[];
  values: number[][];
}

/** Per-dataset normalisation anchors, aligned with a matrix's `datasets`. */
export interface Bounds {
  min: number[];
  max: number[];
}

/** One model's score. */
export interface ModelScore {
  model: string;
  /** Normalised accuracies Â (Eq. 1), aligned with the datasets. */
  normalized: number[];
  /** Mean of Â (Eq. 2). */
  G: number;
  /** Sample variance of Â, N−1 in the denominator (Eq. 2). */
  V: number;
  /** G − λ·V (Eq. 3). */
  xscore: number;
  /** 1 = best; equal scores share a rank (competition ranking: 1, 2, 2, 4). */
  rank: number;
}

/** The result of {@link computeXScore}. Scores keep the matrix's model order; sort by `rank` to display. */
export interface XScoreResult {
  datasets: string[];
  bounds: Bounds;
  lambda: number;
  scores: ModelScore[];
  /** How many Â fall outside [0, 1] (only possible with fixed anchors); they are kept, not clipped. */
  outsideUnitRange: number;
}

/** Arithmetic mean. Throws on an empty array. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("mean of an empty list");
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample variance (divides by n−1), as Table 4 uses. Throws for fewer than 2 values. */
export function sampleVariance(xs: readonly number[]): number {
  if (xs.length < 2) throw new RangeError("sample variance needs at least 2 values");
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return s / (xs.length - 1);
}

/** Sample standard deviation (n−1); `undefined` for a single value, where it is not defined. */
export function sampleStd(xs: readonly number[]): number | undefined {
  return xs.length < 2 ? undefined : Math.sqrt(sampleVariance(xs));
}

/** Per-dataset min and max over the matrix's models (the paper's default anchors, Eq. 1). */
export function observedBounds(matrix: AccuracyMatrix): Bounds {
  const min = matrix.datasets.map((_, j) => Math.min(...matrix.values.map((row) => row[j])));
  const max = matrix.datasets.map((_, j) => Math.max(...matrix.values.map((row) => row[j])));
  return { min, max };
}

/** Min-max normalisation of one accuracy (Eq. 1). Throws if the range is empty. */
export function minMax(value: number, lo: number, hi: number): number {
  if (!(hi > lo)) throw new RangeError(`empty normalisation range [${lo}, ${hi}]`);
  return (value - lo) / (hi - lo);
}

/** Â for every cell (Eq. 1), given anchors. Values outside [0, 1] are kept. */
export function normalize(matrix: AccuracyMatrix, bounds: Bounds): number[][] {
  return matrix.values.map((row) => row.map((a, j) => minMax(a, bounds.min[j], bounds.max[j])));
}

/** Competition ranks (1 = largest value; ties share the smaller rank). */
export function rankDescending(values: readonly number[]): number[] {
  return values.map((v) => 1 + values.filter((w) => w > v).length);
}

/** G, V and xScore of one row of normalised accuracies (Eq. 2-3). */
export function scoreRow(
  normalized: readonly number[],
  lambda: number,
): { G: number; V: number; xscore: number } {
  const G = mean(normalized);
  const V = sampleVariance(normalized);
  return { G, V, xscore: G - lambda * V };
}

/** Options of {@link computeXScore}. */
export interface XScoreOptions {
  /** Variance weight λ in [0, 1]; default 0.5. */
  lambda?: number;
  /** Fixed anchors (aligned with `matrix.datasets`); default: observed per-dataset min/max. */
  bounds?: Bounds;
}

/**
 * xScore of every model in `matrix` (Eq. 1-3). Needs ≥ 2 datasets (sample variance) and non-empty
 * ranges; throws a RangeError otherwise (the CLI validates first and names the offending input).
 */
export function computeXScore(matrix: AccuracyMatrix, options: XScoreOptions = {}): XScoreResult {
  const lambda = options.lambda ?? DEFAULT_LAMBDA;
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`lambda must be in [0, 1], got ${lambda}`);
  if (matrix.datasets.length < 2) throw new RangeError("xScore needs at least 2 datasets");
  if (matrix.models.length < 1) throw new RangeError("xScore needs at least 1 model");
  const bounds = options.bounds ?? observedBounds(matrix);
  const norm = normalize(matrix, bounds);
  const rows = norm.map((n) => scoreRow(n, lambda));
  const ranks = rankDescending(rows.map((r) => r.xscore));
  const outsideUnitRange = norm.flat().filter((v) => v < 0 || v > 1).length;
  return {
    datasets: [...matrix.datasets],
    bounds,
    lambda,
    scores: matrix.models.map((model, i) => ({ model, normalized: norm[i], ...rows[i], rank: ranks[i] })),
    outsideUnitRange,
  };
}

/** The columns `datasets` of `matrix`, in that order. Throws if one is absent. */
export function selectDatasets(matrix: AccuracyMatrix, datasets: readonly string[]): AccuracyMatrix {
  const idx = datasets.map((d) => {
    const j = matrix.datasets.indexOf(d);
    if (j < 0) throw new RangeError(`dataset ${d} is not in the matrix`);
    return j;
  });
  return {
    models: [...matrix.models],
    datasets: [...datasets],
    values: matrix.values.map((row) => idx.map((j) => row[j])),
  };
}
