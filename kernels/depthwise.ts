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
  flatDispatch,
  floatType,
  gpuBackend,
  ints,
  kernelTuning,
  run,
  splitRows,
} from "./common.ts";
import type { WebGPUProgram } from "./common.ts";
import { columnSum, ColumnSumProgram } from "./reduce.ts";

/** Registered kernel: depthwise forward. Inputs `x`, `filter`, optional `bias`; attrs `strides`, `pad`. */
export const XS_DEPTHWISE = "XsDepthwiseConv2d";
/** Registered kernel: input gradient. Inputs `dy`, `filter`; attrs `inShape`, `strides`, `pad`, `unflippedTaps`. */
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

/**
 * Forward: one thread computes `n` adjacent output columns of one row for one channel vector,
 * sliding a register window along the input row so each input value is loaded once per row.
 */
class DwForwardProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: WebGPUProgram["dispatchLayout"];
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  uniforms = DW_UNIFORMS;
  readonly comp: 1 | 4;
  readonly n: number;
  readonly strips: number;
  readonly threads: number;

  constructor(readonly g: DwGeometry, readonly hasBias: boolean) {
    this.comp = channelComponents(g.C);
    const t = kernelTuning();
    this.n = Math.max(1, Math.min(t.dwColsPerThread, g.Wo));
    this.strips = Math.ceil(g.Wo / this.n);
    this.threads = g.B * g.Ho * this.strips * (g.C / this.comp);
    this.outputShape = [g.B, g.Ho, g.Wo, g.C];
    this.variableNames = hasBias ? ["xIn", "wIn", "bIn"] : ["xIn", "wIn"];
    this.variableComponents = this.variableNames.map(() => this.comp);
    this.outputComponent = this.comp;
    const fd = flatDispatch(this.outputShape, this.threads, t.workgroupSize);
    this.dispatchLayout = fd.dispatchLayout;
    this.dispatch = fd.dispatch;
    this.workgroupSize = fd.workgroupSize;
    this.shaderKey = `xsDwFwd_${geomKey(g)}_c${this.comp}_n${this.n}_b${hasBias}_wg${t.workgroupSize}`;
  }

  uniformValues(): ReturnType<typeof ints> {
    const g = this.g;
    return ints(this.threads, g.H, g.W, g.Ho, g.Wo, g.C / this.comp, this.strips, 0);
  }

  getUserCode(): string {
    const { KH, KW, SW, SH, PH, PW } = this.g;
    const T = floatType(this.comp);
    const n = this.n;
    const used = usedOffsets(n, SW, KW);
    const lines: string[] = [];
    for (const j of used) lines.push(`let x${j} = xsLoadX(rowBase, iw0 + ${j}, c);`);
    for (let kw = 0; kw < KW; kw++) lines.push(`let w${kw} = wIn[(wRow + ${kw}) * cv + c];`);
    for (let i = 0; i < n; i++) {
      for (let kw = 0; kw < KW; kw++) lines.push(`a${i} = fma(x${i * SW + kw}, w${kw}, a${i});`);
    }
    const accs = Array.from({ length: n }, (_, i) => `var a${i} = ${T}(0.0);`).join("\n");
    const bias = this.hasBias ? " + bIn[c]" : "";
    const writes = Array.from(
      { length: n },
      (_, i) => `if (ow0 + ${i} < uniforms.outW) { result[(outRow + ow0 + ${i}) * cv + c] = a${i}${bias}; }`,
    ).join("\n");
    return `
      ${LOAD_FN("xsLoadX", "xIn", T, "inW")}
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let cv = uniforms.cv;
        let c = index % cv;
        var t = index / cv;
        let strip = t % uniforms.strips;
        t = t / uniforms.strips;
        let oh = t % uniforms.outH;
        let b = t / uniforms.outH;
        let ow0 = strip * ${n};
        let iw0 = ow0 * ${SW} - ${PW};
        let ih0 = oh * ${SH} - ${PH};
        ${accs}
        for (var kh = 0; kh < ${KH}; kh++) {
          let ih = ih0 + kh;
          if (ih >= 0 && ih < uniforms.inH) {
            let rowBase = (b * uniforms.inH + ih) * uniforms.inW;
            let wRow = kh * ${KW};
            ${lines.join("\n            ")}
          }
        }
        let outRow = (b * uniforms.outH + oh) * uniforms.outW;
        ${writes}
      }
    `;
  }
}

/**
 * Input gradient: one thread computes `n` adjacent input columns of one row. For input column
 * iw and tap kw the contributing output column is (iw + PW - kw) / SW when that divides exactly;
 * with `n` a multiple of SW the divisibility is known when the WGSL is generated, so the strided
 * case needs no per-tap branches. `unflippedTaps` (test only) reads the filter rotated by 180
 * degrees, the classic bug, so tests can prove they would catch it.
 */
class DwInputGradProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: WebGPUProgram["dispatchLayout"];
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ["dyIn", "wIn"];
  variableComponents: number[];
  outputComponent: number;
  uniforms = DW_UNIFORMS;
  readonly comp: 1 | 4;
  readonly n: number;
  readonly strips: number;
  readonly threads: number;

  constructor(readonly g: DwGeometry, readonly unflipped: boolean) {
    this.comp = channelComponents(g.C);
    const t = kernelTuning();
    const n0 = Math.max(1, Math.min(t.dwColsPerThread, g.W));
    this.n = Math.ceil(n0 / g.SW) * g.SW;
    this.strips = Math.ceil(g.W / this.n);
    this.threads = g.B * g.H * this.strips * (g.C / this.comp);
    this.outputShape = [g.B, g.H, g.W, g.C];
    this.variableComponents = [this.comp, this.comp];
    this.outputComponent = this.comp;
    const fd = flatDispatch(this.outputShape, this.threads, t.workgroupSize);
    this.dispatchLayout = fd.dispatchLayout;
    this.dispatch = fd.dispatch;
    this.workgroupSize = fd.workgroupSize;
    this.shaderKey = `xsDwDx_${geomKey(g)}_c${this.comp}_n${this.n}_u${unflipped}_wg${t.workgroupSize}`;
  }

  uniformValues(): ReturnType<typeof ints> {
    const g = this.g;
    return ints(this.threads, g.H, g.W, g.Ho, g.Wo, g.C / this.comp, this.strips, 0);
  }

  getUserCode(): string {
    const { KH, KW, SH, SW, PH, PW } = this.g;
    const T = floatType(this.comp);
    const n = this.n;
    // For column i of the strip and tap kw: output column offset d (relative to strip*n/SW).
    const taps: Array<{ i: number; kw: number; d: number }> = [];
    for (let i = 0; i < n; i++) {
      for (let kw = 0; kw < KW; kw++) {
        const off = i + PW - kw;
        if (((off % SW) + SW) % SW === 0) taps.push({ i, kw, d: off / SW });
      }
    }
    const ds = [...new Set(taps.map((t) => t.d))].sort((a, b) => a - b);
    const name = (d: number) => `y${d < 0 ? "m" + -d : d}`;
    const lines: string[] = [];
    for (const d of ds) lines.push(`let ${name(d)} = xsLoadDy(rowBase, ow0 + ${d}, c);`);
    const usedKw = [...new Set(taps.map((t) => t.kw))].sort((a, b) => a - b);
    for (const kw of usedKw) {
      const tap = this.unflipped ? `(${KH - 1} - kh) * ${KW} + ${KW - 1 - kw}` : `kh * ${KW} + ${kw}`;
      lines.push(`let w${kw} = wIn[(${tap}) * cv + c];`);
    }
    for (const { i, kw, d } of taps) lines.push(`a${i} = fma(${name(d)}, w${kw}, a${i});`);
    const rowCheck = SH === 1 ? "tt >= 0" : `tt >= 0 && tt % ${SH} == 0`;
    const accs = Array.from({ length: n }, (_, i) => `var a${i} = ${T}(0.0);`).join("\n");
    const writes = Array.from(
      { length: n },
      (_, i) => `if (iw0 + ${i} < uniforms.inW) { result[(outRow + iw0 + ${i}) * cv + c] = a${i}; }`,
    ).join("\n");
    return `
      ${LOAD_FN("xsLoadDy", "dyIn", T, "outW")}
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let cv = uniforms.cv;
        let c = index % cv;
        var t = index / cv;
        let strip = t % uniforms.strips;
        t = t / uniforms.strips;
        let ih = t % uniforms.inH;
        let b = t / uniforms.inH;
        let iw0 = strip * ${n};
        let ow0 = strip * ${n / SW};
        ${accs}
        for (var kh = 0; kh < ${KH}; kh++) {
          let tt = ih + ${PH} - kh;
          if (${rowCheck}) {
            let oh = tt / ${SH};
            if (oh < uniforms.outH) {
              let rowBase = (b * uniforms.outH + oh) * uniforms.outW;
              ${lines.join("\n              ")}
            }
          }
        }
        let outRow = (b * uniforms.inH + ih) * uniforms.inW;
        ${writes}
      }
    `;
  }
}

/**
 * Filter gradient, stage 1: thread (chunk, kh, channel vector) sums x * dy over a chunk of
 * output rows (flattened over batch and height) for the KW taps of filter row kh, giving partial
 * sums [chunks, KH, KW, C]; stage 2 ({@link ColumnSumProgram}) adds the chunks.
 */
class DwFilterPartialProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: WebGPUProgram["dispatchLayout"];
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ["xIn", "dyIn"];
  variableComponents: number[];
  outputComponent: number;
  uniforms = DW_UNIFORMS;
  readonly comp: 1 | 4;
  readonly n: number;
  readonly threads: number;

  constructor(readonly g: DwGeometry, readonly chunks: number, readonly rowsPerChunk: number) {
    this.comp = channelComponents(g.C);
    const t = kernelTuning();
    this.n = Math.max(1, Math.min(t.dwFilterGradCols, g.Wo));
    this.threads = chunks * g.KH * (g.C / this.comp);
    this.outputShape = chunks === 1 ? [g.KH, g.KW, g.C, 1] : [chunks, g.KH, g.KW, g.C];
    this.variableComponents = [this.comp, this.comp];
    this.outputComponent = this.comp;
    const fd = flatDispatch(this.outputShape, this.threads, t.workgroupSize);
    this.dispatchLayout = fd.dispatchLayout;
    this.dispatch = fd.dispatch;
    this.workgroupSize = fd.workgroupSize;
    this.shaderKey = `xsDwDw_${geomKey(g)}_c${this.comp}_n${this.n}_wg${t.workgroupSize}`;
  }

  uniformValues(): ReturnType<typeof ints> {
    const g = this.g;
    // `strips` carries the total dy row count B*Ho here.
    return ints(this.threads, g.H, g.W, g.Ho, g.Wo, g.C / this.comp, g.B * g.Ho, this.rowsPerChunk);
  }

  getUserCode(): string {
    const { KH, KW, SH, SW, PH, PW } = this.g;
    const T = floatType(this.comp);
    const n = this.n;
    const used = usedOffsets(n, SW, KW);
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`let g${i} = xsLoadDy(dyRow, ow0 + ${i}, c);`);
    for (const j of used) lines.push(`let x${j} = xsLoadX(xRow, iw0 + ${j}, c);`);
    for (let i = 0; i < n; i++) {
      for (let kw = 0; kw < KW; kw++) lines.push(`a${kw} = fma(g${i}, x${i * SW + kw}, a${kw});`);
    }
    const accs = Array.from({ length: KW }, (_, k) => `var a${k} = ${T}(0.0);`).join("\n");
    const writes = Array.from(
      { length: KW },
      (_, k) => `result[((chunk * ${KH} + kh) * ${KW} + ${k}) * cv + c] = a${k};`,
    ).join("\n");
    return `
      ${LOAD_FN("xsLoadX", "xIn", T, "inW")}
      ${LOAD_FN("xsLoadDy", "dyIn", T, "outW")}
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let cv = uniforms.cv;
        let c = index % cv;
        let t = index / cv;
        let kh = t % ${KH};
        let chunk = t / ${KH};
        let r0 = chunk * uniforms.rowsPerChunk;
        let r1 = min(r0 + uniforms.rowsPerChunk, uniforms.strips);
        ${accs}
        for (var r = r0; r < r1; r++) {
          let b = r / uniforms.outH;
          let oh = r - b * uniforms.outH;
          let ih = oh * ${SH} - ${PH} + kh;
          if (ih >= 0 && ih < uniforms.inH) {
            let xRow = (b * uniforms.inH + ih) * uniforms.inW;
            let dyRow = r * uniforms.outW;
            for (var ow0 = 0; ow0 < uniforms.outW; ow0 += ${n}) {
              let iw0 = ow0 * ${SW} - ${PW};
              ${lines.join("\n              ")}
            }
          }
        }
        ${writes}
      }
    `;
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
  const p = new DwForwardProgram(g, bias != null);
  return run(gpuBackend(args.backend), p, bias ? [x, filter, bias] : [x, filter], p.uniformValues());
}

/** webgpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_INPUT}. */
export function dwInputGradWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(attrs.inShape as number[], filter.shape, strides, pad);
  const p = new DwInputGradProgram(g, Boolean(attrs.unflippedTaps));
  return run(gpuBackend(args.backend), p, [dy, filter], p.uniformValues());
}

/** webgpu kernelFunc of {@link XS_DEPTHWISE_BACKPROP_FILTER} (two stages: partial sums, then their sum). */
export function dwFilterGradWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs ?? {};
  const { strides, pad } = convAttrs(attrs);
  const g = dwGeometry(x.shape, attrs.filterShape as number[], strides, pad);
  const backend = gpuBackend(args.backend);
  const lanes = g.KH * (g.C / channelComponents(g.C));
  const { chunks, rowsPerChunk } = splitRows(g.B * g.Ho, lanes);
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
