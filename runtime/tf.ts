/**
 * The single tfjs entry point of the project: tfjs-core with all gradients and chained ops, the
 * WebGPU backend (as `tf.webgpu`) and the CPU backend, from the generated bundle
 * `vendor/tf.mjs` (built by `deno task vendor`; see vendor/entry.js for why a bundle).
 *
 * Import tfjs only from here: `import { tf } from "../runtime/tf.ts";`
 *
 * @module
 */
import * as tf from "../vendor/tf.mjs";

export { tf };
/** A tfjs tensor of any rank. */
export type Tensor = tf.Tensor;
/** The WebGPU backend class of tfjs-backend-webgpu. */
export type WebGPUBackend = tf.webgpu.WebGPUBackend;
