/**
 * Depthwise 2D convolution (NHWC, channel multiplier 1, PyTorch-style symmetric padding):
 * WGSL programs for the forward pass, the input gradient and the two-stage filter gradient,
 * their tfjs kernel functions for the webgpu backend, and equivalents built from stock tfjs ops
 * (the "stock" path and the cpu-backend registration).
 *
 * Kernel shape, strides, padding and work per thread are baked into the WGSL (and so into each
 * shader key); tensor sizes are uniforms, so one pipeline serves every batch and resolution.
 * Channels are processed as vec4 when C % 4 == 0 and as scalars otherwise.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import {
  assertFloat32,
  channelComponents,
  channelMain,
  flatDispatch,
  FlatProgram,
  floatType,
  gpuBackend,
  ints,
  kernelTuning,
  run,
  splitRows,
} from "./common.ts";
import { columnSum, ColumnSumProgram } from "./reduce.ts";

/** Registered kernel: depthwise forward. Inputs `x`, `filter`, optional `bias`; attrs `strides`, `pad`. */
export const XS_DEPTHWISE = "XsDepthwiseConv2d";
/** Registered kernel: input gradient. Inputs `dy`, `filter`; attrs `inShape`, `strides`, `pad`. */
export const XS_DEPTHWISE_BACKPROP_INPUT = "XsDepthwiseConv2dBackpropInput";
/** Registered kernel: filter gradient. Inputs `x`, `dy`; attrs `filterShape`, `strides`, `pad`. */
export const XS_DEPTHWISE_BACKPROP_FILTER = "XsDepthwiseConv2dBackpropFilter";
/** Registered kernel: per-channel sum of an NHWC tensor (the bias gradient). Input `x`. */
export const XS_CHANNEL_SUM = "XsChannelSum";

/** Strides and symmetric zero padding of a depthwise convolution, as PyTorch's `Conv2d` takes them. */
export interface DepthwiseConvOptions {
  /** [strideH, strideW]. */
  strides: [number, number];
  /** [padH, padW]: rows/columns of zeros added on each side. */
  pad: [number, number];
}

/** Everything a depthwise kernel needs to know about one convolution. */
export interface DwGeometry {
  B: number;
  H: number;
  W: number;
  C: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  PH: number;
  PW: number;
  /** Output height: floor((H + 2*PH - KH) / SH) + 1. */
  Ho: number;
  /** Output width: floor((W + 2*PW - KW) / SW) + 1. */
  Wo: number;
}

/** Validates shapes and options and returns the convolution geometry (throws on misuse). */
export function dwGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: readonly number[],
  pad: readonly number[],
): DwGeometry {
  if (xShape.length !== 4) throw new Error(`depthwiseConv2d: x must be [B,H,W,C], got [${xShape}]`);
  if (filterShape.length !== 4 || filterShape[3] !== 1 || filterShape[2] !== xShape[3]) {
    throw new Error(
      `depthwiseConv2d: filter must be [kh,kw,C,1] with C=${xShape[3]}, got [${filterShape}]`,
    );
  }
  const [SH, SW] = strides;
  const [PH, PW] = pad;
  for (
    const [name, v, min] of [["stride", SH, 1], ["stride", SW, 1], ["pad", PH, 0], ["pad", PW, 0]] as const
  ) {
    if (!Number.isInteger(v) || v < min) {
      throw new Error(`depthwiseConv2d: ${name} must be an integer >= ${min}`);
    }
  }
  const [B, H, W, C] = xShape;
  const [KH, KW] = filterShape;
  const Ho = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const Wo = Math.floor((W + 2 * PW - KW) / SW) + 1;
  if (Ho < 1 || Wo < 1) {
    throw new Error(
      `depthwiseConv2d: kernel ${KH}x${KW} larger than padded input ${H}x${W} (pad ${PH},${PW})`,
    );
  }
  return { B, H, W, C, KH, KW, SH, SW, PH, PW, Ho, Wo };
}

/** Explicit tfjs padding for the stock backprop kernels. */
function explicitPad(
  g: DwGeometry,
): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [g.PH, g.PH], [g.PW, g.PW], [0, 0]];
}

function geomKey(g: DwGeometry): string {
  return `${g.KH}x${g.KW}_s${g.SH}x${g.SW}_p${g.PH}x${g.PW}`;
}

