/**
 * Adam with PyTorch's semantics (`torch.optim.Adam`, amsgrad off, no weight decay, one param group):
 *
 *     m ← β1·m + (1−β1)·g            (PyTorch: m.lerp_(g, 1−β1))
 *     v ← β2·v + (1−β2)·g²
 *     p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
 *
 * with β = (0.9, 0.999), eps = 1e-8 and the step count t starting at 1.
 *
 * Cost on WebGPU is per dispatched op (~50 µs each on llvmpipe), not per element, so the moments
 * live in two flat vectors covering every trainable variable: one concat of the gradients, ~10
 * elementwise ops over the flat vector, then a slice + subtract per variable (≈2 ops per variable
 * instead of ≈13). With `kernels: "custom"` {@link applyAdam} runs the fused WGSL kernel
 * (kernels/adam.ts) over the same flat state instead.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import { fusedAdamStep, type KernelChoice } from "../kernels/mod.ts";

/** PyTorch's Adam defaults, used by the reference code. */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Optimizer state: flat first/second moments over all trainable variables, in order, and the step count. */
export interface AdamState {
  /** Number of steps taken (PyTorch's `state['step']`); 0 before the first step. */
  step: number;
  /** First moment, flat [N] (N = total trainable scalars). */
  m: tf.Variable;
  /** Second moment, flat [N]. */
  v: tf.Variable;
  /** Element count of each variable, in the order the variables are passed to {@link applyAdam}. */
  sizes: number[];
}

/** Fresh zero state for `vars` (PyTorch initialises the moments lazily to zeros; same thing). */
export function createAdamState(vars: readonly tf.Variable[]): AdamState {
  const sizes = vars.map((v) => v.size);
  const n = sizes.reduce((a, b) => a + b, 0);
  return {
    step: 0,
    m: tf.variable(tf.zeros([n]), false),
    v: tf.variable(tf.zeros([n]), false),
    sizes,
  };
}

/** Frees the state's tensors. */
export function disposeAdamState(state: AdamState): void {
  state.m.dispose();
  state.v.dispose();
}

/** How {@link applyAdam} runs: the implementation, and the step-scalar block the fused kernel reads. */
export interface AdamRun {
  /** "custom": the fused kernel (kernels/adam.ts); "stock" (default): the flat stock-op composition. */
  kernels?: KernelChoice;
  /** kernels/step_scalars.ts block already holding this step's Adam scalars (fused kernel only). */
  scalars?: Tensor;
}

/**
 * One Adam step at learning rate `lr`: updates `vars` in place from `grads` (same order; a missing
 * gradient counts as zero, which for a parameter that never receives one is PyTorch's "skip").
 */
export function applyAdam(
  vars: readonly tf.Variable[],
  grads: readonly (Tensor | undefined)[],
  state: AdamState,
  lr: number,
  run: AdamRun = {},
): void {
  const { beta1, beta2, eps } = ADAM_DEFAULTS;
  if (vars.length !== state.sizes.length) {
    throw new Error(`applyAdam: ${vars.length} variables but the state covers ${state.sizes.length}`);
  }
  state.step += 1;
  if (run.kernels === "custom") {
    return fusedAdamStep(vars, grads, state.m, state.v, state.step, lr, {}, run.scalars);
  }
  const bc1 = 1 - beta1 ** state.step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** state.step);
  tf.tidy(() => {
    const g = tf.concat(grads.map((gr, i) => gr ? tf.reshape(gr, [-1]) : tf.zeros([state.sizes[i]])));
    const m = tf.add(state.m, tf.mul(tf.sub(g, state.m), 1 - beta1));
    const v = tf.add(tf.mul(state.v, beta2), tf.mul(tf.square(g), 1 - beta2));
    state.m.assign(m);
    state.v.assign(v);
    const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), eps);
    const update = tf.mul(tf.div(m, denom), lr / bc1);
    let offset = 0;
    vars.forEach((p, i) => {
      const size = state.sizes[i];
      p.assign(tf.sub(p, tf.reshape(tf.slice(update, offset, size), p.shape)));
      offset += size;
    });
  });
}
