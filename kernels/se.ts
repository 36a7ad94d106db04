/**
 * Fused Squeeze-and-Excitation (SE) block on NHWC tensors:
 *
 *   s = mean_hw(x);  a = act(s @ w1 + b1);  g = gate(a @ w2 + b2);  y = x * g
 *
 * with act = ReLU or SiLU and gate = sigmoid or hard-sigmoid (relu6(z + 3) / 6, GhostNet).
 *
 * Forward is three dispatches: split pooling partial sums ({@link ColumnSumProgram}), a squeeze
 * kernel with one workgroup per image that folds the partials and runs both FC layers through
 * workgroup memory, and a channel-scale kernel. Backward is seven: one pass over x and dy for
 * sum(x) and sum(dy*x), a per-image kernel that recomputes the squeeze and backpropagates
 * through it, the dx kernel and four tiny weight/bias-gradient kernels.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import type { WebGPUBackend } from "../runtime/tf.ts";
import {
  assertFloat32,
  channelComponents,
  channelMain,
  flatDispatch,
  FlatProgram,
  gpuBackend,
  ints,
  kernelTuning,
  run,
  splitRows,
} from "./common.ts";
import type { ProgramUniforms, WebGPUProgram } from "./common.ts";
import { ColumnSumProgram } from "./reduce.ts";

/** Registered kernel: SE forward. Inputs `x`, `w1`, `b1`, `w2`, `b2`; attrs `act`, `gate`. */
export const XS_SQUEEZE_EXCITE = "XsSqueezeExcite";
/** Registered kernel: SE backward. Inputs `dy`, `x`, `w1`, `b1`, `w2`, `b2`; outputs dx, dw1, db1, dw2, db2. */
export const XS_SQUEEZE_EXCITE_GRAD = "XsSqueezeExciteGrad";

/** Activation after the reduce FC. */
export type SeActivation = "relu" | "silu";
/** Gate after the expand FC: sigmoid, or hard-sigmoid relu6(z + 3) / 6. */
export type SeGate = "sigmoid" | "hardsigmoid";

