/**
 * Counter-based random masks for dropout and stochastic depth, computed where they are used (on
 * the GPU, or on the CPU backend with the same integer hash), from the step-scalar block's seed
 * and counter (kernels/step_scalars.ts) and a per-call site number. No random numbers are drawn on
 * the host and uploaded, so a recorded training step replays with fresh masks each step.
 *
 * Element i of the mask at (seed, counter, site) keeps its value when
 * `hash(seed, counter, site, i) >> 8` (24 uniform bits) / 2^24 < keep, and is then `scale`
 * (1/keep rounded to float32), else 0. The hash is Chris Wellons' "lowbias32" integer finaliser
 * applied in a chain, which passes the usual avalanche tests; the CPU and WGSL versions are the
 * same uint32 arithmetic, so both backends give identical masks.
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import type { WebGPUBackend } from "../runtime/tf.ts";
import { flatDispatch, FlatProgram, gpuBackend, kernelTuning, run } from "./common.ts";
import { STEP_SCALARS } from "./step_scalars.ts";

/** Registered kernel: a [shape] float32 keep mask. Input `scalars`; attrs `shape`, `keep`, `site`. */
export const XS_RANDOM_MASK = "XsRandomMask";

/** Attributes of {@link XS_RANDOM_MASK}. */
export interface RandomMaskAttrs {
  shape: number[];
  /** Keep probability in (0, 1]. */
  keep: number;
  /** Call-site number within the step (each dropout call in a forward pass has its own). */
  site: number;
}

function lowbias32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The mask hash on the CPU (uint32 in, uint32 out). */
export function maskHash(seed: number, counter: number, site: number, i: number): number {
  return lowbias32((seed ^ lowbias32((counter ^ lowbias32((site ^ lowbias32(i >>> 0)) >>> 0)) >>> 0)) >>> 0);
}

const HASH_WGSL = `
fn lowbias32(v : u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  return x ^ (x >> 16u);
}`;

class RandomMaskProgram extends FlatProgram {
  variableNames = ["sc"];
  uniforms = "n : i32, site : u32, keep : f32, scale : f32,";

  constructor(shape: number[], readonly n: number) {
    super();
    this.outputShape = shape;
    this.shaderKey = "xsRandomMask";
    Object.assign(this, flatDispatch(shape, n, kernelTuning().workgroupSize));
  }

  getUserCode(): string {
    return `
      ${HASH_WGSL}
      fn main(index : i32) {
        if (index >= uniforms.n) { return; }
        let seed = bitcast<u32>(sc[${STEP_SCALARS.seed}]);
        let counter = bitcast<u32>(sc[${STEP_SCALARS.counter}]);
        let h = lowbias32(seed ^ lowbias32(counter ^ lowbias32(uniforms.site ^ lowbias32(u32(index)))));
        let u = f32(h >> 8u) * (1.0 / 16777216.0);
        result[index] = select(0.0, uniforms.scale, u < uniforms.keep);
      }
    `;
  }
}

function maskAttrs(attrs: unknown): RandomMaskAttrs {
  return attrs as RandomMaskAttrs;
}

/** WebGPU implementation of {@link XS_RANDOM_MASK}. */
export function randomMaskWebGPU(
  args: { inputs: { scalars: tf.TensorInfo }; backend: unknown; attrs: unknown },
): tf.TensorInfo {
  const { shape, keep, site } = maskAttrs(args.attrs);
  const n = shape.reduce((a, b) => a * b, 1);
  const program = new RandomMaskProgram(shape, n);
  return run(gpuBackend(args.backend) as WebGPUBackend, program, [args.inputs.scalars], [
    { type: "int32", data: [n] },
    { type: "uint32", data: [site >>> 0] },
    { type: "float32", data: [keep] },
    { type: "float32", data: [Math.fround(1 / Math.fround(keep))] },
  ]);
}

/** CPU implementation of {@link XS_RANDOM_MASK} (same hash, same float32 decisions). */
export function randomMaskCpu(
  args: { inputs: { scalars: tf.TensorInfo }; backend: unknown; attrs: unknown },
): tf.TensorInfo {
  const { shape, keep, site } = maskAttrs(args.attrs);
  const be = args.backend as {
    data: { get(id: object): { values: Float32Array } };
    makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  };
  const sc = be.data.get(args.inputs.scalars.dataId).values;
  const bits = new Uint32Array(sc.buffer, sc.byteOffset, sc.length);
  const seed = bits[STEP_SCALARS.seed], counter = bits[STEP_SCALARS.counter];
  const n = shape.reduce((a, b) => a * b, 1);
  const k = Math.fround(keep), scale = Math.fround(1 / k);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = (maskHash(seed, counter, site >>> 0, i) >>> 8) / 16777216;
    out[i] = u < k ? scale : 0;
  }
  return be.makeTensorInfo(shape, "float32", out);
}

/**
 * A [shape] mask of `scale = 1/keep` (kept) and 0 (dropped) elements from the step scalars' RNG
 * key and counter at call site `site`. Not differentiable (it depends on no parameter).
 */
export function randomMask(scalars: tf.Tensor, shape: number[], keep: number, site: number): tf.Tensor {
  if (!(keep > 0 && keep <= 1)) throw new RangeError(`randomMask: keep must be in (0, 1], got ${keep}`);
  const attrs: RandomMaskAttrs = { shape, keep, site };
  return tf.engine().runKernel(
    XS_RANDOM_MASK,
    { scalars } as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor;
}
