/**
 * The learning-rate schedule: the reference code's `get_up_cos_lr`, and the one rule that scales
 * it to short runs.
 *
 * Rule (documented in the README and printed at run start):
 * - **epochs ≥ {@link PER_EPOCH_MIN_EPOCHS}**: the reference function, literally, per epoch
 *   (constant within an epoch): `e < 5` → lr_max·(e+1)/5; otherwise cosine from lr_max to exactly
 *   lr_min at the last epoch. At 100 epochs this is the reference's values table exactly.
 * - **shorter runs**: the same function applied per *step* instead of per epoch, with the
 *   warm-up length scaled by the reference's ratio 5/100 (`max(1, round(0.05·total_steps))`
 *   steps). Warm-up still starts at lr_max/W and cosine still ends exactly at lr_min on the last
 *   step. Applied literally per epoch, a 2-epoch run would never leave warm-up (its LR would
 *   stay ≤ 0.4·lr_max).
 *
 * @module
 */

/** Runs with at least this many epochs use the reference per-epoch schedule unchanged. */
export const PER_EPOCH_MIN_EPOCHS = 20;
/** The reference's warm-up length in epochs. */
export const REFERENCE_WARMUP_EPOCHS = 5;
/** Warm-up as a fraction of the run for short runs (the reference's 5 of 100 epochs). */
export const SHORT_RUN_WARMUP_FRACTION = 0.05;

/**
 * `data_loader.py::get_up_cos_lr(total, i, lr_min, lr_max, warmup)`: linear warm-up
 * lr_max·(i+1)/warmup for `i < warmup`, then `lr_min + (lr_max−lr_min)·½(1+cos(π·(i+1−warmup)/(total−warmup)))`.
 */
export function upCosLr(total: number, i: number, lrMin: number, lrMax: number, warmup: number): number {
  if (i < warmup) return (lrMax * (i + 1)) / warmup;
  const span = total - warmup;
  const progress = span > 0 ? (i + 1 - warmup) / span : 1;
  return lrMin + (lrMax - lrMin) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** What the schedule needs to know about a run. */
export interface ScheduleSpec {
  epochs: number;
  stepsPerEpoch: number;
  lrMax: number;
  lrMin: number;
}

/** Which granularity {@link lrAt} uses for a run, for the run-start banner. */
export function scheduleMode(s: ScheduleSpec): "per-epoch" | "per-step" {
  return s.epochs >= PER_EPOCH_MIN_EPOCHS ? "per-epoch" : "per-step";
}

/** Warm-up length of the per-step rule, in steps. */
export function shortRunWarmupSteps(totalSteps: number): number {
  return Math.max(1, Math.round(SHORT_RUN_WARMUP_FRACTION * totalSteps));
}

/** The LR of step `step` (0-based, within the epoch) of epoch `epoch` (0-based). */
export function lrAt(s: ScheduleSpec, epoch: number, step: number): number {
  if (scheduleMode(s) === "per-epoch") {
    return upCosLr(s.epochs, epoch, s.lrMin, s.lrMax, REFERENCE_WARMUP_EPOCHS);
  }
  const total = s.epochs * s.stepsPerEpoch;
  return upCosLr(total, epoch * s.stepsPerEpoch + step, s.lrMin, s.lrMax, shortRunWarmupSteps(total));
}

/** One line describing the schedule of a run. */
export function describeSchedule(s: ScheduleSpec): string {
  const total = s.epochs * s.stepsPerEpoch;
  return scheduleMode(s) === "per-epoch"
    ? `per-epoch reference schedule: ${REFERENCE_WARMUP_EPOCHS} warm-up epochs from ${s.lrMax / 5} to ` +
      `${s.lrMax}, cosine to ${s.lrMin} at epoch ${s.epochs - 1}`
    : `per-step (run < ${PER_EPOCH_MIN_EPOCHS} epochs): ${shortRunWarmupSteps(total)} warm-up steps ` +
      `(5% of ${total}) to ${s.lrMax}, cosine to ${s.lrMin} at the last step`;
}
