/**
 * BatchNorm training (PyTorch `BatchNorm2d`/`1d` in train mode) as custom tfjs kernels.
 *
 * The stock composition (`tf.moments` + `tf.batchNorm` + running-stat arithmetic) costs ~14
 * dispatches forward and ~25 backward per layer, and its reductions over N·H·W transpose the
 * whole activation first. Here x is viewed as [R, C] (R = N·H·W, channels last) and:
 *
 * forward  (3 dispatches): split column statistics (chunks of rows → per-chunk mean and M2, shifted
 *          single pass) → combine chunks (Chan) into mean/invstd AND update the running stats in
 *          place (momentum, unbiased variance) → normalise (+ optional ReLU/ReLU6).
 * backward (3 dispatches): split column sums of dy and dy·x̂ → combine into dγ, dβ → dx.
 *
 * Kernels: `XsBatchNormTrain` (inputs x, gamma, beta, runningMean, runningVar; outputs y and the
 * saved [2, C] stats mean/invstd) and `XsBatchNormTrainGrad`, both registered for webgpu (WGSL) and
 * cpu (plain loops, double accumulation). The running stats are written in place: callers pass
 * variables that {@link batchNormTrain} first gives private buffers.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import {
  channelComponents,
  channelMain,
  flatDispatch,
  FlatProgram,
  floatType,
  kernelTuning,
  run,
} from "./common.ts";
import { ensurePrivate, ints, type ProgramUniforms, rawDispatch, rawPipeline } from "../runtime/gpu.ts";

/** Activation fused into the normalisation. */
export type BnActivation = "identity" | "relu" | "relu6" | "silu";

/** Registered kernel names. */
export const BN_TRAIN_KERNEL = "XsBatchNormTrain";
/** Registered kernel name of the backward pass. */
export const BN_TRAIN_GRAD_KERNEL = "XsBatchNormTrainGrad";

/** Attributes of {@link BN_TRAIN_KERNEL}. */
export interface BnAttrs {
  eps: number;
  momentum: number;
  act: BnActivation;
  [key: string]: unknown;
}

const WG = 64;

