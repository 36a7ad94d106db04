/**
 * Shared plumbing for the custom WGSL kernels: the program shape tfjs-backend-webgpu expects,
 * flat-dispatch helpers, work-per-thread tuning knobs and small WGSL snippets.
 *
 * Programs here index their buffers directly (`xIn[i]`, `result[i]`) instead of using the
 * generated `getX(...)` accessors, so one kernel can view a tensor with any logical shape.
 *
 * @module
 */
import { tf, type WebGPUBackend } from "../runtime/tf.ts";
import { adapterFacts } from "../runtime/webgpu.ts";

/** A tfjs-backend-webgpu program (the interface `backend.runWebGPUProgram` consumes). */
export type WebGPUProgram = tf.webgpu.WebGPUProgram;
import { ints as gpuInts, type ProgramUniforms, runProgram } from "../runtime/gpu.ts";

export type { ProgramUniforms };

/**
 * Work-per-thread and parallelism knobs. Software rasterisers (llvmpipe) and GPUs want different
 * values: on a CPU, fewer and fatter threads cut redundant loads and scalarised index math; on a
 * GPU, register pressure and occupancy favour small per-thread tiles and many threads.
 */
export interface KernelTuning {
  /** Output columns per thread in the depthwise forward and input-grad kernels. */
  dwColsPerThread: number;
  /** Output rows per thread in the depthwise forward and input-grad kernels. */
  dwRowsPerThread: number;
  /** Output columns per inner step of the depthwise filter-grad partial kernel. */
  dwFilterGradCols: number;
  /** Filter rows per thread of the depthwise filter-grad partial kernel (clamped to kh). */
  dwFilterGradTapRows: number;
  /**
   * Unrolled multiply-adds a depthwise kernel body may hold (forward/input-grad tile; a fifth of
   * it for the filter-grad body, which sits in a hotter loop). Bigger tiles run faster on CPU
   * rasterisers but compile time grows with the unrolled code (~1 s per 800 on llvmpipe).
   */
  dwMaxUnrolledFma: number;
  /** Threads per workgroup of the flat (one thread per output tile) kernels. */
  workgroupSize: number;
  /** Threads per workgroup of the per-image SE squeeze kernels. */
  seWorkgroupSize: number;
  /** Pixels one thread walks in the SE channel-scale and input-grad kernels. */
  sePixelsPerThread: number;
  /** Images per workgroup of the SE squeeze kernels (each weight load feeds this many FMAs). */
  seImagesPerWorkgroup: number;
  /** Target thread count of split reductions (filter-grad stage 1, pooling, bias grad). */
  reduceTargetThreads: number;
  /**
   * Largest row count (N·H·W) a BatchNorm layer runs with the single-dispatch kernels (one
   * workgroup per channel); larger ones use the split reduction. 0 forces the split path.
   */
  bnSingleDispatchMaxRows: number;
  /** Minimum rows summed by one thread of a split reduction (keeps stage 2 small). */
  reduceMinRowsPerThread: number;
  /** Output rows per thread of the register-tiled matmul (kernels/matmul.ts). */
  mmTileRows: number;
  /** Output columns per thread of the register-tiled matmul. */
  mmTileCols: number;
  /** Minimum K steps one thread of a K-split matmul walks. */
  mmMinKPerSplit: number;
}

/** Defaults for software adapters, tuned on llvmpipe (2 cores). */
const SOFTWARE_DEFAULTS: KernelTuning = {
  dwColsPerThread: 16,
  dwRowsPerThread: 4,
  dwFilterGradCols: 16,
  dwFilterGradTapRows: 7,
  dwMaxUnrolledFma: 800,
  workgroupSize: 64,
  seWorkgroupSize: 64,
  sePixelsPerThread: 8,
  seImagesPerWorkgroup: 8,
  reduceTargetThreads: 4096,
  // On a CPU rasteriser a workgroup is one thread: one pass per channel always wins.
  bnSingleDispatchMaxRows: Number.MAX_SAFE_INTEGER,
  reduceMinRowsPerThread: 4,
  mmTileRows: 16,
  mmTileCols: 16,
  mmMinKPerSplit: 64,
};

/** Defaults for hardware GPUs (not tuned on one yet; conventional tile sizes). */
const GPU_DEFAULTS: KernelTuning = {
  dwColsPerThread: 4,
  dwRowsPerThread: 1,
  dwFilterGradCols: 4,
  dwFilterGradTapRows: 1,
  dwMaxUnrolledFma: 800,
  workgroupSize: 64,
  seWorkgroupSize: 256,
  sePixelsPerThread: 4,
  seImagesPerWorkgroup: 1,
  reduceTargetThreads: 65536,
  bnSingleDispatchMaxRows: 32768,
  reduceMinRowsPerThread: 4,
  mmTileRows: 4,
  mmTileCols: 4,
  mmMinKPerSplit: 64,
};

let overrides: Partial<KernelTuning> = {};

function softwareAdapter(): boolean {
  try {
    return adapterFacts().isFallbackAdapter;
  } catch {
    // Runtime not initialised through initRuntime (e.g. a bare tf.setBackend): assume the CPU rasteriser.
    return true;
  }
}

