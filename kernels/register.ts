/**
 * Registers the custom kernels with tfjs: WGSL implementations for the "webgpu" backend,
 * stock-op implementations of the same kernels for the "cpu" backend (so code written against
 * the custom kernels runs unchanged on the CPU reference backend), and their gradients
 * (backend independent, so `tf.grads`, `tf.variableGrads` and optimizers work on both).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import {
  channelSumStockKernel,
  channelSumWebGPU,
  dwFilterGradStockKernel,
  dwFilterGradWebGPU,
  dwForwardStockKernel,
  dwForwardWebGPU,
  dwInputGradStockKernel,
  dwInputGradWebGPU,
  XS_CHANNEL_SUM,
  XS_DEPTHWISE,
  XS_DEPTHWISE_BACKPROP_FILTER,
  XS_DEPTHWISE_BACKPROP_INPUT,
} from "./depthwise.ts";
import { matMulKernelStock, matMulKernelWebGPU, XS_MATMUL } from "./matmul.ts";
import { randomMaskCpu, randomMaskWebGPU, XS_RANDOM_MASK } from "./random.ts";
import {
  backwardCpu as bnBackwardCpu,
  backwardWebgpu as bnBackwardWebGPU,
  batchNormTrainGrad,
  BN_TRAIN_GRAD_KERNEL,
  BN_TRAIN_KERNEL,
  forwardCpu as bnForwardCpu,
  forwardWebgpu as bnForwardWebGPU,
} from "./batchnorm.ts";
import {
  crossEntropyCpu,
  crossEntropyGrad,
  crossEntropyGradCpu,
  crossEntropyGradWebGPU,
  crossEntropyWebGPU,
  XS_CUTMIX_CE,
  XS_CUTMIX_CE_GRAD,
} from "./cross_entropy.ts";
import {
  seForwardStockKernel,
  seForwardWebGPU,
  seGradStockKernel,
  seGradWebGPU,
  XS_SQUEEZE_EXCITE,
  XS_SQUEEZE_EXCITE_GRAD,
} from "./se.ts";

let registered = false;

/**
 * Registers all Xs* kernels and gradients once (idempotent; also skips names another copy of this
 * module already registered). Called lazily by the public functions in kernels/mod.ts.
 */