/** SE parameters: w1 [C, Cr], b1 [Cr], w2 [Cr, C], b2 [C]. */
export interface SeWeights {
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

/** SE nonlinearities. */
export interface SeOptions {
  act: SeActivation;
  gate: SeGate;
}

interface SeShape {
  B: number;
  HW: number;
  C: number;
  Cr: number;
}

/** Validates SE shapes and options (throws on misuse). */
export function seShape(xShape: readonly number[], w1Shape: readonly number[], opts: SeOptions): SeShape & {
  H: number;
  W: number;
} {
  if (xShape.length !== 4) throw new Error(`squeezeExcite: x must be [B,H,W,C], got [${xShape}]`);
  const [B, H, W, C] = xShape;
  if (w1Shape.length !== 2 || w1Shape[0] !== C) {
    throw new Error(`squeezeExcite: w1 must be [C=${C}, Cr], got [${w1Shape}]`);
  }
  if (opts.act !== "relu" && opts.act !== "silu") throw new Error(`squeezeExcite: unknown act ${opts.act}`);
  if (opts.gate !== "sigmoid" && opts.gate !== "hardsigmoid") {
    throw new Error(`squeezeExcite: unknown gate ${opts.gate}`);
  }
  return { B, H, W, HW: H * W, C, Cr: w1Shape[1] };
}

function checkWeights(s: SeShape, w: Record<string, tf.TensorInfo>): void {
  const want: Record<string, number[]> = { w1: [s.C, s.Cr], b1: [s.Cr], w2: [s.Cr, s.C], b2: [s.C] };
  for (const [k, shape] of Object.entries(want)) {
    if (w[k].shape.join(",") !== shape.join(",")) {
      throw new Error(`squeezeExcite: ${k} must be [${shape}], got [${w[k].shape}]`);
    }
    assertFloat32(w[k], `squeezeExcite ${k}`);
  }
}

const ACT_WGSL: Record<SeActivation, string> = {
  relu: `fn xsAct(z : f32) -> f32 { return max(z, 0.0); }
         fn xsActDeriv(z : f32) -> f32 { return select(0.0, 1.0, z > 0.0); }`,
  silu: `fn xsAct(z : f32) -> f32 { return z / (1.0 + exp(-z)); }
         fn xsActDeriv(z : f32) -> f32 { let s = 1.0 / (1.0 + exp(-z)); return s * (1.0 + z * (1.0 - s)); }`,
};

// The hard-sigmoid derivative mask matches tfjs's relu6 gradient (0 < z + 3 <= 6).
const GATE_WGSL: Record<SeGate, string> = {
  sigmoid: `fn xsGate(z : f32) -> f32 { return 1.0 / (1.0 + exp(-z)); }
            fn xsGateDeriv(z : f32, g : f32) -> f32 { return g * (1.0 - g); }`,
  hardsigmoid: `fn xsGate(z : f32) -> f32 { return clamp(z + 3.0, 0.0, 6.0) / 6.0; }
                fn xsGateDeriv(z : f32, g : f32) -> f32 {
                  let u = z + 3.0;
                  return select(0.0, 1.0 / 6.0, u > 0.0 && u <= 6.0);
                }`,
};

/** Row stride of the packed per-image backward record [g | ds/HW | s | dz2 | a | dz1]. */
function packedLayout(C: number, Cr: number) {
  const cr4 = Math.ceil(Cr / 4) * 4;
  return { P: 4 * C + 2 * cr4, g: 0, dsHW: C, s: 2 * C, dz2: 3 * C, a: 4 * C, dz1: 4 * C + cr4 };
}

/** Workgroup-memory floats the squeeze kernels need; beyond the device limit the stock path runs. */
function squeezeSharedBytes(C: number, Cr: number): number {
  return 4 * (C + 2 * Cr);
}

/**
 * One workgroup per `group` images: folds the pooling partials, then FC1 + act and FC2 + gate
 * through workgroup memory. Each thread keeps one accumulator per image of its group, so every
 * weight it loads feeds `group` multiply-adds (the MLP is weight-load bound on CPU rasterisers).
 * With `backward`, also backpropagates the dy*x sums through the MLP and writes the packed
 * record (see {@link packedLayout}); otherwise writes the gate g [B, C].
 */
class SeSqueezeProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: WebGPUProgram["dispatchLayout"];
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ["partIn", "w1In", "b1In", "w2In", "b2In"];
  uniforms = "chunks : i32, invHW : f32, images : i32,";
  readonly wg: number;

  constructor(
    readonly s: SeShape,
    readonly opts: SeOptions,
    readonly chunks: number,
    readonly backward: boolean,
    readonly group: number,
  ) {
    this.wg = kernelTuning().seWorkgroupSize;
    this.outputShape = backward ? [s.B, packedLayout(s.C, s.Cr).P] : [s.B, s.C];
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = [Math.ceil(s.B / group), 1, 1];
    this.workgroupSize = [this.wg, 1, 1];
    this.shaderKey = `xsSeSqueeze_${backward ? "bwd" : "fwd"}_${s.C}_${s.Cr}_${opts.act}_${opts.gate}` +
      `_${this.wg}_g${group}`;
  }

  uniformValues(): ProgramUniforms {
    return [
      { type: "int32", data: [this.chunks] },
      { type: "float32", data: [1 / this.s.HW] },
      { type: "int32", data: [this.s.B] },
    ];
  }

