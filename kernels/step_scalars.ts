/**
 * The step-scalar block: one small float32 tensor holding every value that changes from one
 * training step to the next (Adam's step size and bias correction, the CutMix weight, the seed and
 * counter of the dropout / stochastic-depth RNG). It is written once per step, before the step's
 * dispatches; kernels read it from a storage binding, so their own uniforms never change and a
 * recorded step replays with one buffer write (docs/recorded-step.md).
 *
 * The RNG fields hold uint32 bit patterns in float32 slots (read with `bitcast<u32>` in WGSL and
 * through a Uint32Array view on the CPU).
 *
 * @module
 */

/** Element index of each field in the block. */
export const STEP_SCALARS = {
  /** lr / (1 − β1^t). */
  adamStepSize: 0,
  /** √(1 − β2^t). */
  adamBc2Sqrt: 1,
  /** CutMix weight of y_a (1 without CutMix). */
  lambda: 2,
  /** RNG key (uint32 bits). */
  seed: 3,
  /** RNG counter (uint32 bits): the step number within the epoch. */
  counter: 4,
  /** Block length (elements). */
  length: 8,
} as const;
