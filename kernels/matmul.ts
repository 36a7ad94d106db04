/**
 * Register-tiled matrix product for the 1×1 convolutions and Linear layers of the zoo:
 *
 *   C[M, N] = op(A) · op(B),   op(A) = A [M, K] or Aᵀ (A stored [K, M]), op(B) likewise
 *
 * One thread computes a `tileRows × tileCols` block of C straight from the input buffers, with no
 * workgroup memory and no barriers. On a software rasteriser (llvmpipe) workgroup memory is plain
 * RAM behind the same caches and every barrier splits the shader into coroutines, so the stock
 * tiled kernel pays for synchronisation that buys nothing; register blocking alone is what cuts
 * loads per multiply-add. When K is long and C small (the weight gradient Xᵀ·dY of a 1×1 conv,
 * K = B·H·W) the K range is split over `splits` threads whose partial products a second pass sums.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import type { WebGPUBackend } from "../runtime/tf.ts";
import { assertFloat32, flatDispatch, FlatProgram, gpuBackend, ints, kernelTuning, run } from "./common.ts";
import { ColumnSumProgram } from "./reduce.ts";

/** Registered kernel: `C = op(a) · op(b)` for 2-D float32 `a`, `b`; attrs `transposeA`, `transposeB`. */
export const XS_MATMUL = "XsMatMul";

/** Logical sizes of one product. */
export interface MatMulShape {
  M: number;
  K: number;
  N: number;
}

/** Validates shapes and returns M, K, N (throws on misuse). */
export function matMulShape(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): MatMulShape {
  if (aShape.length !== 2 || bShape.length !== 2) {
    throw new Error(`matMul: a and b must be 2-D, got [${aShape}] and [${bShape}]`);
  }
  const [M, K] = transposeA ? [aShape[1], aShape[0]] : [aShape[0], aShape[1]];
  const [K2, N] = transposeB ? [bShape[1], bShape[0]] : [bShape[0], bShape[1]];
  if (K !== K2) {
    throw new Error(
      `matMul: inner sizes differ (a [${aShape}]${transposeA ? "ᵀ" : ""}, b [${bShape}]${
        transposeB ? "ᵀ" : ""
      })`,
    );
  }
  return { M, K, N };
}

/** How one product is cut into threads. */
export interface MatMulPlan {
  tileRows: number;
  tileCols: number;
  /** Threads sharing one output tile along K (1 = no split, no second pass). */
  splits: number;
  /** K steps one split walks. */
  kPerSplit: number;
}

/**
 * Tile and split choice: the tuned tile, shrunk for small outputs; K split when the output
 * tiles alone would leave the adapter's target parallelism unreached.
 */
export function planMatMul({ M, K, N }: MatMulShape): MatMulPlan {
  const t = kernelTuning();
  const tileRows = Math.min(t.mmTileRows, M);
  const tileCols = Math.min(t.mmTileCols, N);
  const tiles = Math.ceil(M / tileRows) * Math.ceil(N / tileCols);
  const wanted = Math.ceil(t.reduceTargetThreads / tiles);
  const maxSplits = Math.max(1, Math.floor(K / t.mmMinKPerSplit));
  const splits0 = Math.max(1, Math.min(wanted, maxSplits));
  const kPerSplit = Math.ceil(K / splits0);
  return { tileRows, tileCols, splits: Math.ceil(K / kPerSplit), kPerSplit };
}

/** One tile per thread; output [splits, M, N] (partials) or [M, N]. */
export class MatMulProgram extends FlatProgram {
  variableNames = ["aIn", "bIn"];
  uniforms = "nThreads : i32, M : i32, K : i32, N : i32, colTiles : i32, tiles : i32, kPerSplit : i32,";
  readonly threads: number;
  readonly colTiles: number;
  readonly tiles: number;

  constructor(
    readonly shape: MatMulShape,
    readonly transposeA: boolean,
    readonly transposeB: boolean,
    readonly plan: MatMulPlan,
  ) {
    super();
    const { M, N } = shape;
    this.colTiles = Math.ceil(N / plan.tileCols);
    this.tiles = Math.ceil(M / plan.tileRows) * this.colTiles;
    this.threads = this.tiles * plan.splits;
    this.outputShape = plan.splits > 1 ? [plan.splits, M, N] : [M, N];
    const wg = kernelTuning().workgroupSize;
    Object.assign(this, flatDispatch(this.outputShape, this.threads, wg));
    this.shaderKey = `xsMatMul_${+transposeA}${+transposeB}_${plan.tileRows}x${plan.tileCols}_${
      plan.splits > 1 ? "split" : "whole"
    }_${wg}`;
  }