  getUserCode(): string {
    const { C, Cr } = this.s;
    const { wg: WG, group: G } = this;
    const L = packedLayout(C, Cr);
    const stride = this.backward ? 2 : 1;
    const gs = Array.from({ length: G }, (_, g) => g);
    /** One statement per image of the group, `g` substituted. */
    const each = (f: (g: number) => string) => gs.map(f).join("\n");
    const head = `
      ${ACT_WGSL[this.opts.act]}
      ${GATE_WGSL[this.opts.gate]}
      var<workgroup> xsVec : array<f32, ${G * C}>;
      var<workgroup> xsZ1 : array<f32, ${G * Cr}>;
      var<workgroup> xsHid : array<f32, ${G * Cr}>;
      fn xsPartial(b : i32, which : i32, c : i32) -> f32 {
        var acc = 0.0;
        if (b < uniforms.images) {
          for (var k = 0; k < uniforms.chunks; k++) {
            acc += partIn[((b * uniforms.chunks + k) * ${stride} + which) * ${C} + c];
          }
        }
        return acc;
      }
      fn main(index : i32) {
        let b0 = (index / ${WG}) * ${G};
        let t = index % ${WG};
        for (var c = t; c < ${C}; c += ${WG}) {
          ${each((g) => `xsVec[${g * C} + c] = xsPartial(b0 + ${g}, 0, c) * uniforms.invHW;`)}
        }
        workgroupBarrier();
        for (var j = t; j < ${Cr}; j += ${WG}) {
          let bias = b1In[j];
          ${each((g) => `var z${g} = bias;`)}
          for (var c = 0; c < ${C}; c++) {
            let w = w1In[c * ${Cr} + j];
            ${each((g) => `z${g} = fma(xsVec[${g * C} + c], w, z${g});`)}
          }
          ${each((g) => `xsZ1[${g * Cr} + j] = z${g}; xsHid[${g * Cr} + j] = xsAct(z${g});`)}
        }
        workgroupBarrier();`;
    const fc2 = `
          let bias = b2In[c];
          ${each((g) => `var z${g} = bias;`)}
          for (var j = 0; j < ${Cr}; j++) {
            let w = w2In[j * ${C} + c];
            ${each((g) => `z${g} = fma(xsHid[${g * Cr} + j], w, z${g});`)}
          }`;
    const live = (g: number, stmt: string) => `if (b0 + ${g} < uniforms.images) { ${stmt} }`;
    if (!this.backward) {
      return `${head}
        for (var c = t; c < ${C}; c += ${WG}) {
          ${fc2}
          ${each((g) => live(g, `result[(b0 + ${g}) * ${C} + c] = xsGate(z${g});`))}
        }
      }`;
    }
    const row = (g: number) => `(b0 + ${g}) * ${L.P}`;
    return `${head}
        for (var c = t; c < ${C}; c += ${WG}) {
          ${each((g) => live(g, `result[${row(g)} + ${L.s} + c] = xsVec[${g * C} + c];`))}
        }
        for (var j = t; j < ${Cr}; j += ${WG}) {
          ${each((g) => live(g, `result[${row(g)} + ${L.a} + j] = xsHid[${g * Cr} + j];`))}
        }
        workgroupBarrier();
        // xsVec now changes from the pooled input s to dz2 (its readers finished at the barrier).
        for (var c = t; c < ${C}; c += ${WG}) {
          ${fc2}
          ${
      each((g) =>
        `let g${g} = xsGate(z${g});
          let dz2_${g} = xsPartial(b0 + ${g}, 1, c) * xsGateDeriv(z${g}, g${g});
          xsVec[${g * C} + c] = dz2_${g};
          ${live(g, `result[${row(g)} + ${L.g} + c] = g${g}; result[${row(g)} + ${L.dz2} + c] = dz2_${g};`)}`
      )
    }
        }
        workgroupBarrier();
        // xsHid changes from a to dz1.
        for (var j = t; j < ${Cr}; j += ${WG}) {
          ${each((g) => `var da${g} = 0.0;`)}
          for (var c = 0; c < ${C}; c++) {
            let w = w2In[j * ${C} + c];
            ${each((g) => `da${g} = fma(xsVec[${g * C} + c], w, da${g});`)}
          }
          ${
      each((g) =>
        `let dz1_${g} = da${g} * xsActDeriv(xsZ1[${g * Cr} + j]);
          xsHid[${g * Cr} + j] = dz1_${g};
          ${live(g, `result[${row(g)} + ${L.dz1} + j] = dz1_${g};`)}`
      )
    }
        }
        workgroupBarrier();
        for (var c = t; c < ${C}; c += ${WG}) {
          ${each((g) => `var ds${g} = 0.0;`)}
          for (var j = 0; j < ${Cr}; j++) {
            let w = w1In[c * ${Cr} + j];
            ${each((g) => `ds${g} = fma(xsHid[${g * Cr} + j], w, ds${g});`)}
          }
          ${each((g) => live(g, `result[${row(g)} + ${L.dsHW} + c] = ds${g} * uniforms.invHW;`))}
        }
      }`;
  }
}