/** The tuning in effect: the adapter's defaults with any {@link setKernelTuning} overrides. */
export function kernelTuning(): KernelTuning {
  return { ...(softwareAdapter() ? SOFTWARE_DEFAULTS : GPU_DEFAULTS), ...overrides };
}

/**
 * Overrides some tuning knobs (benchmarks, tests; an `undefined` value restores the default); `reset`
 * drops earlier overrides first.
 * Knobs baked into WGSL are part of each program's shader key, so changing them is safe.
 */
export function setKernelTuning(patch: Partial<KernelTuning>, reset = false): void {
  const next: Partial<KernelTuning> = { ...(reset ? {} : overrides), ...patch };
  for (const [k, v] of Object.entries(next)) {
    if (v === undefined) {
      // undefined restores the adapter's default
      delete next[k as keyof KernelTuning];
      continue;
    }
    const unbounded = k === "reduceTargetThreads" || k === "dwMaxUnrolledFma" || k === "mmMinKPerSplit" ||
      k === "bnSingleDispatchMaxRows";
    const min = k === "bnSingleDispatchMaxRows" ? 0 : 1;
    if (!Number.isInteger(v) || v < min || (!unbounded && v > 1024)) {
      throw new RangeError(`kernel tuning ${k} must be a positive integer (<= 1024), got ${v}`);
    }
  }
  overrides = next;
}

/** Target thread count of a split reduction on the current adapter. */
export function reduceTargetThreads(): number {
  return kernelTuning().reduceTargetThreads;
}

/**
 * Splits a reduction over `rows` rows into chunks so that `lanes * chunks` threads reach the
 * target parallelism; returns the chunk count and rows per chunk.
 */
export function splitRows(rows: number, lanes: number): { chunks: number; rowsPerChunk: number } {
  const wanted = Math.ceil(reduceTargetThreads() / Math.max(1, lanes));
  const maxChunks = Math.max(1, Math.floor(rows / kernelTuning().reduceMinRowsPerThread));
  const chunks0 = Math.max(1, Math.min(wanted, maxChunks, rows));
  const rowsPerChunk = Math.ceil(rows / chunks0);
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/** The active tfjs backend as the WebGPU backend (callers run only inside webgpu kernelFuncs). */
export function gpuBackend(backend: unknown): WebGPUBackend {
  return backend as WebGPUBackend;
}

/**
 * Flat-dispatch fields for a program with `threads` threads: tfjs turns dispatches over 65535
 * workgroups into a 2D/3D grid that overshoots, so every kernel bounds-checks `index`.
 */
export function flatDispatch(
  outputShape: number[],
  threads: number,
  workgroupSize: number,
): Pick<WebGPUProgram, "dispatchLayout" | "dispatch" | "workgroupSize"> {
  return {
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.max(1, Math.ceil(threads / workgroupSize)), 1, 1],
    workgroupSize: [workgroupSize, 1, 1],
  };
}

/**
 * Base of the kernel program classes: the fields tfjs reads that every program declares alike.
 * Subclasses set them in their constructor (the dispatch fields through {@link flatDispatch}).
 */
export abstract class FlatProgram implements WebGPUProgram {
  outputShape!: number[];
  shaderKey!: string;
  dispatchLayout!: WebGPUProgram["dispatchLayout"];
  dispatch!: [number, number, number];
  workgroupSize!: [number, number, number];
  abstract variableNames: string[];
  abstract uniforms: string;
  abstract getUserCode(): string;
}

/**
 * WGSL entry point of a flat program over (item, channel vector) pairs: thread `index` handles
 * channel vector `lane` = index % `width` of item `rest` = index / `width` (a `var` when the body
 * decomposes it further); threads past `nThreads` return. The program's uniforms must declare
 * `nThreads` and `width`; `body` continues from there.
 */
export function channelMain(
  body: string,
  { width = "cv", lane = "c", rest = "t", mutableRest = false } = {},
): string {
  return `
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let ${width} = uniforms.${width};
        let ${lane} = index % ${width};
        ${mutableRest ? "var" : "let"} ${rest} = index / ${width};
        ${body}
      }`;
}

/** WGSL type name of a float value with 1 or 4 components. */
export function floatType(components: 1 | 4): string {
  return components === 4 ? "vec4<f32>" : "f32";
}

/** Channel vector width for a channel count: vec4 when the count allows it. */
export function channelComponents(channels: number): 1 | 4 {
  return channels % 4 === 0 ? 4 : 1;
}

/** Runs `program` (float32 output) through the dispatch layer, runtime/gpu.ts. */
export function run(
  backend: WebGPUBackend,
  program: WebGPUProgram,
  inputs: tf.TensorInfo[],
  uniforms: ProgramUniforms,
): tf.TensorInfo {
  return runProgram(backend, program, inputs, uniforms);
}

/** Integer uniforms, in declaration order. */
export const ints = gpuInts;

/** Asserts that a tensor is float32 (the kernels bind f32 buffers only). */
export function assertFloat32(t: tf.TensorInfo, what: string): void {
  if (t.dtype !== "float32") throw new TypeError(`${what} must be float32, got ${t.dtype}`);
}