export function registerXsKernels(): void {
  if (registered) return;
  registered = true;
  // tfjs's KernelFunc type is narrower than what kernels may return (Tensors are TensorInfos).
  const reg = (kernelName: string, backendName: string, kernelFunc: unknown) => {
    if (tf.getKernel(kernelName, backendName) === undefined) {
      tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
    }
  };
  reg(XS_DEPTHWISE, "webgpu", dwForwardWebGPU);
  reg(XS_DEPTHWISE_BACKPROP_INPUT, "webgpu", dwInputGradWebGPU);
  reg(XS_DEPTHWISE_BACKPROP_FILTER, "webgpu", dwFilterGradWebGPU);
  reg(XS_CHANNEL_SUM, "webgpu", channelSumWebGPU);
  reg(XS_SQUEEZE_EXCITE, "webgpu", seForwardWebGPU);
  reg(XS_SQUEEZE_EXCITE_GRAD, "webgpu", seGradWebGPU);
  reg(XS_MATMUL, "webgpu", matMulKernelWebGPU);
  reg(XS_RANDOM_MASK, "webgpu", randomMaskWebGPU);
  reg(XS_CUTMIX_CE, "webgpu", crossEntropyWebGPU);
  reg(XS_CUTMIX_CE_GRAD, "webgpu", crossEntropyGradWebGPU);
  reg(BN_TRAIN_KERNEL, "webgpu", bnForwardWebGPU);
  reg(BN_TRAIN_GRAD_KERNEL, "webgpu", bnBackwardWebGPU);

  reg(XS_DEPTHWISE, "cpu", dwForwardStockKernel);
  reg(XS_DEPTHWISE_BACKPROP_INPUT, "cpu", dwInputGradStockKernel);
  reg(XS_DEPTHWISE_BACKPROP_FILTER, "cpu", dwFilterGradStockKernel);
  reg(XS_CHANNEL_SUM, "cpu", channelSumStockKernel);
  reg(XS_SQUEEZE_EXCITE, "cpu", seForwardStockKernel);
  reg(XS_SQUEEZE_EXCITE_GRAD, "cpu", seGradStockKernel);
  reg(XS_MATMUL, "cpu", matMulKernelStock);
  reg(XS_RANDOM_MASK, "cpu", randomMaskCpu);
  reg(XS_CUTMIX_CE, "cpu", crossEntropyCpu);
  reg(XS_CUTMIX_CE_GRAD, "cpu", crossEntropyGradCpu);
  reg(BN_TRAIN_KERNEL, "cpu", bnForwardCpu);
  reg(BN_TRAIN_GRAD_KERNEL, "cpu", bnBackwardCpu);
  // Gradients are backend independent; another copy of this module may have registered them.
  const grad = (
    kernelName: string,
    inputsToSave: string[],
    gradFunc: tf.GradFunc,
    outputsToSave?: boolean[],
  ) => {
    if (tf.getGradient(kernelName) === undefined) {
      tf.registerGradient({ kernelName, inputsToSave, outputsToSave, gradFunc });
    }
  };

  grad(XS_CUTMIX_CE, ["logits", "yA", "yB", "scalars"], crossEntropyGrad);
  // BatchNorm saves its batch statistics (output 1) for the backward kernel.
  grad(BN_TRAIN_KERNEL, ["x", "gamma", "beta"], batchNormTrainGrad, [false, true]);

  grad(XS_DEPTHWISE, ["x", "filter"], (dy, saved, attrs) => {
    const [x, filter] = saved;
    const g = dy as tf.Tensor;
    const conv = { strides: attrs.strides, pad: attrs.pad };
    return {
      x: () =>
        tf.engine().runKernel(XS_DEPTHWISE_BACKPROP_INPUT, { dy: g, filter }, {
          ...conv,
          inShape: x.shape,
        }),
      filter: () =>
        tf.engine().runKernel(XS_DEPTHWISE_BACKPROP_FILTER, { x, dy: g }, {
          ...conv,
          filterShape: filter.shape,
        }),
      bias: () => tf.engine().runKernel(XS_CHANNEL_SUM, { x: g }, {}),
    };
  });
  grad(XS_SQUEEZE_EXCITE, ["x", "w1", "b1", "w2", "b2"], (dy, saved, attrs) => {
    const [x, w1, b1, w2, b2] = saved;
    // All five gradients come from one backward pass, so it runs here, once; the tape's
    // enclosing tidy disposes the ones nobody asked for.
    const [dx, dw1, db1, dw2, db2] = tf.engine().runKernel(
      XS_SQUEEZE_EXCITE_GRAD,
      { dy: dy as tf.Tensor, x, w1, b1, w2, b2 },
      attrs,
    ) as tf.Tensor[];
    return { x: () => dx, w1: () => dw1, b1: () => db1, w2: () => dw2, b2: () => db2 };
  });
  grad(XS_MATMUL, ["a", "b"], (dy, saved, attrs) => {
    const [a, b] = saved;
    const dc = dy as tf.Tensor;
    const mm = (x: tf.Tensor, y: tf.Tensor, transposeA: boolean, transposeB: boolean) =>
      tf.engine().runKernel(XS_MATMUL, { a: x, b: y }, { transposeA, transposeB }) as tf.Tensor;
    const tA = Boolean(attrs.transposeA), tB = Boolean(attrs.transposeB);
    // C = op(A)·op(B): the four cases of tfjs's BatchMatMul gradient, without materialised transposes.
    if (!tA && !tB) return { a: () => mm(dc, b, false, true), b: () => mm(a, dc, true, false) };
    if (!tA && tB) return { a: () => mm(dc, b, false, false), b: () => mm(dc, a, true, false) };
    if (tA && !tB) return { a: () => mm(b, dc, false, true), b: () => mm(a, dc, false, false) };
    return { a: () => mm(b, dc, true, true), b: () => mm(dc, a, true, true) };
  });
}