/** Row chunks of a split reduction over `rows` rows with `lanes` threads per chunk. */
function chunking(rows: number, lanes: number, target: number): { chunks: number; rowsPerChunk: number } {
  const wanted = Math.max(1, Math.ceil(target / lanes));
  const c0 = Math.max(1, Math.min(wanted, Math.floor(rows / 8), rows));
  const rowsPerChunk = Math.ceil(rows / c0);
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

// ---------------------------------------------------------------------------------------------
// WGSL programs (tfjs program interface; flat dispatch, inputs indexed directly)
// ---------------------------------------------------------------------------------------------

function actSnippet(act: BnActivation, T: string): string {
  if (act === "relu") return `z = max(z, ${T}(0.0));`;
  if (act === "relu6") return `z = clamp(z, ${T}(0.0), ${T}(6.0));`;
  // x·sigmoid(x), sigmoid written as tfjs writes it.
  if (act === "silu") return `z = z * (${T}(1.0) / (${T}(1.0) + exp(-z)));`;
  return "";
}

/**
 * `var d` = `dyValue` times the activation's derivative at the pre-activation `z` (tfjs semantics:
 * relu z>0, relu6 0<z≤6, silu σ(z)·(1 + z·(1−σ(z)))), in every backward program alike.
 */
function maskedGrad(act: BnActivation, T: string, dyValue: string, z: string): string {
  const head = `var d = ${dyValue};
          let z = ${z};
          _ = z;`;
  if (act === "relu") return `${head}\n          d = select(${T}(0.0), d, z > ${T}(0.0));`;
  if (act === "relu6") {
    return `${head}\n          d = select(${T}(0.0), d, (z > ${T}(0.0)) & (z <= ${T}(6.0)));`;
  }
  if (act === "silu") {
    return `${head}
          let sg = ${T}(1.0) / (${T}(1.0) + exp(-z));
          d = d * (sg * (${T}(1.0) + z * (${T}(1.0) - sg)));`;
  }
  return head;
}

/**
 * The shape every BN program shares: inputs indexed directly, channels as vec4 when C allows,
 * one thread per (row or chunk, channel vector), flat dispatch.
 */
abstract class BnProgram extends FlatProgram {
  variableComponents: number[];
  outputComponent: number;
  /** Channel vectors (C / components). */
  readonly cv: number;
  /** WGSL type of one channel vector. */
  readonly T: string;
  readonly threads: number;

  constructor(
    readonly variableNames: string[],
    readonly uniforms: string,
    c: number,
    outputShape: number[],
    rowsOrChunks: number,
    key: string,
  ) {
    super();
    const comp = channelComponents(c);
    this.variableComponents = variableNames.map(() => comp);
    this.outputComponent = comp;
    this.outputShape = outputShape;
    this.cv = c / comp;
    this.T = floatType(comp);
    this.threads = rowsOrChunks * this.cv;
    Object.assign(this, flatDispatch(outputShape, this.threads, WG));
    this.shaderKey = `${key}_${comp}`;
  }
}

/**
 * Stage 1 of a split reduction: one thread per (chunk of rows, channel vector) writes two partial
 * results to [chunks, 2, C]; subclasses give the body between the chunk's bounds and the writes.
 */
abstract class ChunkSumProgram extends BnProgram {
  constructor(
    names: string[],
    readonly rows: number,
    c: number,
    readonly chunks: number,
    readonly rpc: number,
    key: string,
  ) {
    super(names, "nThreads : i32, rows : i32, cv : i32, rowsPerChunk : i32,", c, [chunks, 2, c], chunks, key);
  }
  values(): ProgramUniforms {
    return ints(this.threads, this.rows, this.cv, this.rpc);
  }
  /** WGSL over rows r0..r1 of channel vector c that leaves the two results in `first`, `second`. */
  abstract body(): string;
  getUserCode(): string {
    return channelMain(
      `
        let r0 = chunk * uniforms.rowsPerChunk;
        let r1 = min(r0 + uniforms.rowsPerChunk, uniforms.rows);
        ${this.body()}
        result[(chunk * 2) * cv + c] = first;
        result[(chunk * 2 + 1) * cv + c] = second;`,
      { rest: "chunk" },
    );
  }
}

/**
 * Stage 1 of the statistics: for each (chunk, channel) the chunk mean and M2 = Σ(x−mean)², from one
 * pass of sums shifted by the chunk's first value (no cancellation for data far from zero).
 */
class StatsPartialProgram extends ChunkSumProgram {
  constructor(rows: number, c: number, chunks: number, rpc: number) {
    super(["x"], rows, c, chunks, rpc, "xsBnStats");
  }
  body(): string {
    const T = this.T;
    return `let shift = x[r0 * cv + c];
        var s = ${T}(0.0);
        var q = ${T}(0.0);
        for (var r = r0; r < r1; r++) {
          let d = x[r * cv + c] - shift;
          s = s + d;
          q = q + d * d;
        }
        let n = f32(r1 - r0);
        let first = shift + s / n;
        let second = max(q - s * s / n, ${T}(0.0));`;
  }
}

/** y = ((x − mean)·invstd)·γ + β, then the activation. Inputs x [R,C], stats [2,C], γ, β. */
class NormalizeProgram extends BnProgram {
  constructor(shape: number[], readonly rows: number, c: number, readonly act: BnActivation) {
    super(["x", "stats", "gamma", "beta"], "nThreads : i32, cv : i32,", c, shape, rows, `xsBnNorm_${act}`);
  }
  values() {
    return ints(this.threads, this.cv);
  }
  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let c = index % uniforms.cv;
        var z = ((x[index] - stats[c]) * stats[uniforms.cv + c]) * gamma[c] + beta[c];
        ${actSnippet(this.act, this.T)}
        result[index] = z;
      }`;
  }
}

/**
 * Stage 1 of the backward sums: per (chunk, channel) Σd and Σd·(x − mean), with d = dy masked by
 * the activation's derivative at the recomputed pre-activation.
 */
class GradPartialProgram extends ChunkSumProgram {
  constructor(rows: number, c: number, chunks: number, rpc: number, readonly act: BnActivation) {
    super(["dy", "x", "stats", "gamma", "beta"], rows, c, chunks, rpc, `xsBnGradSums_${act}`);
  }
  body(): string {
    const T = this.T;
    return `let mean = stats[c];
        let invstd = stats[cv + c];
        let g = gamma[c];
        let b = beta[c];
        _ = invstd; _ = g; _ = b;
        var first = ${T}(0.0);
        var second = ${T}(0.0);
        for (var r = r0; r < r1; r++) {
          let k = r * cv + c;
          let xc = x[k] - mean;
          ${maskedGrad(this.act, T, "dy[k]", "(xc * invstd) * g + b")}
          first = first + d;
          second = second + d * xc;
        }`;
  }
}

/** dx = γ·invstd·(d − Σd/R − x̂·Σd·x̂/R), with d the masked dy. */
class GradInputProgram extends BnProgram {
  constructor(shape: number[], readonly rows: number, c: number, readonly act: BnActivation) {
    const names = ["dy", "x", "stats", "gamma", "beta", "dgamma", "dbeta"];
    super(names, "nThreads : i32, cv : i32, invRows : f32,", c, shape, rows, `xsBnGradX_${act}`);
  }
  values(): ProgramUniforms {
    return [...ints(this.threads, this.cv), { type: "float32", data: [1 / this.rows] }];
  }
  getUserCode(): string {
    const T = this.T;
    return `
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let cv = uniforms.cv;
        let c = index % cv;
        let invstd = stats[cv + c];
        let xhat = (x[index] - stats[c]) * invstd;
        let g = gamma[c];
        ${maskedGrad(this.act, T, "dy[index]", "xhat * g + beta[c]")}
        let inv = ${T}(uniforms.invRows);
        result[index] = (g * invstd) * (d - dbeta[c] * inv - xhat * (dgamma[c] * inv));
      }`;
  }
}

/**
 * A per-channel combine kernel (raw dispatch, one thread per channel `c`): uniform struct `U` with
 * `fields` (its first field is the channel count `c`), f32 storage bindings `read` then `write`.
 */
function combineKernel(fields: string, read: string[], write: string[], body: string): string {
  const decl = (name: string, i: number, access: string) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name} : array<f32>;`;
  return `
struct U { ${fields} };
${read.map((n, i) => decl(n, i, "read")).join("\n")}
${write.map((n, i) => decl(n, read.length + i, "read_write")).join("\n")}
@group(0) @binding(${read.length + write.length}) var<uniform> u : U;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let c = gid.x;
  if (c >= u.c) { return; }${body}
}`;
}

