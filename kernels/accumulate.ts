/**
 * In-place metric accumulation for the training step: `acc[0] += loss · weight`,
 * `acc[1] += correct`, so a step's loss and accuracy add up on the GPU into one persistent
 * buffer that the trainer reads only every `--log-every` steps (one read-back, not one per step).
 * Being in place, the accumulator keeps its buffer, which a recorded step needs.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import { ensurePrivate, rawDispatch, rawPipeline } from "../runtime/gpu.ts";

const WGSL = `
@group(0) @binding(0) var<storage, read_write> acc : array<f32>;
@group(0) @binding(1) var<storage, read> loss : array<f32>;
@group(0) @binding(2) var<storage, read> correct : array<i32>;
struct U { weight : f32, pad0 : f32, pad1 : f32, pad2 : f32 };
@group(0) @binding(3) var<uniform> u : U;

@compute @workgroup_size(1)
fn main() {
  acc[0] = acc[0] + loss[0] * u.weight;
  acc[1] = acc[1] + f32(correct[0]);
}`;

/**
 * Adds `loss · weight` and `correct` (an int32 scalar) to the float32 [2] variable `acc`, in place.
 * On the CPU backend the same through `assign`.
 */
export function accumulateMetrics(acc: tf.Variable, loss: Tensor, correct: Tensor, weight: number): void {
  if (acc.size !== 2 || acc.dtype !== "float32") {
    throw new Error("accumulateMetrics: acc must be float32 [2]");
  }
  ensurePrivate(acc);
  if (tf.getBackend() !== "webgpu") {
    const w = Math.fround(weight);
    tf.tidy(() =>
      acc.assign(
        tf.add(acc, tf.stack([tf.mul(tf.reshape(loss, []), w), tf.cast(tf.reshape(correct, []), "float32")])),
      )
    );
    return;
  }
  const backend = tf.backend() as WebGPUBackend;
  const pipeline = rawPipeline(backend, "xsAccumulateMetrics", () => WGSL);
  const u = new Float32Array([weight, 0, 0, 0]);
  rawDispatch(backend, pipeline, [acc, loss, correct], u.buffer, 1);
}