/** Window offsets `i*step + k` actually used by `n` outputs of a `taps`-wide kernel. */
function usedOffsets(n: number, step: number, taps: number): number[] {
  const used = new Set<number>();
  for (let i = 0; i < n; i++) for (let k = 0; k < taps; k++) used.add(i * step + k);
  return [...used].sort((a, b) => a - b);
}

const LOAD_FN = (name: string, buf: string, T: string, limit: string) => `
  fn ${name}(rowBase : i32, col : i32, c : i32) -> ${T} {
    if (col >= 0 && col < uniforms.${limit}) { return ${buf}[(rowBase + col) * uniforms.cv + c]; }
    return ${T}(0.0);
  }`;

const DW_UNIFORMS = "nThreads : i32, inH : i32, inW : i32, outH : i32, outW : i32, cv : i32, strips : i32, " +
  "rowsPerChunk : i32,";

/** One tap along one axis: output position `i` of a thread's tile reads tap `k` at window offset `j`. */
interface AxisTap {
  i: number;
  k: number;
  j: number;
}

/**
 * Forward taps along an axis: output i (of `n`), tap k reads input offset i*stride + k relative to
 * the tile's first input position (tile start * stride - pad).
 */
function forwardTaps(n: number, stride: number, taps: number): AxisTap[] {
  const out: AxisTap[] = [];
  for (let i = 0; i < n; i++) for (let k = 0; k < taps; k++) out.push({ i, k, j: i * stride + k });
  return out;
}

/**
 * Input-gradient taps along an axis: input position i (of `n`, a multiple of `stride`) receives
 * tap k from output offset (i + pad - k) / stride, relative to the tile's first input position /
 * stride, when the division is exact. Exactness is decided here, so strided kernels carry no
 * per-tap branches.
 */
function inputGradTaps(n: number, stride: number, taps: number, pad: number): AxisTap[] {
  const out: AxisTap[] = [];
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < taps; k++) {
      const off = i + pad - k;
      if (((off % stride) + stride) % stride === 0) out.push({ i, k, j: off / stride });
    }
  }
  return out;
}

const sortedUnique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const offName = (j: number) => (j < 0 ? `m${-j}` : `${j}`);

/**
 * Forward and input gradient, one program: a thread computes a tile of `rows` x `cols` outputs
 * for one channel vector. It keeps all filter taps in registers and walks the source rows the
 * tile needs once each, loading a window of the row once and feeding every (output, tap) pair
 * that reads it, so each source value is loaded once per tile instead of once per tap.
 *
 * - forward: source x [B,H,W,C], output [B,Ho,Wo,C], tap map {@link forwardTaps};
 * - inputGrad: source dy [B,Ho,Wo,C], output dx [B,H,W,C], tap map {@link inputGradTaps}, which
 *   needs the tile size along each axis to be a multiple of the stride.
 */
class DwTileProgram extends FlatProgram {
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  uniforms = DW_UNIFORMS;
  readonly comp: 1 | 4;
  readonly rows: number;
  readonly cols: number;
  readonly strips: number;
  readonly rowStrips: number;
  readonly threads: number;

  constructor(
    readonly g: DwGeometry,
    readonly mode: "forward" | "inputGrad",
    readonly hasBias: boolean,
  ) {
    super();
    this.comp = channelComponents(g.C);
    const t = kernelTuning();
    const fwd = mode === "forward";
    const [outH, outW] = fwd ? [g.Ho, g.Wo] : [g.H, g.W];
    const c0 = Math.max(1, Math.min(t.dwColsPerThread, outW));
    // Rows are cut first when the unrolled tile would exceed the FMA budget (compile time).
    const rowsByBudget = Math.floor(t.dwMaxUnrolledFma / (c0 * g.KH * g.KW));
    const r0 = Math.max(1, Math.min(t.dwRowsPerThread, outH, rowsByBudget));
    this.rows = fwd ? r0 : Math.ceil(r0 / g.SH) * g.SH;
    this.cols = fwd ? c0 : Math.ceil(c0 / g.SW) * g.SW;
    this.strips = Math.ceil(outW / this.cols);
    this.rowStrips = Math.ceil(outH / this.rows);
    this.threads = g.B * this.rowStrips * this.strips * (g.C / this.comp);
    this.outputShape = [g.B, outH, outW, g.C];
    this.variableNames = fwd ? (hasBias ? ["xIn", "wIn", "bIn"] : ["xIn", "wIn"]) : ["dyIn", "wIn"];
    this.variableComponents = this.variableNames.map(() => this.comp);
    this.outputComponent = this.comp;
    Object.assign(this, flatDispatch(this.outputShape, this.threads, t.workgroupSize));
    this.shaderKey = `xsDw_${mode}_${geomKey(g)}_c${this.comp}_t${this.rows}x${this.cols}_b${hasBias}` +
      `_wg${t.workgroupSize}`;
  }

