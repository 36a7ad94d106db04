/**
 * Which few datasets reproduce the full-suite xScore? The paper picks its four datasets "through a
 * brute-force comparison across all eleven models, identifying the subset that best reproduces the full
 * xScore rankings" (§4.1) but publishes no criterion or code. Here every k-dataset subset is scored with
 * the plain xScore over its columns (same anchors, Eq. 1-3) and compared with the full-suite xScore by
 * rank agreement (Kendall τ-b, Spearman ρ). A least-squares predictor of the full xScore from the
 * subset's normalised accuracies (with intercept) shows how well the subset could *predict* the score.
 *
 * The paper's "4-dataset xScore" column is not reproducible by any of these (docs/protocol.md §5.4), so
 * this module does not try to emit it.
 *
 * @module
 */
import { mean, scoreRow, type XScoreResult } from "./xscore.ts";

/** All k-element subsets of `items`, each in the input order, in lexicographic index order. */
export function combinations<T>(items: readonly T[], k: number): T[][] {
  const out: T[][] = [];
  const pick: T[] = [];
  const rec = (start: number) => {
    if (pick.length === k) {
      out.push([...pick]);
      return;
    }
    for (let i = start; i <= items.length - (k - pick.length); i++) {
      pick.push(items[i]);
      rec(i + 1);
      pick.pop();
    }
  };
  if (k >= 0 && k <= items.length) rec(0);
  return out;
}

/** 1-based ascending ranks; tied values get the mean of their ranks (as Spearman's ρ needs). */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const ranks = new Array<number>(xs.length);
  for (let s = 0; s < order.length;) {
    let e = s;
    while (e + 1 < order.length && xs[order[e + 1]] === xs[order[s]]) e++;
    const r = (s + e) / 2 + 1;
    for (let t = s; t <= e; t++) ranks[order[t]] = r;
    s = e + 1;
  }
  return ranks;
}

/** Pearson correlation coefficient; NaN if either side has no variance or lengths differ/are < 2. */
export function pearson(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length || x.length < 2) return NaN;
  const mx = mean(x), my = mean(y);
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rank correlation ρ (Pearson on average ranks, so ties are handled). */
export function spearmanRho(x: readonly number[], y: readonly number[]): number {
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Kendall's τ-b: (concordant − discordant) / √((n0 − ties_x)(n0 − ties_y)). Equals τ-a without ties.
 * NaN if either side is constant.
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length || x.length < 2) return NaN;
  let s = 0, tx = 0, ty = 0, n0 = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      n0++;
      const dx = Math.sign(x[i] - x[j]), dy = Math.sign(y[i] - y[j]);
      if (dx === 0) tx++;
      if (dy === 0) ty++;
      s += dx * dy;
    }
  }
  const denom = Math.sqrt((n0 - tx) * (n0 - ty));
  return denom === 0 ? NaN : s / denom;
}

/** Result of {@link leastSquares}. */
export interface LeastSquaresFit {
  /** `[intercept, b1, …, bp]`; a column collinear with earlier ones gets 0. */
  coefficients: number[];
  /** Predictions for the fitted rows. */
  fitted: number[];
  /** Rank of [1 | X]; an exact fit when rank ≥ number of rows. */
  rank: number;
}

/**
 * Ordinary least squares of `y` on the columns of `X` (rows = observations) plus an intercept, by
 * modified Gram-Schmidt QR. Columns linearly dependent on earlier ones are skipped (coefficient 0),
 * so the fit is defined even when there are more parameters than rows.
 */
