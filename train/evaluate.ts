/**
 * Full test-set evaluation of a model in eval mode (BatchNorm running statistics): top-1 and top-5
 * accuracy, the mean cross-entropy loss (no label smoothing) and the confusion matrix. The logits
 * come back to the CPU per batch and everything is computed there in float64, with the top-1
 * prediction taken as the first maximal logit (tf.argMax's tie rule), so top-1 agrees with the
 * training loop's per-epoch evaluation image for image.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import { assertGpuHealthy } from "../runtime/webgpu.ts";
import type { Ctx, Model } from "../models/core.ts";
import type { EvalBatch } from "../data/types.ts";

/** What {@link evaluateModel} measures. */
export interface EvalResult {
  images: number;
  /** Top-1 accuracy (%). */
  top1: number;
  /** Top-5 accuracy (%), null for 5 classes or fewer (it would be 100 by definition). */
  top5: number | null;
  /** Mean cross-entropy (natural log) of the true class. */
  loss: number;
  /** `confusion[t][p]`: images of true class t predicted as p. */
  confusion: number[][];
  correct: number;
}

/** Per-row statistics of a [rows, classes] logit block (exported for tests). */
export function scoreLogits(
  logits: Float32Array,
  classes: number,
  labels: ArrayLike<number>,
  rows: number,
): { predictions: number[]; top5: boolean[]; losses: number[] } {
  const predictions: number[] = [], top5: boolean[] = [], losses: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    const label = labels[r];
    const target = row[label];
    let above = 0;
    for (let c = 0; c < classes; c++) if (row[c] > target) above++;
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(row[c] - row[best]);
    predictions.push(best);
    top5.push(above < 5);
    losses.push(Math.log(sum) + row[best] - target);
  }
  return { predictions, top5, losses };
}

/**
 * Evaluates `model` on every batch (only each batch's first `valid` rows count). Sets
 * `ctx.training` false for the duration and restores it.
 */
export async function evaluateModel(
  model: Model,
  batches: AsyncIterable<EvalBatch> | Iterable<EvalBatch>,
  numClasses: number,
  ctx: Ctx,
): Promise<EvalResult> {
  const wasTraining = ctx.training;
  ctx.training = false;
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let images = 0, correct = 0, top5 = 0, loss = 0;
  try {
    for await (const batch of batches) {
      const logits: Tensor = tf.tidy(() => model.apply(batch.x, ctx));
      const values = (await logits.data()) as Float32Array;
      assertGpuHealthy();
      tf.dispose([logits, batch.x]);
      const classes = values.length / batch.x.shape[0];
      if (classes !== numClasses) {
        throw new Error(`model has ${classes} outputs, the dataset ${numClasses} classes`);
      }
      const s = scoreLogits(values, classes, batch.labels, batch.valid);
      for (let i = 0; i < batch.valid; i++) {
        confusion[batch.labels[i]][s.predictions[i]]++;
        if (s.predictions[i] === batch.labels[i]) correct++;
        if (s.top5[i]) top5++;
        loss += s.losses[i];
      }
      images += batch.valid;
    }
  } finally {
    ctx.training = wasTraining;
  }
  return {
    images,
    top1: (100 * correct) / images,
    top5: numClasses > 5 ? (100 * top5) / images : null,
    loss: loss / images,
    confusion,
    correct,
  };
}
