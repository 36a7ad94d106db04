/**
 * xscore: train lightweight vision models from scratch under one fixed protocol on many datasets
 * (Deno + tfjs on WebGPU, with custom WGSL kernels) and score their cross-dataset robustness
 * (xScore, Zhang et al., "Beyond ImageNet").
 *
 * Public API:
 * - runtime: {@link initRuntime}, {@link adapterFacts}, {@link assertGpuHealthy}, {@link Rng}
 * - models: {@link buildModel}, {@link countModelOps}, {@link registerModel}, the `ops` layer and layers
 *   to write your own model in one file; {@link largestActivation} and {@link kernelShapes} read a
 *   model's shapes without running it
 *
 * Importing this module registers the 11 models of the zoo (models/zoo.ts), so {@link buildModel}
 * and {@link MODELS} know them with no other import.
 *
 * @module
 */
export { tf } from "./runtime/tf.ts";
export {
  type AdapterFacts,
  adapterFacts,
  assertBindable,
  assertGpuHealthy,
  GpuError,
  initRuntime,
  webgpuBackend,
} from "./runtime/webgpu.ts";
export { runMain, UserError } from "./runtime/errors.ts";
export { Rng } from "./runtime/rng.ts";
export { exists, withFileLock, writeFileAtomic } from "./runtime/fs.ts";
export { type CsvTable, formatCsv, parseCsv } from "./runtime/csv.ts";

export {
  Act,
  type Activation,
  BatchNorm2d,
  Conv2d,
  type Ctx,
  type Init,
  LayerNorm,
  Linear,
  type Model,
  type ModelOptions,
  type Module,
  type OpCounts,
  ops,
  Params,
  Sequential,
  torchDefaultInit,
} from "./models/core.ts";
export {
  buildModel,
  countModelOps,
  MODELS,
  type ModelSpec,
  modelSpec,
  registerModel,
} from "./models/registry.ts";
import "./models/zoo.ts";
export { kernelShapes, largestActivation, zooKernelShapes } from "./models/inspect.ts";
export { depthwiseConv2d, type KernelChoice, matMul, squeezeExcite } from "./kernels/mod.ts";
export { EvalForward, type StepMode, TrainStep } from "./train/step.ts";