  uniformValues(): ReturnType<typeof ints> {
    const g = this.g;
    // inH/inW are the source sizes, outH/outW the result sizes; `rowsPerChunk` carries rowStrips.
    return this.mode === "forward"
      ? ints(this.threads, g.H, g.W, g.Ho, g.Wo, g.C / this.comp, this.strips, this.rowStrips)
      : ints(this.threads, g.Ho, g.Wo, g.H, g.W, g.C / this.comp, this.strips, this.rowStrips);
  }

  /** First and last source row offsets the tile walk visits. */
  rowWalk(): [number, number] {
    const { KH, SH, PH } = this.g;
    const rows = this.rows;
    return this.mode === "forward"
      ? [0, (rows - 1) * SH + KH - 1]
      : [Math.ceil((PH - (KH - 1)) / SH), Math.floor((rows - 1 + PH) / SH)];
  }

  getUserCode(): string {
    const { KH, KW, SH, SW, PH, PW } = this.g;
    const T = floatType(this.comp);
    const { rows, cols } = this;
    const fwd = this.mode === "forward";
    const colTaps = fwd ? forwardTaps(cols, SW, KW) : inputGradTaps(cols, SW, KW, PW);
    const src = fwd ? "xIn" : "dyIn";
    // Source rows are walked by a runtime loop (fully unrolled 2D tiles with every tap hoisted
    // made LLVM take tens of seconds to compile 7x7 kernels); within a row, the window loads
    // and the (column, tap) pairs are unrolled. Row q of the walk feeds tile row i through
    // filter row kh = q - i*SH (forward) or kh = i + PH - q*SH (input grad) when 0 <= kh < KH.
    const [qMin, qMax] = this.rowWalk();
    const colOffsets = sortedUnique(colTaps.map((t) => t.j));
    const usedKw = sortedUnique(colTaps.map((t) => t.k));
    const body: string[] = [];
    for (const jc of colOffsets) body.push(`let s${offName(jc)} = xsLoad(srcRow, col0 + ${jc}, c);`);
    for (let i = 0; i < rows; i++) {
      const kh = fwd ? `q - ${i * SH}` : `${i + PH} - q * ${SH}`;
      const inner: string[] = [];
      for (const kw of usedKw) {
        const tap = `kh * ${KW} + ${kw}`;
        inner.push(`let w${kw} = wIn[(${tap}) * cv + c];`);
      }
      for (const ct of colTaps) {
        inner.push(`a${i}_${ct.i} = fma(s${offName(ct.j)}, w${ct.k}, a${i}_${ct.i});`);
      }
      body.push(`{
            let kh = ${kh};
            if (kh >= 0 && kh < ${KH}) {
              ${inner.join("\n              ")}
            }
          }`);
    }
    // A strided forward with fewer filter rows than the stride (1x1 stride 2) skips the source
    // rows no output reads; the walk is unrolled, so the test costs nothing at run time.
    const rowUsed = fwd && KH < SH ? ` && q % ${SH} < ${KH}` : "";
    const lines = [`for (var q = ${qMin}; q <= ${qMax}; q++) {
          let srcR = row0 + q;
          if (srcR >= 0 && srcR < uniforms.inH${rowUsed}) {
            let srcRow = (b * uniforms.inH + srcR) * uniforms.inW;
            ${body.join("\n            ")}
          }
        }`];
    const accs: string[] = [];
    const writes: string[] = [];
    const bias = this.hasBias ? " + bIn[c]" : "";
    for (let i = 0; i < rows; i++) {
      const rowWrites: string[] = [];
      for (let k = 0; k < cols; k++) {
        accs.push(`var a${i}_${k} = ${T}(0.0);`);
        rowWrites.push(
          `if (out0 + ${k} < uniforms.outW) { result[(orow + out0 + ${k}) * cv + c] = a${i}_${k}${bias}; }`,
        );
      }
      writes.push(`if (outR0 + ${i} < uniforms.outH) {
        let orow = (b * uniforms.outH + outR0 + ${i}) * uniforms.outW;
        ${rowWrites.join("\n        ")}
      }`);
    }
    // Source tile origin: forward reads from (tile start * stride - pad); input grad from
    // (tile start / stride), the tile start being a multiple of the stride.
    const origin = fwd
      ? `let row0 = outR0 * ${SH} - ${PH};
         let col0 = out0 * ${SW} - ${PW};`
      : `let row0 = rs * ${rows / SH};
         let col0 = strip * ${cols / SW};`;
    return `
      fn xsLoad(rowBase : i32, col : i32, c : i32) -> ${T} {
        if (col >= 0 && col < uniforms.inW) { return ${src}[(rowBase + col) * uniforms.cv + c]; }
        return ${T}(0.0);
      }` + channelMain(
      `
        let strip = t % uniforms.strips;
        t = t / uniforms.strips;
        let rs = t % uniforms.rowsPerChunk;
        let b = t / uniforms.rowsPerChunk;
        let out0 = strip * ${cols};
        let outR0 = rs * ${rows};
        ${origin}
        ${accs.join("\n        ")}
        ${lines.join("\n        ")}
        ${writes.join("\n        ")}`,
      { mutableRest: true },
    );
  }
}

