/**
 * In-place metric accumulation for the training step, one dispatch: `acc[0] += loss · weight` and
 * `acc[1] += #{rows whose first maximal logit is at y_a}` (tf.argMax's tie rule), so a step's loss
 * and accuracy add up on the GPU into one persistent buffer that the trainer reads only every
 * `--log-every` steps. Being in place, the accumulator keeps its buffer, which a recorded step needs.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import { ensurePrivate, rawDispatch, rawPipeline } from "../runtime/gpu.ts";

const WG = 64;

const WGSL = `
@group(0) @binding(0) var<storage, read_write> acc : array<f32>;
@group(0) @binding(1) var<storage, read> loss : array<f32>;
@group(0) @binding(2) var<storage, read> logits : array<f32>;
@group(0) @binding(3) var<storage, read> labels : array<i32>;
struct U { weight : f32, rows : u32, classes : u32, pad : u32 };
@group(0) @binding(4) var<uniform> u : U;
var<workgroup> hits : array<u32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t : u32) {
  var n = 0u;
  for (var r = t; r < u.rows; r += ${WG}u) {
    let base = r * u.classes;
    var best = 0u;
    for (var c = 1u; c < u.classes; c++) {
      if (logits[base + c] > logits[base + best]) { best = c; }
    }
    if (i32(best) == labels[r]) { n++; }
  }
  hits[t] = n;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k = k / 2u) {
    if (t < k) { hits[t] = hits[t] + hits[t + k]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    acc[0] = acc[0] + loss[0] * u.weight;
    acc[1] = acc[1] + f32(hits[0]);
  }
}`;

/**
 * Adds `loss · weight` and the number of rows of `logits` [B, C] whose argmax equals `labels` [B]
 * (int32) to the float32 [2] variable `acc`, in place. On the CPU backend the same through `assign`.
 */
export function accumulateMetrics(
  acc: tf.Variable,
  loss: Tensor,
  logits: Tensor,
  labels: Tensor,
  weight: number,
): void {
  if (acc.size !== 2 || acc.dtype !== "float32") {
    throw new Error("accumulateMetrics: acc must be float32 [2]");
  }
  const [rows, classes] = logits.shape;
  ensurePrivate(acc);
  if (tf.getBackend() !== "webgpu") {
    tf.tidy(() => {
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, "int32")), "float32"));
      acc.assign(tf.add(acc, tf.stack([tf.mul(tf.reshape(loss, []), Math.fround(weight)), hits])));
    });
    return;
  }
  const backend = tf.backend() as WebGPUBackend;
  const pipeline = rawPipeline(backend, "xsAccumulateMetrics", () => WGSL);
  const u = new ArrayBuffer(16);
  new Float32Array(u, 0, 1)[0] = weight;
  new Uint32Array(u, 4, 2).set([rows, classes]);
  tf.tidy(() => rawDispatch(backend, pipeline, [acc, loss, logits, tf.cast(labels, "int32")], u, 1));
}