/**
 * Stage 2 of the forward statistics (raw dispatch, one thread per channel): combines the chunk
 * (mean, M2) pairs (Chan et al.), writes stats = [mean; invstd] and updates the running stats in
 * place: rm ← (1−μ)·rm + μ·mean, rv ← (1−μ)·rv + μ·R/(R−1)·var.
 */
const STATS_COMBINE_WGSL = combineKernel(
  "c : u32, chunks : u32, rows : u32, rpc : u32, eps : f32, keep : f32, mom : f32, momUnbiased : f32",
  ["partial"],
  ["stats", "rm", "rv"],
  `
  let total = f32(u.rows);
  var mean = 0.0;
  for (var k = 0u; k < u.chunks; k++) {
    let n = f32(min(u.rpc, u.rows - k * u.rpc));
    mean = mean + n * partial[(k * 2u) * u.c + c];
  }
  mean = mean / total;
  var m2 = 0.0;
  for (var k = 0u; k < u.chunks; k++) {
    let n = f32(min(u.rpc, u.rows - k * u.rpc));
    let d = partial[(k * 2u) * u.c + c] - mean;
    m2 = m2 + partial[(k * 2u + 1u) * u.c + c] + n * d * d;
  }
  let variance = m2 / total;
  stats[c] = mean;
  stats[u.c + c] = inverseSqrt(variance + u.eps);
  rm[c] = rm[c] * u.keep + mean * u.mom;
  rv[c] = rv[c] * u.keep + variance * u.momUnbiased;`,
);

/** Stage 2 of the backward sums (raw dispatch): dβ = Σd, dγ = invstd·Σd·(x − mean). */
const GRAD_COMBINE_WGSL = combineKernel(
  "c : u32, chunks : u32, pad0 : u32, pad1 : u32",
  ["partial", "stats"],
  [
    "dgamma",
    "dbeta",
  ],
  `
  var s = 0.0;
  var p = 0.0;
  for (var k = 0u; k < u.chunks; k++) {
    s = s + partial[(k * 2u) * u.c + c];
    p = p + partial[(k * 2u + 1u) * u.c + c];
  }
  dbeta[c] = s;
  dgamma[c] = p * stats[u.c + c];`,
);