/**
 * Filter gradient, stage 1: thread (chunk, filter-row group, channel vector) sums x * dy over a
 * chunk of output rows (flattened over batch and height) for the taps of `rowsPerThread` filter
 * rows, giving partial sums [chunks, KH, KW, C]; stage 2 ({@link ColumnSumProgram}) adds the
 * chunks. Grouping filter rows shares each dy load among them (fewer loads, more accumulators:
 * right for CPU rasterisers; GPUs keep one filter row per thread for occupancy).
 */
class DwFilterPartialProgram extends FlatProgram {
  variableNames = ["xIn", "dyIn"];
  variableComponents: number[];
  outputComponent: number;
  uniforms = DW_UNIFORMS;
  readonly comp: 1 | 4;
  readonly n: number;
  /** Filter rows per thread. */
  readonly rg: number;
  /** Filter-row groups: ceil(KH / rg). */
  readonly groups: number;
  readonly threads: number;

  constructor(readonly g: DwGeometry, readonly chunks: number, readonly rowsPerChunk: number) {
    super();
    this.comp = channelComponents(g.C);
    const t = kernelTuning();
    this.n = Math.max(1, Math.min(t.dwFilterGradCols, g.Wo));
    this.rg = DwFilterPartialProgram.tapRows(g);
    this.groups = Math.ceil(g.KH / this.rg);
    this.threads = chunks * this.groups * (g.C / this.comp);
    this.outputShape = chunks === 1 ? [g.KH, g.KW, g.C, 1] : [chunks, g.KH, g.KW, g.C];
    this.variableComponents = [this.comp, this.comp];
    this.outputComponent = this.comp;
    Object.assign(this, flatDispatch(this.outputShape, this.threads, t.workgroupSize));
    this.shaderKey = `xsDwDw_${geomKey(g)}_c${this.comp}_n${this.n}_r${this.rg}_wg${t.workgroupSize}`;
  }

  /** Filter rows per thread: the tuning's, cut to keep the unrolled body within the FMA budget. */
  static tapRows(g: DwGeometry): number {
    const t = kernelTuning();
    const n = Math.max(1, Math.min(t.dwFilterGradCols, g.Wo));
    const byBudget = Math.floor(t.dwMaxUnrolledFma / 5 / (n * g.KW));
    return Math.max(1, Math.min(t.dwFilterGradTapRows, g.KH, byBudget));
  }

  /** Lanes (threads per chunk) of stage 1, for choosing the chunk count. */
  static lanes(g: DwGeometry): number {
    return Math.ceil(g.KH / DwFilterPartialProgram.tapRows(g)) * (g.C / channelComponents(g.C));
  }