  /** Uniform values matching `uniforms`. */
  uniformValues(): ReturnType<typeof ints> {
    const { M, K, N } = this.shape;
    return ints(this.threads, M, K, N, this.colTiles, this.tiles, this.plan.kPerSplit);
  }

  getUserCode(): string {
    const { tileRows: TR, tileCols: TC } = this.plan;
    const rows = [...Array(TR).keys()];
    const cols = [...Array(TC).keys()];
    const aAt = (i: number) => this.transposeA ? `aIn[k * M + r${i}]` : `aIn[r${i} * K + k]`;
    const bAt = (j: number) => this.transposeB ? `bIn[c${j} * K + k]` : `bIn[k * N + c${j}]`;
    // Rows/columns past the edge are clamped for loading (always in bounds) and skipped on write.
    const clamp = [
      ...rows.map((i) => `let r${i} = min(m0 + ${i}, M - 1);`),
      ...cols.map((j) => `let c${j} = min(n0 + ${j}, N - 1);`),
    ].join("\n");
    const acc = rows.flatMap((i) => cols.map((j) => `var acc${i}_${j} = 0.0;`)).join("\n");
    const body = [
      ...rows.map((i) => `let a${i} = ${aAt(i)};`),
      ...cols.map((j) => `let b${j} = ${bAt(j)};`),
      ...rows.flatMap((i) => cols.map((j) => `acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`)),
    ].join("\n");
    const writes = rows.flatMap((i) =>
      cols.map((j) =>
        `if (m0 + ${i} < M && n0 + ${j} < N) { result[base + (m0 + ${i}) * N + n0 + ${j}] = acc${i}_${j}; }`
      )
    ).join("\n");
    return `
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let M = uniforms.M;
        let K = uniforms.K;
        let N = uniforms.N;
        let tile = index % uniforms.tiles;
        let split = index / uniforms.tiles;
        let m0 = (tile / uniforms.colTiles) * ${TR};
        let n0 = (tile % uniforms.colTiles) * ${TC};
        let k0 = split * uniforms.kPerSplit;
        let k1 = min(k0 + uniforms.kPerSplit, K);
        let base = split * M * N;
        ${clamp}
        ${acc}
        for (var k = k0; k < k1; k++) {
          ${body}
        }
        ${writes}
      }
    `;
  }
}

/** Runs `C = op(a)·op(b)` on the WebGPU backend (one dispatch, two with a K split). */
export function matMulWebGPU(
  backend: WebGPUBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  assertFloat32(a, "matMul a");
  assertFloat32(b, "matMul b");
  const shape = matMulShape(a.shape, b.shape, transposeA, transposeB);
  const plan = planMatMul(shape);
  const program = new MatMulProgram(shape, transposeA, transposeB, plan);
  const product = run(backend, program, [a, b], program.uniformValues());
  if (plan.splits === 1) return product;
  const mn = shape.M * shape.N;
  const sum = new ColumnSumProgram(1, plan.splits, mn, 1, plan.splits, false, [shape.M, shape.N]);
  const out = run(backend, sum, [product], sum.uniformValues());
  backend.disposeData(product.dataId);
  return out;
}

/** Kernel function of {@link XS_MATMUL} for the webgpu backend. */
export function matMulKernelWebGPU(
  { inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const { a, b } = inputs as Record<string, tf.TensorInfo>;
  return matMulWebGPU(
    gpuBackend(backend),
    a,
    b,
    Boolean(attrs?.transposeA),
    Boolean(attrs?.transposeB),
  );
}

/** Kernel function of {@link XS_MATMUL} for the cpu backend: the stock op. */
export function matMulKernelStock(
  { inputs, attrs }: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const { a, b } = inputs as Record<string, tf.Tensor2D>;
  return tf.matMul(
    a,
    b,
    Boolean(attrs?.transposeA),
    Boolean(attrs?.transposeB),
  );
}