/**
 * Elementwise per-image channel op over x viewed as [B, HW, C]. `scale`: y = x * g[b, c]
 * (g [B, C]). `inputGrad`: dx = dy * g[b, c] + ds[b, c] / HW, reading g and ds/HW from the
 * packed backward record. Each thread walks `pixels` pixels of one channel vector, so the
 * per-channel values and the index arithmetic (scalarised integer division on CPU rasterisers)
 * are paid once per run rather than per element.
 */
class SeChannelProgram extends FlatProgram {
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  uniforms = "nThreads : i32, cv : i32, hw : i32, runs : i32, recordVecs : i32, dsOffset : i32,";
  readonly comp: 1 | 4;
  readonly threads: number;
  readonly pixels: number;
  readonly runs: number;

  constructor(readonly s: SeShape, readonly mode: "scale" | "inputGrad", xShape: number[]) {
    super();
    this.comp = channelComponents(s.C);
    this.pixels = Math.max(1, Math.min(kernelTuning().sePixelsPerThread, s.HW));
    this.runs = Math.ceil(s.HW / this.pixels);
    this.threads = s.B * this.runs * (s.C / this.comp);
    this.outputShape = xShape;
    this.variableNames = mode === "scale" ? ["xIn", "gIn"] : ["dyIn", "pkIn"];
    this.variableComponents = [this.comp, this.comp];
    this.outputComponent = this.comp;
    const wg = kernelTuning().workgroupSize;
    Object.assign(this, flatDispatch(xShape, this.threads, wg));
    this.shaderKey = `xsSeChannel_${mode}_${this.comp}_${this.pixels}_${wg}`;
  }

  uniformValues(): ProgramUniforms {
    const { C, Cr, HW } = this.s;
    const cv = C / this.comp;
    const L = packedLayout(C, Cr);
    return this.mode === "scale"
      ? ints(this.threads, cv, HW, this.runs, cv, 0)
      : ints(this.threads, cv, HW, this.runs, L.P / this.comp, L.dsHW / this.comp);
  }

  getUserCode(): string {
    const head = this.mode === "scale" ? `let g = gIn[rec + c];` : `let g = pkIn[rec + c];
         let d = pkIn[rec + uniforms.dsOffset + c];`;
    const body = this.mode === "scale" ? `result[k] = xIn[k] * g;` : `result[k] = fma(dyIn[k], g, d);`;
    return channelMain(`
        let run = t % uniforms.runs;
        let b = t / uniforms.runs;
        let rec = b * uniforms.recordVecs;
        ${head}
        let p0 = run * ${this.pixels};
        let p1 = min(p0 + ${this.pixels}, uniforms.hw);
        var k = (b * uniforms.hw + p0) * cv + c;
        for (var p = p0; p < p1; p++) {
          ${body}
          k += cv;
        }`);
  }
}

/**
 * Weight or bias gradient from the packed backward records: out[u, v] = sum_b rec[b][offU + u] *
 * rec[b][offV + v] (`product`), or out[v] = sum_b rec[b][offV + v]. With `vec4` (record length
 * and offV multiples of 4) a thread computes four adjacent v from vec4 loads, a quarter of the
 * loads of the scalar form; columns past `inner` are read from the record's padding and dropped.
 */