export function leastSquares(X: readonly (readonly number[])[], y: readonly number[]): LeastSquaresFit {
  const n = y.length;
  const p = (X[0]?.length ?? 0) + 1;
  const cols: number[][] = [
    new Array(n).fill(1),
    ...Array.from({ length: p - 1 }, (_, c) => X.map((r) => r[c])),
  ];
  const Q: number[][] = [];
  const R: number[][] = []; // R[k] = row k of R over the kept columns
  const kept: number[] = [];
  const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
  for (let c = 0; c < p; c++) {
    const v = [...cols[c]];
    const norm0 = Math.sqrt(dot(v, v));
    const r: number[] = [];
    for (const q of Q) {
      const d = dot(q, v);
      r.push(d);
      for (let i = 0; i < n; i++) v[i] -= d * q[i];
    }
    const norm = Math.sqrt(dot(v, v));
    if (norm0 === 0 || norm <= 1e-10 * norm0 || Q.length >= n) continue;
    R.forEach((row, k) => row.push(r[k]));
    R.push([...new Array(Q.length).fill(0), norm]);
    Q.push(v.map((x) => x / norm));
    kept.push(c);
  }
  const qty = Q.map((q) => dot(q, y));
  const fitted = y.map((_, i) => Q.reduce((s, q, k) => s + q[i] * qty[k], 0));
  const b = new Array<number>(kept.length).fill(0);
  for (let k = kept.length - 1; k >= 0; k--) {
    let s = qty[k];
    for (let m = k + 1; m < kept.length; m++) s -= R[k][m] * b[m];
    b[k] = s / R[k][k];
  }
  const coefficients = new Array<number>(p).fill(0);
  kept.forEach((c, k) => coefficients[c] = b[k]);
  return { coefficients, fitted, rank: kept.length };
}

/** How one dataset subset reproduces the full-suite xScore. */
export interface SubsetResult {
  datasets: string[];
  /** Plain xScore over the subset's columns, per model (same order as the full result's scores). */
  xscore: number[];
  /** Kendall τ-b between subset and full xScore. */
  tau: number;
  /** Spearman ρ between subset and full xScore. */
  rho: number;
  /** Max |full xScore − least-squares prediction from the subset's Â|. */
  fitMaxAbsError: number;
  /** Mean |full xScore − prediction|. */
  fitMeanAbsError: number;
  /** True when the predictor has as many free parameters as models: a zero error means nothing. */
  exactFit: boolean;
  /** 1 = best by (τ, then ρ); equal (τ, ρ) share a rank. */
  rank: number;
}

const TIE = 1e-9;

/**
 * Scores every k-dataset subset of `full`'s datasets against `full` (see the module doc). Sorted best
 * first: τ descending, then ρ descending, then fit error ascending. Needs 2 ≤ k ≤ number of datasets.
 */
export function analyzeSubsets(full: XScoreResult, k: number): SubsetResult[] {
  const N = full.datasets.length;
  if (!Number.isInteger(k) || k < 2 || k > N) {
    throw new RangeError(`subset size must be an integer in 2..${N}, got ${k}`);
  }
  const target = full.scores.map((s) => s.xscore);
  const results = combinations(full.datasets.map((_, j) => j), k).map((idx): SubsetResult => {
    const sub = full.scores.map((s) => idx.map((j) => s.normalized[j]));
    const xscore = sub.map((row) => scoreRow(row, full.lambda).xscore);
    const fit = leastSquares(sub, target);
    const err = target.map((t, i) => Math.abs(t - fit.fitted[i]));
    return {
      datasets: idx.map((j) => full.datasets[j]),
      xscore,
      tau: kendallTauB(xscore, target),
      rho: spearmanRho(xscore, target),
      fitMaxAbsError: Math.max(...err),
      fitMeanAbsError: mean(err),
      exactFit: fit.rank >= target.length,
      rank: 0,
    };
  });
  const key = (v: number) => (Number.isNaN(v) ? -Infinity : v);
  results.sort((a, b) =>
    key(b.tau) - key(a.tau) || key(b.rho) - key(a.rho) || a.fitMaxAbsError - b.fitMaxAbsError
  );
  results.forEach((r, i) => {
    const prev = results[i - 1];
    r.rank = prev && Math.abs(key(prev.tau) - key(r.tau)) < TIE && Math.abs(key(prev.rho) - key(r.rho)) < TIE
      ? prev.rank
      : i + 1;
  });
  return results;
}
