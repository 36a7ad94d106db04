/**
 * The contract between the data pipeline (cache → loader → GPU augmentation) and the trainer.
 *
 * @module
 */
import type { Tensor } from "../runtime/tf.ts";

/** One training batch, already augmented and normalised on the GPU. */
export interface TrainBatch {
  /** [B, S, S, 3] float32, normalised, CutMix applied when enabled. */
  x: Tensor;
  /** [B] int32 labels of the base images (y_a). */
  yA: Tensor;
  /** [B] int32 labels of the pasted images (y_b = y[perm]); equals yA without CutMix. */
  yB: Tensor;
  /** CutMix weight of yA (raw λ, not area-corrected); 1 without CutMix. */
  lambda: number;
  /** Number of real (non-padding) samples in the batch; < B only for a padded last batch. */
  valid: number;
}

/** One evaluation batch (eval transforms, normalised). */
export interface EvalBatch {
  /** [B, S, S, 3] float32. */
  x: Tensor;
  /** Labels of the batch, on the CPU (only the first `valid` entries are real). */
  labels: Int32Array;
  /** Number of real samples; the last batch is padded to the fixed batch shape. */
  valid: number;
}