class SeWeightGradProgram extends FlatProgram {
  variableNames = ["pkIn"];
  variableComponents: number[];
  uniforms =
    "nThreads : i32, images : i32, recordLen : i32, inner : i32, offU : i32, offV : i32, innerV : i32,";
  readonly threads: number;
  readonly innerV: number;

  constructor(
    readonly images: number,
    readonly recordLen: number,
    outputShape: number[],
    readonly offU: number,
    readonly offV: number,
    readonly product: boolean,
    readonly vec4: boolean,
  ) {
    super();
    this.outputShape = outputShape;
    const inner = outputShape[outputShape.length - 1];
    this.innerV = vec4 ? Math.ceil(inner / 4) : inner;
    this.threads = (outputShape.reduce((a, b) => a * b, 1) / inner) * this.innerV;
    this.variableComponents = [vec4 ? 4 : 1];
    const wg = kernelTuning().workgroupSize;
    Object.assign(this, flatDispatch(outputShape, this.threads, wg));
    this.shaderKey = `xsSeWeightGrad_${product}_${vec4}_${wg}`;
  }

  uniformValues(): ProgramUniforms {
    const inner = this.outputShape[this.outputShape.length - 1];
    const q = this.vec4 ? 4 : 1;
    return ints(this.threads, this.images, this.recordLen / q, inner, this.offU, this.offV / q, this.innerV);
  }

  getUserCode(): string {
    if (!this.vec4) {
      const term = this.product
        ? "fma(pkIn[rec + uniforms.offU + u], pkIn[rec + uniforms.offV + v], acc)"
        : "acc + pkIn[rec + uniforms.offV + v]";
      return `
        fn main(index : i32) {
          if (index >= uniforms.nThreads) { return; }
          let u = index / uniforms.inner;
          let v = index % uniforms.inner;
          var acc = 0.0;
          for (var b = 0; b < uniforms.images; b++) {
            let rec = b * uniforms.recordLen;
            acc = ${term};
          }
          _ = uniforms.innerV;
          result[index] = acc;
        }
      `;
    }
    // The u operand is one component of a vec4 of the record.
    const term = this.product
      ? `fma(vec4<f32>(pkIn[rec + uq][ur]), pkIn[rec + uniforms.offV + v4], acc)`
      : `acc + pkIn[rec + uniforms.offV + v4]`;
    return `
      fn main(index : i32) {
        if (index >= uniforms.nThreads) { return; }
        let u = index / uniforms.innerV;
        let v4 = index % uniforms.innerV;
        let uq = (uniforms.offU + u) / 4;
        let ur = (uniforms.offU + u) % 4;
        var acc = vec4<f32>(0.0);
        for (var b = 0; b < uniforms.images; b++) {
          let rec = b * uniforms.recordLen;
          acc = ${term};
        }
        let o = u * uniforms.inner + v4 * 4;
        for (var k = 0; k < 4; k++) {
          if (v4 * 4 + k < uniforms.inner) { result[o + k] = acc[k]; }
        }
        _ = uq + ur;
      }
    `;
  }
}

type Inputs = Record<string, tf.TensorInfo | undefined>;
type Attrs = Record<string, unknown>;

function seOpts(attrs: Attrs | undefined): SeOptions {
  return { act: (attrs?.act ?? "relu") as SeActivation, gate: (attrs?.gate ?? "sigmoid") as SeGate };
}

/**
 * Images per squeeze workgroup: the tuning's, cut to the device's workgroup memory; 0 when not
 * even one image fits (the stock path runs then).
 */
function squeezeGroup(backend: WebGPUBackend, s: SeShape): number {
  const limits = backend.device.limits;
  const fit = Math.floor(limits.maxComputeWorkgroupStorageSize / squeezeSharedBytes(s.C, s.Cr));
  const group = Math.min(kernelTuning().seImagesPerWorkgroup, s.B, fit);
  return group >= 1 && Math.ceil(s.B / group) <= limits.maxComputeWorkgroupsPerDimension ? group : 0;
}