// ---------------------------------------------------------------------------------------------
// Single-dispatch variants: one workgroup per channel (group of 4) reduces all R rows through
// workgroup memory, then normalises (forward) or forms dx (backward) for the same rows. One
// dispatch instead of three; used while a workgroup's share of rows stays small enough
// (up to kernelTuning().bnSingleDispatchMaxRows rows: every layer on software adapters, small ones on
// real GPUs, where the split path
// keeps more threads busy).
// ---------------------------------------------------------------------------------------------

const FWG = 64;
/** Whether a layer of `rows` rows runs the single-dispatch kernels (see KernelTuning). */
function useSingleDispatch(rows: number): boolean {
  return rows <= kernelTuning().bnSingleDispatchMaxRows;
}

/**
 * Declarations of a single-dispatch kernel: `read` then `write` storage bindings of channel vectors,
 * the uniform block `u` (struct U, declared by the caller) after them, and the reduction scratch.
 */
function singleDispatchDecls(T: string, read: string[], write: string[]): string {
  const decl = (name: string, i: number, access: string) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name} : array<${T}>;`;
  return [
    ...read.map((n, i) => decl(n, i, "read")),
    ...write.map((n, i) => decl(n, read.length + i, "read_write")),
    `@group(0) @binding(${read.length + write.length}) var<uniform> u : U;`,
    `var<workgroup> sh0 : array<${T}, ${FWG}>;`,
    `var<workgroup> sh1 : array<${T}, ${FWG}>;`,
  ].join("\n");
}

function wgReduceSnippet(T: string): string {
  return `
  sh0[li] = s;
  sh1[li] = q;
  workgroupBarrier();
  for (var k = ${FWG / 2}u; k > 0u; k = k >> 1u) {
    if (li < k) {
      sh0[li] = sh0[li] + sh0[li + k];
      sh1[li] = sh1[li] + sh1[li + k];
    }
    workgroupBarrier();
  }
  let S : ${T} = sh0[0];
  let Q : ${T} = sh1[0];`;
}

function fusedForwardWgsl(comp: number, act: BnActivation): string {
  const T = floatType(comp as 1 | 4);
  return `
struct U { rows : u32, cv : u32, eps : f32, keep : f32, mom : f32, momUnbiased : f32, pad0 : f32, pad1 : f32 };
${singleDispatchDecls(T, ["x", "gamma", "beta"], ["y", "stats", "rm", "rv"])}
@compute @workgroup_size(${FWG})
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) li : u32) {
  let c = wid.x;
  let cv = u.cv;
  let shift = x[c];
  var s = ${T}(0.0);
  var q = ${T}(0.0);
  for (var r = li; r < u.rows; r = r + ${FWG}u) {
    let d = x[r * cv + c] - shift;
    s = s + d;
    q = q + d * d;
  }
  ${wgReduceSnippet(T)}
  let n = f32(u.rows);
  let mean = shift + S / n;
  let variance = max(Q - S * S / n, ${T}(0.0)) / n;
  let invstd = inverseSqrt(variance + ${T}(u.eps));
  if (li == 0u) {
    stats[c] = mean;
    stats[cv + c] = invstd;
    rm[c] = rm[c] * u.keep + mean * u.mom;
    rv[c] = rv[c] * u.keep + variance * u.momUnbiased;
  }
  let g = gamma[c];
  let b = beta[c];
  for (var r = li; r < u.rows; r = r + ${FWG}u) {
    let k = r * cv + c;
    var z = ((x[k] - mean) * invstd) * g + b;
    ${actSnippet(act, T)}
    y[k] = z;
  }
}`;
}

function fusedBackwardWgsl(comp: number, act: BnActivation): string {
  const T = floatType(comp as 1 | 4);
  return `
