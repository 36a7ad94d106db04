/**
 * Public entry of the kernels package: depthwise convolution, Squeeze-and-Excitation and the 2-D
 * matmul behind 1×1 convolutions and Linear layers, each with a `"stock"` implementation (plain
 * tfjs ops with tfjs's own gradients) and a `"custom"` one (the registered Xs* kernels: WGSL on
 * webgpu, stock-op equivalents on cpu). The model zoo calls only these functions (models/core.ts
 * `ops`). Both paths are differentiable under `tf.grads`, `tf.variableGrads` and optimizers.
 *
 * @module
 */
import { type Tensor, tf } from "../runtime/tf.ts";
import {
  depthwiseConv2dStock,
  type DepthwiseConvOptions,
  dwGeometry,
  XS_DEPTHWISE,
  XS_DEPTHWISE_BACKPROP_FILTER,
  XS_DEPTHWISE_BACKPROP_INPUT,
} from "./depthwise.ts";
import { type SeOptions, seShape, squeezeExciteStock, XS_SQUEEZE_EXCITE } from "./se.ts";
import { registerXsKernels } from "./register.ts";
import { matMulShape, XS_MATMUL } from "./matmul.ts";
import { randomMask as randomMaskImpl } from "./random.ts";
import { XS_CUTMIX_CE } from "./cross_entropy.ts";
import {
  batchNormTrain as batchNormTrainImpl,
  type BatchNormTrainParams,
  type BnActivation,
} from "./batchnorm.ts";

export type { DepthwiseConvOptions } from "./depthwise.ts";
export type { SeActivation, SeGate, SeOptions } from "./se.ts";
export type { BatchNormTrainParams, BnActivation } from "./batchnorm.ts";
export { depthwiseConv2dStock } from "./depthwise.ts";
export { squeezeExciteStock } from "./se.ts";
export { kernelTuning, setKernelTuning } from "./common.ts";
export type { KernelTuning } from "./common.ts";
export { registerXsKernels } from "./register.ts";
export { STEP_SCALARS } from "./step_scalars.ts";
export { adamStepScalars, fusedAdamStep } from "./adam.ts";

/** Which implementation runs the hot ops: our WGSL kernels or the stock tfjs ops. */
export type KernelChoice = "custom" | "stock";

/** Squeeze-and-Excitation weights: w1 [C,Cr], b1 [Cr], w2 [Cr,C], b2 [C]. */
export interface SEWeights {
  w1: Tensor;
  b1: Tensor;
  w2: Tensor;
  b2: Tensor;
}

/**
 * Depthwise 2D convolution, channel multiplier 1: x [B,H,W,C], filter [kh,kw,C,1] (tfjs layout),
 * `strides` [sh,sw], PyTorch-style symmetric zero padding `pad` [ph,pw]; output
 * [B, floor((H+2ph-kh)/sh)+1, floor((W+2pw-kw)/sw)+1, C]. An optional `bias` [C] is fused.
 */
export function depthwiseConv2d(
  x: Tensor,
  filter: Tensor,
  options: DepthwiseConvOptions & { bias?: Tensor },
  kernels: KernelChoice = "custom",
): Tensor {
  if (kernels === "stock") {
    return depthwiseConv2dStock(
      x as tf.Tensor4D,
      filter as tf.Tensor4D,
      options,
      options.bias as tf.Tensor1D,
    );
  }
  dwGeometry(x.shape, filter.shape, options.strides, options.pad);
  const inputs: tf.NamedTensorMap = options.bias ? { x, filter, bias: options.bias } : { x, filter };
  return runDepthwise(XS_DEPTHWISE, inputs, options, {});
}

/**
 * Squeeze-and-Excitation: y = x * gate(act(mean_hw(x) @ w1 + b1) @ w2 + b2), broadcast over H,W.
 * x [B,H,W,C]; w1 [C,Cr], b1 [Cr], w2 [Cr,C], b2 [C]; act "relu" | "silu"; gate "sigmoid" |
 * "hardsigmoid" (relu6(z+3)/6).
 */