/** Pooling partial sums over HW (and of dy*x with `dy`): [B, chunks, (2,) C]. */
function poolPartials(
  backend: WebGPUBackend,
  s: SeShape,
  x: tf.TensorInfo,
  dy?: tf.TensorInfo,
): { partial: tf.TensorInfo; chunks: number } {
  const { chunks, rowsPerChunk } = splitRows(s.HW, s.B * (s.C / channelComponents(s.C)));
  const p = new ColumnSumProgram(s.B, s.HW, s.C, chunks, rowsPerChunk, dy != null);
  return { partial: run(backend, p, dy ? [x, dy] : [x], p.uniformValues()), chunks };
}

/** webgpu kernelFunc of {@link XS_SQUEEZE_EXCITE}. */
export function seForwardWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo {
  const { x, w1, b1, w2, b2 } = args.inputs as Record<string, tf.TensorInfo>;
  const opts = seOpts(args.attrs);
  const s = seShape(x.shape, w1.shape, opts);
  checkWeights(s, { w1, b1, w2, b2 });
  assertFloat32(x, "squeezeExcite x");
  const backend = gpuBackend(args.backend);
  const group = squeezeGroup(backend, s);
  if (group === 0) return seForwardStockKernel(args);
  const { partial, chunks } = poolPartials(backend, s, x);
  const sq = new SeSqueezeProgram(s, opts, chunks, false, group);
  const gate = run(backend, sq, [partial, w1, b1, w2, b2], sq.uniformValues());
  backend.disposeData(partial.dataId);
  const sc = new SeChannelProgram(s, "scale", x.shape);
  const y = run(backend, sc, [x, gate], sc.uniformValues());
  backend.disposeData(gate.dataId);
  return y;
}

/** webgpu kernelFunc of {@link XS_SQUEEZE_EXCITE_GRAD}: returns [dx, dw1, db1, dw2, db2]. */
export function seGradWebGPU(args: { inputs: Inputs; backend: unknown; attrs?: Attrs }): tf.TensorInfo[] {
  const { dy, x, w1, b1, w2, b2 } = args.inputs as Record<string, tf.TensorInfo>;
  const opts = seOpts(args.attrs);
  const s = seShape(x.shape, w1.shape, opts);
  checkWeights(s, { w1, b1, w2, b2 });
  const backend = gpuBackend(args.backend);
  const group = squeezeGroup(backend, s);
  if (group === 0) return seGradStockKernel(args);
  const { partial, chunks } = poolPartials(backend, s, x, dy);
  const sq = new SeSqueezeProgram(s, opts, chunks, true, group);
  const rec = run(backend, sq, [partial, w1, b1, w2, b2], sq.uniformValues());
  backend.disposeData(partial.dataId);
  const dxProg = new SeChannelProgram(s, "inputGrad", x.shape);
  const dx = run(backend, dxProg, [dy, rec], dxProg.uniformValues());
  const L = packedLayout(s.C, s.Cr);
  // Record offsets are multiples of 4 when C is (P always is).
  const vec4 = s.C % 4 === 0;
  const grad = (shape: number[], offU: number, offV: number, product: boolean) => {
    const p = new SeWeightGradProgram(s.B, L.P, shape, offU, offV, product, vec4);
    return run(backend, p, [rec], p.uniformValues());
  };
  const dw1 = grad([s.C, s.Cr], L.s, L.dz1, true);
  const db1 = grad([s.Cr], 0, L.dz1, false);
  const dw2 = grad([s.Cr, s.C], L.a, L.dz2, true);
  const db2 = grad([s.C], 0, L.dz2, false);
  backend.disposeData(rec.dataId);
  return [dx, dw1, db1, dw2, db2];
}

function actStock(z: tf.Tensor, act: SeActivation): tf.Tensor {
  return act === "relu" ? tf.relu(z) : tf.mul(z, tf.sigmoid(z));
}