struct U { rows : u32, cv : u32, invRows : f32, pad0 : f32 };
${singleDispatchDecls(T, ["dy", "x", "stats", "gamma", "beta"], ["dx", "dgamma", "dbeta"])}
@compute @workgroup_size(${FWG})
fn main(@builtin(workgroup_id) wid : vec3<u32>, @builtin(local_invocation_index) li : u32) {
  let c = wid.x;
  let cv = u.cv;
  let mean = stats[c];
  let invstd = stats[cv + c];
  let g = gamma[c];
  let b = beta[c];
  var s = ${T}(0.0);
  var q = ${T}(0.0);
  for (var r = li; r < u.rows; r = r + ${FWG}u) {
    let k = r * cv + c;
    let xc = x[k] - mean;
    ${maskedGrad(act, T, "dy[k]", "(xc * invstd) * g + b")}
    s = s + d;
    q = q + d * xc;
  }
  ${wgReduceSnippet(T)}
  let dg = Q * invstd;
  if (li == 0u) {
    dgamma[c] = dg;
    dbeta[c] = S;
  }
  let inv = ${T}(u.invRows);
  for (var r = li; r < u.rows; r = r + ${FWG}u) {
    let k = r * cv + c;
    let xhat = (x[k] - mean) * invstd;
    ${maskedGrad(act, T, "dy[k]", "xhat * g + b")}
    dx[k] = (g * invstd) * (d - S * inv - xhat * (dg * inv));
  }
}`;
}

/** A uniform block of `uints` followed by `floats`, padded to a multiple of 16 bytes. */
function packUniforms(uints: number[], floats: number[]): ArrayBuffer {
  const u = new ArrayBuffer(Math.ceil((uints.length + floats.length) / 4) * 16);
  new Uint32Array(u, 0, uints.length).set(uints);
  new Float32Array(u, 4 * uints.length, floats.length).set(floats);
  return u;
}

/** eps and the running-statistics factors: keep = 1−μ, μ, and μ·R/(R−1) (unbiased variance). */
function runningFactors(a: BnAttrs, rows: number): number[] {
  const mom = a.momentum;
  return [a.eps, 1 - mom, mom, (mom * rows) / Math.max(rows - 1, 1)];
}

// ---------------------------------------------------------------------------------------------
// Kernel functions
// ---------------------------------------------------------------------------------------------

/** What tfjs passes a kernel function. */
interface BnKernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

function rowsAndChannels(shape: readonly number[]): { rows: number; c: number } {
  const c = shape[shape.length - 1];
  return { rows: shape.slice(0, -1).reduce((a, b) => a * b, 1), c };
}

function newOutput(backend: WebGPUBackend, shape: number[]): tf.TensorInfo {
  const info = backend.makeTensorInfo(shape, "float32");
  (backend as unknown as { uploadToGPU(d: object): void }).uploadToGPU(info.dataId);
  return info;
}

/** BatchNorm kernel function (registered by kernels/register.ts). */
export function forwardWebgpu(args: BnKernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WebGPUBackend;
  const { x, gamma, beta, runningMean, runningVar } = args.inputs;
  const a = args.attrs as unknown as BnAttrs;
  const { rows, c } = rowsAndChannels(x.shape);
  const comp = channelComponents(c);
  const stats = newOutput(backend, [2, c]);
  if (useSingleDispatch(rows)) {
    const y = newOutput(backend, x.shape as number[]);
    const u = packUniforms([rows, c / comp], [...runningFactors(a, rows), 0, 0]);
    const pipe = rawPipeline(backend, `xsBnFwd1_${comp}_${a.act}`, () => fusedForwardWgsl(comp, a.act));
    rawDispatch(backend, pipe, [x, gamma, beta, y, stats, runningMean, runningVar], u, c / comp);
    return [y, stats];
  }
  const { chunks, rowsPerChunk } = chunking(rows, c / comp, kernelTuning().reduceTargetThreads);
  const p1 = new StatsPartialProgram(rows, c, chunks, rowsPerChunk);
  const partial = run(backend, p1, [x], p1.values());
  const u = packUniforms([c, chunks, rows, rowsPerChunk], runningFactors(a, rows));
  const pipe = rawPipeline(backend, "xsBnStatsCombine", () => STATS_COMBINE_WGSL);
  rawDispatch(backend, pipe, [partial, stats, runningMean, runningVar], u, Math.ceil(c / WG));
  backend.disposeData(partial.dataId);
  const p2 = new NormalizeProgram(x.shape as number[], rows, c, a.act);
  const y = run(backend, p2, [x, stats, gamma, beta], p2.values());
  return [y, stats];
}

/** BatchNorm kernel function (registered by kernels/register.ts). */
export function backwardWebgpu(args: BnKernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WebGPUBackend;
  const { dy, x, gamma, beta, stats } = args.inputs;
  const act = (args.attrs as unknown as BnAttrs).act;
  const { rows, c } = rowsAndChannels(x.shape);
  const comp = channelComponents(c);
  const dgamma = newOutput(backend, [c]);
  const dbeta = newOutput(backend, [c]);
  if (useSingleDispatch(rows)) {
    const dx = newOutput(backend, x.shape as number[]);
    const u = packUniforms([rows, c / comp], [1 / rows, 0]);
    const pipe = rawPipeline(backend, `xsBnBwd1_${comp}_${act}`, () => fusedBackwardWgsl(comp, act));
    rawDispatch(backend, pipe, [dy, x, stats, gamma, beta, dx, dgamma, dbeta], u, c / comp);
    return [dx, dgamma, dbeta];
  }
  const { chunks, rowsPerChunk } = chunking(rows, c / comp, kernelTuning().reduceTargetThreads);
  const p1 = new GradPartialProgram(rows, c, chunks, rowsPerChunk, act);
  const partial = run(backend, p1, [dy, x, stats, gamma, beta], p1.values());
  const u = packUniforms([c, chunks, 0, 0], []);
  const pipe = rawPipeline(backend, "xsBnGradCombine", () => GRAD_COMBINE_WGSL);
  rawDispatch(backend, pipe, [partial, stats, dgamma, dbeta], u, Math.ceil(c / WG));
  backend.disposeData(partial.dataId);
  const p2 = new GradInputProgram(x.shape as number[], rows, c, act);
  const dx = run(backend, p2, [dy, x, stats, gamma, beta, dgamma, dbeta], p2.values());
  return [dx, dgamma, dbeta];
}

// CPU kernels: plain loops with double accumulation; they are also the tests' CPU reference.
interface CpuBackend {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
  data: { get(dataId: object): { values: Float32Array } };
}

function actCpu(z: number, act: BnActivation): number {
  if (act === "silu") return z / (1 + Math.exp(-z));
  return act === "relu" ? Math.max(z, 0) : act === "relu6" ? Math.min(Math.max(z, 0), 6) : z;
}
function maskCpu(z: number, act: BnActivation): number {
  if (act === "silu") {
    const sg = 1 / (1 + Math.exp(-z));
    return sg * (1 + z * (1 - sg));
  }
  return act === "relu" ? (z > 0 ? 1 : 0) : act === "relu6" ? (z > 0 && z <= 6 ? 1 : 0) : 1;
}

/** BatchNorm kernel function (registered by kernels/register.ts). */
export function forwardCpu(args: BnKernelArgs): tf.TensorInfo[] {
  const be = args.backend as CpuBackend;
  const { x, gamma, beta, runningMean, runningVar } = args.inputs;
  const a = args.attrs as unknown as BnAttrs;
  const { rows, c } = rowsAndChannels(x.shape);
  const xv = be.readSync(x.dataId), gv = be.readSync(gamma.dataId), bv = be.readSync(beta.dataId);
  const sum = new Float64Array(c), m2 = new Float64Array(c);
  for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) sum[j] += xv[r * c + j];
  const mean = sum.map((s) => s / rows);
  for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) m2[j] += (xv[r * c + j] - mean[j]) ** 2;
  const stats = new Float32Array(2 * c);
  const rm = be.data.get(runningMean.dataId).values, rv = be.data.get(runningVar.dataId).values;
  for (let j = 0; j < c; j++) {
    const variance = m2[j] / rows;
    stats[j] = mean[j];
    stats[c + j] = 1 / Math.sqrt(variance + a.eps);
    rm[j] = (1 - a.momentum) * rm[j] + a.momentum * mean[j];
    rv[j] = (1 - a.momentum) * rv[j] + a.momentum * variance * rows / Math.max(rows - 1, 1);
  }
  const y = new Float32Array(rows * c);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      y[r * c + j] = actCpu((xv[r * c + j] - stats[j]) * stats[c + j] * gv[j] + bv[j], a.act);
    }
  }
  return [be.makeTensorInfo(x.shape as number[], "float32", y), be.makeTensorInfo([2, c], "float32", stats)];
}

/** BatchNorm kernel function (registered by kernels/register.ts). */
export function backwardCpu(args: BnKernelArgs): tf.TensorInfo[] {
  const be = args.backend as CpuBackend;
  const { dy, x, gamma, beta, stats } = args.inputs;
  const act = (args.attrs as unknown as BnAttrs).act;
  const { rows, c } = rowsAndChannels(x.shape);
  const dyv = be.readSync(dy.dataId), xv = be.readSync(x.dataId), st = be.readSync(stats.dataId);
  const gv = be.readSync(gamma.dataId), bv = be.readSync(beta.dataId);
  const s = new Float64Array(c), p = new Float64Array(c);
  const d = new Float64Array(rows * c), xh = new Float64Array(rows * c);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      const k = r * c + j;
      xh[k] = (xv[k] - st[j]) * st[c + j];
      d[k] = dyv[k] * maskCpu(xh[k] * gv[j] + bv[j], act);
      s[j] += d[k];
      p[j] += d[k] * xh[k];
    }
  }
  const dx = new Float32Array(rows * c);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      const k = r * c + j;
      dx[k] = gv[j] * st[c + j] * (d[k] - s[j] / rows - xh[k] * p[j] / rows);
    }
  }
  return [
    be.makeTensorInfo(x.shape as number[], "float32", dx),
    be.makeTensorInfo([c], "float32", Float32Array.from(p)),
    be.makeTensorInfo([c], "float32", Float32Array.from(s)),
  ];
}

/**
 * The BatchNorm training kernel's gradient (registered by kernels/register.ts): dx, dγ, dβ from one
 * backward kernel; the running statistics get none.
 */
export const batchNormTrainGrad: tf.GradFunc = (dys, saved, attrs) => {
  const dy = Array.isArray(dys) ? dys[0] : dys;
  const [x, gamma, beta, stats] = saved;
  const [dx, dgamma, dbeta] = tf.engine().runKernel(
    BN_TRAIN_GRAD_KERNEL,
    { dy, x, gamma, beta, stats } as unknown as tf.NamedTensorMap,
    attrs,
  ) as Tensor[];
  return {
    x: () => dx,
    gamma: () => dgamma,
    beta: () => dbeta,
    runningMean: () => tf.zerosLike(gamma),
    runningVar: () => tf.zerosLike(gamma),
  };
};

/** Parameters of one BatchNorm layer (same fields as models/core.ts `BatchNormParams`). */
export interface BatchNormTrainParams {
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
  momentum: number;
}

/**
 * BatchNorm in training mode over all axes but the last, then `act`: batch statistics
 * (biased variance for normalising), running stats updated in place with `momentum` and the
 * unbiased variance (PyTorch). Differentiable w.r.t. x, γ and β through the custom gradient.
 */
export function batchNormTrain(x: Tensor, bn: BatchNormTrainParams, act: BnActivation = "identity"): Tensor {
  for (const v of [bn.runningMean, bn.runningVar]) {
    if (!(v instanceof tf.Variable)) {
      throw new TypeError("batchNormTrain: running stats must be tf.Variables");
    }
    ensurePrivate(v);
  }
  const attrs: BnAttrs = { eps: bn.eps, momentum: bn.momentum, act };
  const [y, stats] = tf.engine().runKernel(
    BN_TRAIN_KERNEL,
    {
      x,
      gamma: bn.gamma,
      beta: bn.beta,
      runningMean: bn.runningMean,
      runningVar: bn.runningVar,
    } as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as Tensor[];
  stats.dispose();
  return y;
}

/** The stock-op composition {@link batchNormTrain} replaces (reference for tests and benchmarks). */
export function batchNormTrainStock(
  x: Tensor,
  bn: BatchNormTrainParams,
  act: BnActivation = "identity",
): Tensor {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const n = x.size / x.shape[x.rank - 1];
  const m = bn.momentum;
  (bn.runningMean as tf.Variable).assign(tf.add(tf.mul(bn.runningMean, 1 - m), tf.mul(mean, m)));
  (bn.runningVar as tf.Variable).assign(
    tf.add(tf.mul(bn.runningVar, 1 - m), tf.mul(variance, (m * n) / Math.max(n - 1, 1))),
  );
  const y = tf.batchNorm(x, mean, variance, bn.beta, bn.gamma, bn.eps);
  if (act === "silu") return tf.mul(y, tf.sigmoid(y));
  return act === "relu" ? tf.relu(y) : act === "relu6" ? tf.relu6(y) : y;
}
