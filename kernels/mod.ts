/**
 * Public entry of the kernels package: depthwise convolution and Squeeze-and-Excitation, each
 * with a `"stock"` implementation (plain tfjs ops) and a `"custom"` one (our WGSL kernels).
 * The model zoo calls only these two functions (models/core.ts `ops`).
 *
 * NOTE (kernel engineer): this file was created as the API contract with the stock paths only;
 * extend it with the custom path, keeping these signatures.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";

/** Which implementation runs the hot ops: our WGSL kernels or the stock tfjs ops. */
export type KernelChoice = "custom" | "stock";

let defaultChoice: KernelChoice = "custom";

/** Sets the implementation used when a caller does not choose. */
export function setDefaultKernels(choice: KernelChoice): void {
  defaultChoice = choice;
}

/** The implementation used when a caller does not choose. */
export function defaultKernels(): KernelChoice {
  return defaultChoice;
}

/**
 * Depthwise convolution, NHWC, channel multiplier 1, symmetric zero padding `pad` = [ph, pw].
 * x [B,H,W,C], filter [kh,kw,C,1] -> [B, floor((H+2ph-kh)/sh)+1, floor((W+2pw-kw)/sw)+1, C].
 */
export function depthwiseConv2d(
  x: Tensor,
  filter: Tensor,
  o: { strides: [number, number]; pad: [number, number] },
  _kernels: KernelChoice = defaultChoice,
): Tensor {
  const [ph, pw] = o.pad;
  const padded = ph || pw ? tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) : x;
  return tf.depthwiseConv2d(padded as tf.Tensor4D, filter as tf.Tensor4D, o.strides, "valid");
}

/** Squeeze-and-Excitation weights: w1 [C,Cr], b1 [Cr], w2 [Cr,C], b2 [C]. */
export interface SEWeights {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/** x · gate(fc2(act(fc1(mean_hw(x))))) for x [B,H,W,C]. */
export function squeezeExcite(
  x: Tensor,
  w: SEWeights,
  o: { act: "relu" | "silu"; gate: "sigmoid" | "hardsigmoid" },
  _kernels: KernelChoice = defaultChoice,
): Tensor {
  const [b, , , c] = x.shape;
  const pooled = tf.mean(x, [1, 2]);
  const h = tf.add(tf.matMul(pooled, w.w1), w.b1);
  const a = o.act === "relu" ? tf.relu(h) : tf.mul(h, tf.sigmoid(h));
  const g = tf.add(tf.matMul(a, w.w2), w.b2);
  const gate = o.gate === "sigmoid" ? tf.sigmoid(g) : tf.div(tf.relu6(tf.add(g, 3)), 6);
  return tf.mul(x, tf.reshape(gate, [b, 1, 1, c]));
}