  uniformValues(): ReturnType<typeof ints> {
    const g = this.g;
    // `strips` carries the total dy row count B*Ho here.
    return ints(this.threads, g.H, g.W, g.Ho, g.Wo, g.C / this.comp, g.B * g.Ho, this.rowsPerChunk);
  }

  getUserCode(): string {
    const { KH, KW, SH, SW, PH, PW } = this.g;
    const T = floatType(this.comp);
    const { n, rg, groups } = this;
    const used = usedOffsets(n, SW, KW);
    const partial = KH % rg !== 0;
    const dyLoads: string[] = [];
    for (let i = 0; i < n; i++) dyLoads.push(`let g${i} = xsLoadDy(dyRow, ow0 + ${i}, c);`);
    const rowBlocks: string[] = [];
    for (let q = 0; q < rg; q++) {
      const body: string[] = [];
      for (const j of used) body.push(`let x${q}_${j} = xsLoadX(xRow${q}, iw0 + ${j}, c);`);
      for (let i = 0; i < n; i++) {
        for (let kw = 0; kw < KW; kw++) {
          body.push(`a${q}_${kw} = fma(g${i}, x${q}_${i * SW + kw}, a${q}_${kw});`);
        }
      }
      rowBlocks.push(`if (ok${q}) {\n${body.join("\n")}\n}`);
    }
    const rowSetup: string[] = [];
    for (let q = 0; q < rg; q++) {
      const khOk = partial ? ` && kh0 + ${q} < ${KH}` : "";
      rowSetup.push(`let ih${q} = ihBase + ${q};`);
      rowSetup.push(`let ok${q} = ih${q} >= 0 && ih${q} < uniforms.inH${khOk};`);
      rowSetup.push(`let xRow${q} = (b * uniforms.inH + ih${q}) * uniforms.inW;`);
    }
    const accs: string[] = [];
    const writes: string[] = [];
    for (let q = 0; q < rg; q++) {
      for (let kw = 0; kw < KW; kw++) {
        accs.push(`var a${q}_${kw} = ${T}(0.0);`);
        const w = `result[((chunk * ${KH} + kh0 + ${q}) * ${KW} + ${kw}) * cv + c] = a${q}_${kw};`;
        writes.push(partial ? `if (kh0 + ${q} < ${KH}) { ${w} }` : w);
      }
    }
    return `
      ${LOAD_FN("xsLoadX", "xIn", T, "inW")}
      ${LOAD_FN("xsLoadDy", "dyIn", T, "outW")}` + channelMain(`
        let kh0 = (t % ${groups}) * ${rg};
        let chunk = t / ${groups};
        let r0 = chunk * uniforms.rowsPerChunk;
        let r1 = min(r0 + uniforms.rowsPerChunk, uniforms.strips);
        ${accs.join("\n")}
        for (var r = r0; r < r1; r++) {
          let b = r / uniforms.outH;
          let oh = r - b * uniforms.outH;
          let ihBase = oh * ${SH} - ${PH} + kh0;
          ${rowSetup.join("\n")}
          let dyRow = r * uniforms.outW;
          for (var ow0 = 0; ow0 < uniforms.outW; ow0 += ${n}) {
            let iw0 = ow0 * ${SW} - ${PW};
            ${dyLoads.join("\n")}
            ${rowBlocks.join("\n")}
          }
        }
        ${writes.join("\n")}`);
  }
}

type Inputs = Record<string, tf.TensorInfo | undefined>;
type Attrs = Record<string, unknown>;

function convAttrs(attrs: Attrs): { strides: [number, number]; pad: [number, number] } {
  return { strides: attrs.strides as [number, number], pad: attrs.pad as [number, number] };
}

/** webgpu kernelFunc of {@link XS_DEPTHWISE}. */
export function dwForwardWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { x, filter, bias } = args.inputs as {
    x: tf.TensorInfo;
    filter: tf.TensorInfo;
    bias?: tf.TensorInfo;
  };
  const { strides, pad } = convAttrs(args.attrs ?? {});
  const g = dwGeometry(x.shape, filter.shape, strides, pad);
  assertFloat32(x, "depthwiseConv2d x");
  assertFloat32(filter, "depthwiseConv2d filter");
  const p = new DwTileProgram(g, "forward", bias != null);
  return run(gpuBackend(args.backend), p, bias ? [x, filter, bias] : [x, filter], p.uniformValues());
}

/** webgpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_INPUT}. */
export function dwInputGradWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(attrs.inShape as number[], filter.shape, strides, pad);
  const p = new DwTileProgram(g, "inputGrad", false);
  return run(gpuBackend(args.backend), p, [dy, filter], p.uniformValues());
}

/** webgpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_FILTER} (two stages: partial sums, then their sum). */
export function dwFilterGradWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(x.shape, attrs.filterShape as number[], strides, pad);
  const backend = gpuBackend(args.backend);
  const { chunks, rowsPerChunk } = splitRows(g.B * g.Ho, DwFilterPartialProgram.lanes(g));
  const p1 = new DwFilterPartialProgram(g, chunks, rowsPerChunk);
  const partial = run(backend, p1, [x, dy], p1.uniformValues());
  if (chunks === 1) return partial;
  const m = g.KH * g.KW * g.C;
  const p2 = new ColumnSumProgram(1, chunks, m, 1, chunks, false, [g.KH, g.KW, g.C, 1]);
  const out = run(backend, p2, [partial], p2.uniformValues());
  backend.disposeData(partial.dataId);
  return out;
}

/** webgpu kernelFunc of {@link XS_CHANNEL_SUM}: sums an NHWC tensor over B, H and W. */
export function channelSumWebGPU(args: { inputs: Inputs; backend: unknown }): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const c = x.shape[x.shape.length - 1];
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return columnSum(gpuBackend(args.backend), x, 1, rows, c, [c]);
}

/**
 * The stock-op depthwise forward: explicit `tf.pad` then `tf.depthwiseConv2d` with 'valid'
 * padding (plus bias). Differentiable through tfjs's own gradients; the baseline of the benchmarks.
 */
export function depthwiseConv2dStock(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  options: DepthwiseConvOptions,
  bias?: tf.Tensor1D,
): tf.Tensor4D {
  dwGeometry(x.shape, filter.shape, options.strides, options.pad);
  return tf.tidy(() => {
    const [ph, pw] = options.pad;
    const padded = ph === 0 && pw === 0 ? x : tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
    const y = tf.depthwiseConv2d(padded, filter, options.strides, "valid");
    return bias ? tf.add(y, bias) : y;
  });
}

/** cpu kernelFunc of {@link XS_DEPTHWISE}, from stock ops. */
export function dwForwardStockKernel(args: { inputs: Inputs; attrs?: Attrs }): tf.TensorInfo {
  const { x, filter, bias } = args.inputs as { x: tf.Tensor4D; filter: tf.Tensor4D; bias?: tf.Tensor1D };
  return depthwiseConv2dStock(x, filter, convAttrs(args.attrs ?? {}), bias);
}

/** cpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_INPUT}, from tfjs's own backprop kernel. */
export function dwInputGradStockKernel(args: { inputs: Inputs; attrs?: Attrs }): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.Tensor4D; filter: tf.Tensor4D };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(attrs.inShape as number[], filter.shape, strides, pad);
  return tf.engine().runKernel<tf.Tensor>("DepthwiseConv2dNativeBackpropInput", { dy, filter }, {
    strides,
    dilations: [1, 1],
    pad: explicitPad(g),
    inputShape: attrs.inShape as number[],
  });
}

/** cpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_FILTER}, from tfjs's own backprop kernel. */
export function dwFilterGradStockKernel(args: { inputs: Inputs; attrs?: Attrs }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(x.shape, attrs.filterShape as number[], strides, pad);
  return tf.engine().runKernel<tf.Tensor>("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
    strides,
    dilations: [1, 1],
    pad: explicitPad(g),
    filterShape: attrs.filterShape as number[],
  });
}

/** cpu kernelFunc of {@link XS_CHANNEL_SUM}. */
export function channelSumStockKernel(args: { inputs: Inputs }): tf.TensorInfo {
  const x = args.inputs.x as tf.Tensor;
  return tf.sum(x, x.shape.slice(0, -1).map((_, i) => i));
}
