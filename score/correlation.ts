/**
 * Imagenette-160 accuracy against xScore (paper §4.2, Figure 1): how well the one-dataset
 * benchmark predicts cross-dataset robustness.
 *
 * @module
 */
import { UserError } from "../runtime/errors.ts";
import type { Cell } from "./ledger.ts";
import { leastSquares, pearson, spearmanRho } from "./subsets.ts";
import type { XScoreResult } from "./xscore.ts";

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

/**
 * Pearson and Spearman correlation and the least-squares line between each scored model's
 * Imagenette-160 accuracy (from `cells`, read from `files`) and its xScore; a {@link UserError}
 * when a model lacks an Imagenette result or fewer than 3 models are scored.
 */
export function imagenetteCorrelation(
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