export function squeezeExcite(
  x: Tensor,
  weights: SEWeights,
  options: SeOptions,
  kernels: KernelChoice = "custom",
): Tensor {
  const { w1, b1, w2, b2 } = weights;
  if (kernels === "stock") {
    return squeezeExciteStock(x as tf.Tensor4D, {
      w1: w1 as tf.Tensor2D,
      b1: b1 as tf.Tensor1D,
      w2: w2 as tf.Tensor2D,
      b2: b2 as tf.Tensor1D,
    }, options);
  }
  seShape(x.shape, w1.shape, options);
  registerXsKernels();
  return tf.engine().runKernel(XS_SQUEEZE_EXCITE, { x, w1, b1, w2, b2 }, {
    act: options.act,
    gate: options.gate,
  }) as Tensor;
}

/**
 * 2-D matrix product `op(a) · op(b)` (op = identity or transpose): the 1×1 convolutions and
 * Linear layers of the zoo. `"custom"` runs the register-tiled kernel of kernels/matmul.ts (its
 * gradient is the same kernel with transposed operands), `"stock"` tfjs's BatchMatMul.
 */
export function matMul(
  a: Tensor,
  b: Tensor,
  transposeA = false,
  transposeB = false,
  kernels: KernelChoice = "custom",
): Tensor {
  if (kernels === "stock") return tf.matMul(a, b, transposeA, transposeB);
  matMulShape(a.shape, b.shape, transposeA, transposeB);
  registerXsKernels();
  return tf.engine().runKernel(XS_MATMUL, { a, b }, { transposeA, transposeB }) as Tensor;
}

/** Input gradient of {@link depthwiseConv2d} through the custom kernel (for tests and benchmarks). */
export function depthwiseConv2dBackpropInput(
  dy: Tensor,
  filter: Tensor,
  inShape: [number, number, number, number],
  options: DepthwiseConvOptions,
): Tensor {
  return runDepthwise(XS_DEPTHWISE_BACKPROP_INPUT, { dy, filter }, options, { inShape: [...inShape] });
}

/** Filter gradient of {@link depthwiseConv2d} through the custom two-stage kernel. */
export function depthwiseConv2dBackpropFilter(
  x: Tensor,
  dy: Tensor,
  filterShape: [number, number, number, number],
  options: DepthwiseConvOptions,
): Tensor {
  return runDepthwise(XS_DEPTHWISE_BACKPROP_FILTER, { x, dy }, options, { filterShape: [...filterShape] });
}

/** Runs a registered depthwise kernel with the convolution's strides and padding plus `attrs`. */
function runDepthwise(
  kernel: string,
  inputs: tf.NamedTensorMap,
  options: DepthwiseConvOptions,
  attrs: Record<string, number[]>,
): Tensor {
  registerXsKernels();
  return tf.engine().runKernel(kernel, inputs, {
    strides: [...options.strides],
    pad: [...options.pad],
    ...attrs,
  }) as Tensor;
}

/**
 * Dropout / stochastic-depth keep mask from the step scalars' counter-based RNG (kernels/random.ts):
 * `1/keep` where kept, 0 where dropped.
 */
export function randomMask(scalars: Tensor, shape: number[], keep: number, site: number): Tensor {
  registerXsKernels();
  return randomMaskImpl(scalars, shape, keep, site);
}

/**
 * BatchNorm in training mode (batch statistics, running statistics updated in place) fused with
 * `act`, through the kernels of kernels/batchnorm.ts.
 */
export function batchNormTrain(x: Tensor, bn: BatchNormTrainParams, act: BnActivation = "identity"): Tensor {
  registerXsKernels();
  return batchNormTrainImpl(x, bn, act);
}

/**
 * The CutMix-mixed, label-smoothed cross-entropy as one kernel (kernels/cross_entropy.ts): logits
 * [B, C], labels y_a / y_b [B] int32, λ read from the step-scalar block `scalars`. Returns the
 * batch-mean loss as a scalar; differentiable w.r.t. the logits.
 */
export function cutmixCrossEntropy(
  logits: Tensor,
  yA: Tensor,
  yB: Tensor,
  scalars: Tensor,
  smoothing: number,
): Tensor {
  registerXsKernels();
  const inputs = { logits, yA: tf.cast(yA, "int32"), yB: tf.cast(yB, "int32"), scalars };
  const loss = tf.engine().runKernel(XS_CUTMIX_CE, inputs, { smoothing }) as Tensor;
  return tf.reshape(loss, []);
}