function gateStock(z: tf.Tensor, gate: SeGate): tf.Tensor {
  return gate === "sigmoid" ? tf.sigmoid(z) : tf.div(tf.relu6(tf.add(z, 3)), 6);
}

/**
 * The stock-op SE block (mean, matMul, add, activation, sigmoid, mul), differentiable through
 * tfjs's own gradients; the baseline of the benchmarks and the reference of the tests.
 */
export function squeezeExciteStock(x: tf.Tensor4D, w: SeWeights, opts: SeOptions): tf.Tensor4D {
  const s = seShape(x.shape, w.w1.shape, opts);
  return tf.tidy(() => {
    const pooled = tf.mean(x, [1, 2]);
    const a = actStock(tf.add(tf.matMul(pooled, w.w1), w.b1), opts.act);
    const g = gateStock(tf.add(tf.matMul(a, w.w2), w.b2), opts.gate);
    return tf.mul(x, tf.reshape(g, [s.B, 1, 1, s.C]));
  });
}

/** cpu kernelFunc of {@link XS_SQUEEZE_EXCITE} (and the webgpu fallback), from stock ops. */
export function seForwardStockKernel(args: { inputs: Inputs; attrs?: Attrs }): tf.TensorInfo {
  const { x, w1, b1, w2, b2 } = args.inputs as Record<string, tf.Tensor>;
  return squeezeExciteStock(
    x as tf.Tensor4D,
    { w1: w1 as tf.Tensor2D, b1: b1 as tf.Tensor1D, w2: w2 as tf.Tensor2D, b2: b2 as tf.Tensor1D },
    seOpts(args.attrs),
  );
}

/**
 * cpu kernelFunc of {@link XS_SQUEEZE_EXCITE_GRAD} (and the webgpu fallback): the SE backward
 * pass written out with stock ops (kernels cannot record a tape, so no autodiff here).
 */
export function seGradStockKernel(args: { inputs: Inputs; attrs?: Attrs }): tf.Tensor[] {
  const { dy, x, w1, b1, w2, b2 } = args.inputs as Record<string, tf.Tensor2D>;
  const opts = seOpts(args.attrs);
  const s = seShape(x.shape, w1.shape, opts);
  return tf.tidy(() => {
    const pooled = tf.mean(x, [1, 2]);
    const z1 = tf.add(tf.matMul(pooled, w1), b1);
    const a = actStock(z1, opts.act);
    const z2 = tf.add(tf.matMul(a, w2), b2);
    const g = gateStock(z2, opts.gate);
    const dg = tf.sum(tf.mul(dy, x), [1, 2]);
    let gateDeriv: tf.Tensor;
    if (opts.gate === "sigmoid") {
      gateDeriv = tf.mul(g, tf.sub(1, g));
    } else {
      const u = tf.add(z2, 3);
      gateDeriv = tf.div(tf.cast(tf.logicalAnd(tf.greater(u, 0), tf.lessEqual(u, 6)), "float32"), 6);
    }
    const dz2 = tf.mul(dg, gateDeriv) as tf.Tensor2D;
    let actDeriv: tf.Tensor;
    if (opts.act === "relu") {
      actDeriv = tf.step(z1, 0);
    } else {
      const sg = tf.sigmoid(z1);
      actDeriv = tf.mul(sg, tf.add(1, tf.mul(z1, tf.sub(1, sg))));
    }
    const dz1 = tf.mul(tf.matMul(dz2, w2, false, true), actDeriv) as tf.Tensor2D;
    const ds = tf.matMul(dz1, w1, false, true);
    const dx = tf.add(
      tf.mul(dy, tf.reshape(g, [s.B, 1, 1, s.C])),
      tf.reshape(tf.div(ds, s.HW), [s.B, 1, 1, s.C]),
    );
    return [
      dx,
      tf.matMul(pooled, dz1, true, false),
      tf.sum(dz1, 0),
      tf.matMul(a as tf.Tensor2D, dz2, true, false),
      tf.sum(dz2, 0),
    ];
  });
}
