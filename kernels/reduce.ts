/**
 * Split column sums: the two-stage reduction behind the depthwise filter/bias gradients and the
 * SE pooling. A [G, R, M] tensor is summed over R in chunks of rows, one thread per
 * (group, chunk, column), giving [G, chunks, M] partial sums that a second pass (or the SE
 * squeeze kernel) folds. Splitting R keeps thousands of threads busy even when G*M is small.
 *
 * @module
 */
import type { tf, WebGPUBackend } from "../runtime/tf.ts";
import {
  channelComponents,
  channelMain,
  flatDispatch,
  FlatProgram,
  floatType,
  ints,
  kernelTuning,
  run,
  splitRows,
} from "./common.ts";

/**
 * Sums rows of `aIn` viewed as [G, R, M] over row chunks. With `pairWithProduct`, a second input
 * `bIn` of the same shape is read too and the output holds, per chunk, the sum of `a` followed by
 * the sum of `a*b` (layout [G, chunks, 2, M]): the SE backward pass needs both from one read.
 */
export class ColumnSumProgram extends FlatProgram {
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  uniforms = "nThreads : i32, rows : i32, mv : i32, chunks : i32, rowsPerChunk : i32,";
  readonly threads: number;
  readonly comp: 1 | 4;
  readonly pair: boolean;

  constructor(
    readonly groups: number,
    readonly rows: number,
    readonly columns: number,
    readonly chunks: number,
    readonly rowsPerChunk: number,
    pairWithProduct: boolean,
    outputShape?: number[],
  ) {
    super();
    this.comp = channelComponents(columns);
    this.pair = pairWithProduct;
    this.threads = groups * chunks * (columns / this.comp);
    this.outputShape = outputShape ??
      (pairWithProduct ? [groups, chunks, 2, columns] : [groups, chunks, columns]);
    this.variableNames = pairWithProduct ? ["aIn", "bIn"] : ["aIn"];
    this.variableComponents = this.variableNames.map(() => this.comp);
    this.outputComponent = this.comp;
    const wg = kernelTuning().workgroupSize;
    Object.assign(this, flatDispatch(this.outputShape, this.threads, wg));
    this.shaderKey = `xsColumnSum_${this.comp}_${pairWithProduct ? "pair" : "sum"}_${wg}`;
  }

  /** Uniform values matching `uniforms`. */
  uniformValues(): ReturnType<typeof ints> {
    return ints(this.threads, this.rows, this.columns / this.comp, this.chunks, this.rowsPerChunk);
  }

  getUserCode(): string {
    const T = floatType(this.comp);
    const prod = this.pair ? `p = fma(v, bIn[k], p);` : "";
    const write = this.pair
      ? `result[(o * 2) * mv + m] = s;
         result[(o * 2 + 1) * mv + m] = p;`
      : `result[o * mv + m] = s;`;
    return channelMain(
      `
        let chunk = t % uniforms.chunks;
        let g = t / uniforms.chunks;
        let r0 = chunk * uniforms.rowsPerChunk;
        let r1 = min(r0 + uniforms.rowsPerChunk, uniforms.rows);
        var s = ${T}(0.0);
        var p = ${T}(0.0);
        for (var r = r0; r < r1; r++) {
          let k = (g * uniforms.rows + r) * mv + m;
          let v = aIn[k];
          s = s + v;
          ${prod}
        }
        _ = p;
        let o = g * uniforms.chunks + chunk;
        ${write}`,
      { width: "mv", lane: "m" },
    );
  }
}

/**
 * Sums `x` viewed as [groups, rows, columns] over rows, in two stages when that gives more
 * parallelism. Returns a [groups, columns] result (or `outputShape`).
 */
export function columnSum(
  backend: WebGPUBackend,
  x: tf.TensorInfo,
  groups: number,
  rows: number,
  columns: number,
  outputShape: number[],
): tf.TensorInfo {
  const lanes = groups * (columns / channelComponents(columns));
  const { chunks, rowsPerChunk } = splitRows(rows, lanes);
  if (chunks === 1) {
    const p = new ColumnSumProgram(groups, rows, columns, 1, rows, false, outputShape);
    return run(backend, p, [x], p.uniformValues());
  }
  const p1 = new ColumnSumProgram(groups, rows, columns, chunks, rowsPerChunk, false);
  const partial = run(backend, p1, [x], p1.uniformValues());
  const p2 = new ColumnSumProgram(groups, chunks, columns, 1, chunks, false, outputShape);
  const out = run(backend, p2, [partial], p2.uniformValues());
  backend.disposeData(partial.dataId);
  return out;
}
