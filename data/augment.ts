/**
 * GPU data augmentation: WGSL kernels that turn a uint8 HWC batch into the normalised float32
 * NHWC batch the models consume, with torchvision/PIL semantics (docs/protocol.md §1.3, §2.3).
 *
 * Pipeline of one batch (each stage one tfjs WebGPU program, so tfjs owns ordering and buffers):
 * 1. upload: the uint8 batch `[B, H, W, C]` goes up as one int32 per RGB pixel (grey replicated);
 * 2. geometry: crop box → PIL-style antialiased bilinear resize to S×S (random-resized-crop,
 *    Resize, Resize+CenterCrop) as PIL's two separable passes (horizontal, then vertical, each
 *    rounded to uint8), optional horizontal flip; kept packed, one int32 per pixel `[B, S, S]`;
 * 3. zero or more op passes: each applies one per-image op (RandAugment's 14 ops, ColorJitter's
 *    four) with uint8 truncation/clipping as PIL; a pass whose ops need image statistics
 *    (contrast mean, autocontrast range, equalize LUT) is preceded by a per-image stats kernel;
 * 4. output: ToTensor + Normalize, RandomErasing (on the normalised values), CutMix paste, into
 *    float32 `[B, S, S, 3]`.
 *
 * All randomness is drawn on the CPU from an {@link Rng} into small per-image parameter tensors
 * ({@link planTrainBatch}); the kernels are deterministic. Nothing is read back.
 *
 * Known deviations from PIL (tested bounds in tests/augment_test.ts): float weights instead of
 * PIL's 22-bit fixed-point ones in the resize (±1 level where a value sits on a .5 tie); float32 instead of
 * PIL's mixed float/double arithmetic in hue and autocontrast (rare ±1 in the uint8 domain, and an
 * occasional 1-step hue difference); autocontrast uses the exact integer form of PIL's LUT formula.
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import { webgpuBackend } from "../runtime/webgpu.ts";
import { ints, runProgram } from "../runtime/gpu.ts";
import { UserError } from "../runtime/errors.ts";
import type { Rng } from "../runtime/rng.ts";
import type {
  ColorJitterOp,
  DatasetProtocol,
  EvalOp,
  RandAugmentOp,
  RandomErasingOp,
  TrainOp,
} from "./protocol.ts";

type WebGPUProgram = tf.webgpu.WebGPUProgram;
type Uniforms = Array<{ type: "int32" | "float32" | "uint32"; data: number[] }>;

/** Floats per image in the geometry parameter tensor. */
export const GEOM_STRIDE = 12;
/** Floats per op record (code + 7 arguments). */
export const OP_STRIDE = 8;
/** Ops one image can get in one op pass: any op first, then only pointwise ops (fused in registers). */
export const OPS_PER_PASS = 4;
/** Floats per image in an op-pass parameter tensor. */
export const PASS_STRIDE = OPS_PER_PASS * OP_STRIDE;
/** Floats per image in the output-pass parameter tensor. */
export const OUT_STRIDE = 8;
/** Int32 per image in the statistics tensor (3×256 equalize LUT, 3×(lo,hi), grey mean, pad). */
export const STATS_STRIDE = 776;

/** Op codes of the op pass (first float of each image's op record). */
export const OpCode = {
  identity: 0,
  /** Inverse affine map, nearest, fill 0: a1..a6 = [a, b, c, d, e, f] (PIL `Image.transform`). */
  affine: 1,
  /** PIL ImageEnhance.Brightness: a1 = factor. */
  brightness: 2,
  /** PIL ImageEnhance.Contrast (blend with the rounded grey mean): a1 = factor. */
  contrast: 3,
  /** PIL ImageEnhance.Color (blend with the grey image): a1 = factor. */
  color: 4,
  /** torchvision adjust_hue on PIL (8-bit HSV hue shift, wraps): a1 = shift in 1/256 turns. */
  hue: 5,
  /** PIL ImageEnhance.Sharpness (blend with SMOOTH, borders kept): a1 = factor. */
  sharpness: 6,
  /** PIL ImageOps.posterize: a1 = bit mask (e.g. 0xfe for 7 bits). */
  posterize: 7,
  /** PIL ImageOps.solarize: a1 = threshold. */
  solarize: 8,
  /** PIL ImageOps.autocontrast (cutoff 0), per channel. */
  autocontrast: 9,
  /** PIL ImageOps.equalize, per channel. */
  equalize: 10,
} as const;

/** A single op of one image: code + up to 7 float arguments. */
export interface ImageOp {
  code: number;
  args: number[];
}

// ---------------------------------------------------------------------------------------------
// WGSL programs

const PACK_WGSL = `
fn unpackRgb(v : i32) -> vec3<i32> {
  let u = bitcast<u32>(v);
  return vec3<i32>(i32(u & 255u), i32((u >> 8u) & 255u), i32((u >> 16u) & 255u));
}
fn packRgb(c : vec3<i32>) -> i32 {
  return bitcast<i32>(u32(c.x) | (u32(c.y) << 8u) | (u32(c.z) << 16u));
}
`;

function flat(outputShape: number[], threads: number, wg = 64) {
  return {
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.max(1, Math.ceil(threads / wg)), 1, 1] as [number, number, number],
    workgroupSize: [wg, 1, 1] as [number, number, number],
  };
}

/** One thread per output element, flat dispatch: the shape of the pixel programs below. */
abstract class PixelProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  constructor(
    readonly variableNames: string[],
    readonly uniforms: string,
    readonly shaderKey: string,
    outputShape: number[],
    threads: number,
  ) {
    this.outputShape = outputShape;
    const f = flat(outputShape, threads);
    this.dispatchLayout = f.dispatchLayout;
    this.dispatch = f.dispatch;
    this.workgroupSize = f.workgroupSize;
  }
  abstract getUserCode(): string;
}

/** Image `b`, row `y`, column `x` and offset `rem` within the image of pixel `index` of [B, S, S]. */
const PIXEL_HEAD = `
  let s = uniforms.outS;
  let n = s * s;
  let b = index / n;
  let rem = index - b * n;
  let y = rem / s;
  let x = rem - y * s;`;

/**
 * The rest of one PIL resample tap window after the centre `c` and scale `sc` of output pixel are
 * known: taps [floor(c − fs + 0.5), floor(c + fs + 0.5)) ∩ [0, limit), triangle weights, normalised,
 * rounded to uint8 and packed into result[index]. `read(t)` is the packed source pixel of tap t.
 */
function resampleWindow(limit: string, read: (t: string) => string): string {
  return `
  let t0 = max(i32(floor(c - fs + 0.5)), 0);
  let t1 = min(i32(floor(c + fs + 0.5)), ${limit});
  let inv = 1.0 / fs;
  var acc = vec3<f32>(0.0);
  var wsum = 0.0;
  for (var t = t0; t < t1; t++) {
    let w = tri((f32(t) - c + 0.5) * inv);
    acc += w * vec3<f32>(unpackRgb(${read("t")}));
    wsum += w;
  }
  let v = clamp(floor(acc / wsum + 0.5), vec3<f32>(0.0), vec3<f32>(255.0));
  result[index] = packRgb(vec3<i32>(v));`;
}

// PIL ImagingResample's coefficient window: centre (i + 0.5)·scale, support max(scale, 1),
// taps [trunc(centre − support + 0.5), trunc(centre + support + 0.5)) clamped to the box, weights
// tri((tap − centre + 0.5) / max(scale, 1)) normalised to sum 1. A fractional box (a crop drawn on
// the original image and mapped onto its stored stretch) is measured from floor(x0) with centre
// offset x0 − floor(x0), and its taps are clamped to the pixels it touches, [floor(x0), ceil(x0 + w)).
const RESAMPLE_WGSL = `
fn tri(t : f32) -> f32 { return max(0.0, 1.0 - abs(t)); }
`;

/**
 * Horizontal resample pass (PIL's first pass): packed source pixels [n·H·W] → packed [B, H, S],
 * rows outside the image's box left 0; columns are the output window (flipped if asked).
 */
class GeomHProgram extends PixelProgram {
  constructor(b: number, h: number, s: number) {
    super(
      ["src", "gp"],
      "srcH : i32, srcW : i32, outS : i32, nOut : i32,",
      "xsAugGeomH",
      [b, h, s],
      b * h * s,
    );
  }
  getUserCode(): string {
    return `${PACK_WGSL}${RESAMPLE_WGSL}
fn main(index : i32) {
  if (index >= uniforms.nOut) { return; }
  let s = uniforms.outS;
  let hh = uniforms.srcH;
  let b = index / (hh * s);
  let rem = index - b * hh * s;
  let y = rem / s;
  var x = rem - y * s;
  let p = b * ${GEOM_STRIDE};
  let top = gp[p + 1];
  if (y < i32(floor(top)) || y >= min(i32(ceil(top + gp[p + 3])), hh)) {
    result[index] = 0;
    return;
  }
  if (gp[p + 8] > 0.5) { x = s - 1 - x; }
  let left = gp[p];
  let lx = floor(left);
  let bw = gp[p + 2];
  let sc = bw / gp[p + 4];
  let fs = max(sc, 1.0);
  // Relative to the first pixel the box touches, so an integer box resamples exactly as before.
  let c = (left - lx) + (f32(x) + gp[p + 6] + 0.5) * sc;
  let row = (b * hh + y) * uniforms.srcW + i32(lx);${
      resampleWindow("min(i32(ceil(left + bw)), uniforms.srcW) - i32(lx)", (t) => `src[row + ${t}]`)
    }
}
`;
  }
}

/** Vertical resample pass (PIL's second pass): packed [B, H, S] → packed [B, S, S]. */
class GeomVProgram extends PixelProgram {
  constructor(b: number, s: number) {
    super(["mid", "gp"], "srcH : i32, outS : i32, nOut : i32,", "xsAugGeomV", [b, s, s], b * s * s);
  }
  getUserCode(): string {
    return `${PACK_WGSL}${RESAMPLE_WGSL}
fn main(index : i32) {
  if (index >= uniforms.nOut) { return; }${PIXEL_HEAD}
  let p = b * ${GEOM_STRIDE};
  let top = gp[p + 1];
  let ty = floor(top);
  let bh = gp[p + 3];
  let sc = bh / gp[p + 5];
  let fs = max(sc, 1.0);
  let c = (top - ty) + (f32(y) + gp[p + 7] + 0.5) * sc;
  let col = (b * uniforms.srcH + i32(ty)) * s + x;${
      resampleWindow("min(i32(ceil(top + bh)), uniforms.srcH) - i32(ty)", (t) => `mid[col + ${t} * s]`)
    }
}
`;
  }
}

/** Per-image statistics: equalize LUTs, autocontrast ranges, rounded grey mean. One workgroup per image. */
class StatsProgram implements WebGPUProgram {
  variableNames = ["img", "op"];
  outputShape: number[];
  shaderKey = "xsAugStats";
  dispatchLayout = { x: [0], y: [1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  uniforms = "outS : i32,";
  constructor(b: number) {
    this.outputShape = [b, STATS_STRIDE];
    this.dispatch = [b, 1, 1];
  }
  getUserCode(): string {
    return `
var<workgroup> hist : array<atomic<u32>, 768>;
var<workgroup> gsum : atomic<u32>;
fn main() {
  let b = i32(workgroupId.x);
  let t = i32(localIndex);
  for (var k = t; k < 768; k += 256) { atomicStore(&hist[k], 0u); }
  if (t == 0) { atomicStore(&gsum, 0u); }
  workgroupBarrier();
  let code = i32(op[b * ${PASS_STRIDE}]);
  let needHist = code == ${OpCode.autocontrast} || code == ${OpCode.equalize};
  let needMean = code == ${OpCode.contrast};
  let n = uniforms.outS * uniforms.outS;
  let base = b * n;
  var lsum = 0u;
  if (needHist || needMean) {
    for (var i = t; i < n; i += 256) {
      let u = bitcast<u32>(img[base + i]);
      let r = u & 255u;
      let g = (u >> 8u) & 255u;
      let bl = (u >> 16u) & 255u;
      if (needHist) {
        atomicAdd(&hist[r], 1u);
        atomicAdd(&hist[256u + g], 1u);
        atomicAdd(&hist[512u + bl], 1u);
      }
      lsum += (r * 19595u + g * 38470u + bl * 7471u + 32768u) >> 16u;
    }
  }
  atomicAdd(&gsum, lsum);
  workgroupBarrier();
  let o = b * ${STATS_STRIDE};
  if (t < 3) {
    var lo = 256;
    var hi = -1;
    var total = 0u;
    var nz = 0;
    for (var i = 0; i < 256; i++) {
      let h = atomicLoad(&hist[t * 256 + i]);
      if (h > 0u) {
        if (lo == 256) { lo = i; }
        hi = i;
        nz++;
      }
      total += h;
    }
    result[o + 768 + 2 * t] = lo;
    result[o + 769 + 2 * t] = hi;
    var stp = 0u;
    if (nz > 1) { stp = (total - atomicLoad(&hist[t * 256 + hi])) / 255u; }
    var acc = stp / 2u;
    for (var i = 0; i < 256; i++) {
      if (stp == 0u) {
        result[o + t * 256 + i] = i;
      } else {
        result[o + t * 256 + i] = i32(min(acc / stp, 255u));
        acc += atomicLoad(&hist[t * 256 + i]);
      }
    }
  }
  if (t == 3) {
    let sum = atomicLoad(&gsum);
    let nn = u32(n);
    result[o + 774] = i32((2u * sum + nn) / (2u * nn));
    result[o + 775] = 0;
  }
}
`;
  }
}

/** One per-image op (RandAugment / ColorJitter) on packed RGB images [B,S,S]. */
class OpProgram extends PixelProgram {
  constructor(b: number, s: number) {
    super(["img", "op", "st"], "outS : i32, nPix : i32,", "xsAugOp", [b, s, s], b * s * s);
  }
  getUserCode(): string {
    return `${PACK_WGSL}
fn px(base : i32, y : i32, x : i32) -> vec3<i32> {
  return unpackRgb(img[base + y * uniforms.outS + x]);
}
fn pxf(base : i32, y : i32, x : i32) -> vec3<f32> { return vec3<f32>(px(base, y, x)); }
fn grey(c : vec3<i32>) -> i32 {
  return (c.x * 19595 + c.y * 38470 + c.z * 7471 + 32768) >> 16u;
}
// PIL Image.blend on uint8: out = clip(deg + f * (v - deg)), truncated.
fn blendTo(deg : vec3<f32>, v : vec3<f32>, f : f32) -> vec3<i32> {
  let t = deg + f * (v - deg);
  return vec3<i32>(clamp(t, vec3<f32>(0.0), vec3<f32>(255.0)));
}
fn rnd(v : f32) -> i32 { return clamp(i32(floor(v + 0.5)), 0, 255); }
// PIL RGB -> HSV (8-bit), hue shift with uint8 wrap, HSV -> RGB (Convert.c rgb2hsv_row / hsv2rgb).
fn hueShift(c : vec3<i32>, shift : i32) -> vec3<i32> {
  let r = c.x;
  let g = c.y;
  let bl = c.z;
  let maxc = max(r, max(g, bl));
  let minc = min(r, min(g, bl));
  if (maxc == minc) { return c; }
  let cr = f32(maxc - minc);
  let sat = cr / f32(maxc);
  let rc = f32(maxc - r) / cr;
  let gc = f32(maxc - g) / cr;
  let bc = f32(maxc - bl) / cr;
  var h : f32;
  if (r == maxc) {
    h = bc - gc;
  } else if (g == maxc) {
    h = 2.0 + rc - bc;
  } else {
    h = 4.0 + gc - rc;
  }
  var h6 = h / 6.0 + 1.0;
  h6 = h6 - floor(h6);
  let uh = clamp(i32(h6 * 255.0), 0, 255);
  let us = clamp(i32(sat * 255.0), 0, 255);
  let v = maxc;
  if (us == 0) { return vec3<i32>(v, v, v); }
  let nh = (uh + shift) & 255;
  let hf = f32(nh) * 6.0 / 255.0;
  let i = i32(floor(hf));
  let fr = hf - f32(i);
  let fs = f32(us) / 255.0;
  let pp = rnd(f32(v) * (1.0 - fs));
  let qq = rnd(f32(v) * (1.0 - fs * fr));
  let tt = rnd(f32(v) * (1.0 - fs * (1.0 - fr)));
  switch (i % 6) {
    case 0: { return vec3<i32>(v, tt, pp); }
    case 1: { return vec3<i32>(qq, v, pp); }
    case 2: { return vec3<i32>(pp, v, tt); }
    case 3: { return vec3<i32>(pp, qq, v); }
    case 4: { return vec3<i32>(tt, pp, v); }
    default: { return vec3<i32>(v, pp, qq); }
  }
}
// The pointwise ops (no neighbours, no statistics), which can follow any op within one pass.
fn pointOp(code : i32, a : f32, c : vec3<i32>) -> vec3<i32> {
  switch (code) {
    case ${OpCode.brightness}: { return blendTo(vec3<f32>(0.0), vec3<f32>(c), a); }
    case ${OpCode.color}: { return blendTo(vec3<f32>(f32(grey(c))), vec3<f32>(c), a); }
    case ${OpCode.hue}: { return hueShift(c, i32(a)); }
    case ${OpCode.posterize}: { return c & vec3<i32>(i32(a)); }
    case ${OpCode.solarize}: { return select(c, vec3<i32>(255) - c, vec3<f32>(c) >= vec3<f32>(a)); }
    default: { return c; }
  }
}
fn main(index : i32) {
  if (index >= uniforms.nPix) { return; }${PIXEL_HEAD}
  let base = b * n;
  let q = b * ${PASS_STRIDE};
  let code = i32(op[q]);
  let c = unpackRgb(img[index]);
  let v = vec3<f32>(c);
  let so = b * ${STATS_STRIDE};
  var o = c;
  switch (code) {
    case ${OpCode.affine}: {
      let fx = f32(x) + 0.5;
      let fy = f32(y) + 0.5;
      let xin = op[q + 1] * fx + op[q + 2] * fy + op[q + 3];
      let yin = op[q + 4] * fx + op[q + 5] * fy + op[q + 6];
      o = vec3<i32>(0);
      if (xin >= 0.0 && yin >= 0.0) {
        let xi = i32(xin);
        let yi = i32(yin);
        if (xi < s && yi < s) { o = px(base, yi, xi); }
      }
    }
    case ${OpCode.contrast}: { o = blendTo(vec3<f32>(f32(st[so + 774])), v, op[q + 1]); }
    case ${OpCode.sharpness}: {
      if (x > 0 && y > 0 && x < s - 1 && y < s - 1) {
        let k1 = 1.0 / 13.0;
        let k5 = 5.0 / 13.0;
        var ss = vec3<f32>(0.5);
        ss += pxf(base, y + 1, x - 1) * k1 + pxf(base, y + 1, x) * k1 + pxf(base, y + 1, x + 1) * k1;
        ss += pxf(base, y, x - 1) * k1 + v * k5 + pxf(base, y, x + 1) * k1;
        ss += pxf(base, y - 1, x - 1) * k1 + pxf(base, y - 1, x) * k1 + pxf(base, y - 1, x + 1) * k1;
        let sm = vec3<f32>(vec3<i32>(clamp(ss, vec3<f32>(0.0), vec3<f32>(255.0))));
        o = blendTo(sm, v, op[q + 1]);
      }
    }
    case ${OpCode.autocontrast}: {
      for (var ch = 0; ch < 3; ch++) {
        let lo = st[so + 768 + 2 * ch];
        let hi = st[so + 769 + 2 * ch];
        if (hi > lo) { o[ch] = clamp(((c[ch] - lo) * 255) / (hi - lo), 0, 255); }
      }
    }
    case ${OpCode.equalize}: {
      o = vec3<i32>(st[so + c.x], st[so + 256 + c.y], st[so + 512 + c.z]);
    }
    default: { o = pointOp(code, op[q + 1], c); }
  }
  for (var k = 1; k < ${OPS_PER_PASS}; k++) {
    o = pointOp(i32(op[q + k * ${OP_STRIDE}]), op[q + k * ${OP_STRIDE} + 1], o);
  }
  result[index] = packRgb(o);
}
`;
  }
}

/** ToTensor + Normalize + RandomErasing + CutMix paste: packed RGB [B,S,S] → float32 [B,S,S,3]. */
class OutProgram extends PixelProgram {
  constructor(b: number, s: number) {
    const uniforms = "outS : i32, nPix : i32, c1 : i32, c2 : i32, r1 : i32, r2 : i32, " +
      "m0 : f32, m1 : f32, m2 : f32, s0 : f32, s1 : f32, s2 : f32,";
    super(["img", "ep"], uniforms, "xsAugOut", [b, s, s, 3], b * s * s);
  }
  getUserCode(): string {
    return `${PACK_WGSL}
fn main(index : i32) {
  if (index >= uniforms.nPix) { return; }${PIXEL_HEAD}
  var srcImg = b;
  if (x >= uniforms.c1 && x < uniforms.c2 && y >= uniforms.r1 && y < uniforms.r2) {
    srcImg = i32(ep[b * ${OUT_STRIDE} + 4]);
  }
  let e = srcImg * ${OUT_STRIDE};
  let top = i32(ep[e]);
  let left = i32(ep[e + 1]);
  let o = index * 3;
  if (y >= top && y < top + i32(ep[e + 2]) && x >= left && x < left + i32(ep[e + 3])) {
    result[o] = 0.0;
    result[o + 1] = 0.0;
    result[o + 2] = 0.0;
    return;
  }
  let c = vec3<f32>(unpackRgb(img[srcImg * n + rem]));
  result[o] = (c.x / 255.0 - uniforms.m0) / uniforms.s0;
  result[o + 1] = (c.y / 255.0 - uniforms.m1) / uniforms.s1;
  result[o + 2] = (c.z / 255.0 - uniforms.m2) / uniforms.s2;
}
`;
  }
}

// ---------------------------------------------------------------------------------------------
// Low-level passes (exported for tests and the loader)

function backend(): WebGPUBackend {
  if (tf.getBackend() !== "webgpu") {
    throw new Error("GPU augmentation needs the webgpu backend: await initRuntime() first");
  }
  return webgpuBackend();
}

/** Runs an augmentation program through the dispatch layer (runtime/gpu.ts) as a tensor. */
function runAugment(
  program: WebGPUProgram,
  inputs: Tensor[],
  dtype: "int32" | "float32",
  u: Uniforms,
): Tensor {
  return tf.engine().makeTensorFromTensorInfo(runProgram(backend(), program, inputs, u, dtype));
}
const floats = (...v: number[]): Uniforms => v.map((x) => ({ type: "float32" as const, data: [x] }));

/** Shape of a uint8 source batch. */
export interface SourceShape {
  /** Images in the batch. */
  n: number;
  height: number;
  width: number;
  /** 1 (grey, replicated to RGB) or 3. */
  channels: number;
}

/**
 * Uploads `n` uint8 HWC images as one int32 per pixel (R | G<<8 | B<<16; grey replicated), the
 * layout every kernel reads with a single load. The caller disposes the tensor.
 */
export function uploadBytes(pixels: Uint8Array, shape: SourceShape): Tensor {
  const n = shape.n * shape.height * shape.width;
  const c = shape.channels;
  if (pixels.length < n * c) throw new RangeError(`need ${n * c} bytes, got ${pixels.length}`);
  const packed = new Int32Array(n);
  if (c === 3) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      packed[i] = pixels[j] | (pixels[j + 1] << 8) | (pixels[j + 2] << 16);
    }
  } else if (c === 1) {
    for (let i = 0; i < n; i++) packed[i] = pixels[i] * 0x010101;
  } else {
    throw new RangeError(`images must have 1 or 3 channels, got ${c}`);
  }
  return tf.tensor1d(packed, "int32");
}

/**
 * Geometry: for each image b, the box (x0, y0, w, h) of `geom[b]` is resized (PIL bilinear,
 * antialiased when shrinking; horizontal then vertical pass, each rounded to uint8 as PIL does)
 * to a virtual vw×vh image whose S×S window at (ox, oy) is kept, optionally flipped.
 * `geom` rows: [x0, y0, w, h, vw, vh, ox, oy, flip, 0, 0, 0]; `src` from {@link uploadBytes}.
 * The box may be fractional (float32; see {@link mapBoxToStored}); an integer box is resampled
 * exactly as PIL crops and resizes it.
 * Returns packed RGB int32 [B, S, S] (one uint8 RGB pixel per int32).
 */
export function geometryPass(src: Tensor, shape: SourceShape, geom: Float32Array, size: number): Tensor {
  const b = geom.length / GEOM_STRIDE;
  const h = shape.height;
  const gp = tf.tensor2d(geom, [b, GEOM_STRIDE], "float32");
  let mid: Tensor | undefined;
  try {
    mid = runAugment(
      new GeomHProgram(b, h, size),
      [src, gp],
      "int32",
      ints(h, shape.width, size, b * h * size),
    );
    return runAugment(new GeomVProgram(b, size), [mid, gp], "int32", ints(h, size, b * size * size));
  } finally {
    gp.dispose();
    mid?.dispose();
  }
}

/** True if an op pass with these records needs the statistics kernel first. */
function needsStats(ops: Float32Array): boolean {
  for (let i = 0; i < ops.length; i += PASS_STRIDE) {
    const c = ops[i];
    if (c === OpCode.contrast || c === OpCode.autocontrast || c === OpCode.equalize) return true;
  }
  return false;
}

/**
 * One op pass on packed RGB images [B, S, S]: image b gets the ops of record b of `ops`
 * (`PASS_STRIDE` floats: up to {@link OPS_PER_PASS} records of code + args; only the first may
 * read neighbours or statistics, see {@link encodePasses}). Runs the statistics kernel first when
 * a first op needs it.
 * Returns a new tensor; `img` is not disposed.
 */
export function opPass(img: Tensor, ops: Float32Array): Tensor {
  const [b, s] = img.shape;
  const opT = tf.tensor2d(ops, [b, PASS_STRIDE], "float32");
  let stats: Tensor | undefined;
  try {
    // Without statistics a tiny placeholder fills the binding (per call, so nothing outlives the pass).
    stats = needsStats(ops)
      ? runAugment(new StatsProgram(b), [img, opT], "int32", ints(s))
      : tf.zeros([1, STATS_STRIDE], "int32");
    return runAugment(new OpProgram(b, s), [img, opT, stats], "int32", ints(s, b * s * s));
  } finally {
    opT.dispose();
    stats?.dispose();
  }
}

/** Batch-level CutMix: the pasted box (columns [c1,c2), rows [r1,r2)) and the source of each row. */
export interface CutMixBox {
  c1: number;
  c2: number;
  r1: number;
  r2: number;
  /** perm[i]: the image pasted into image i. */
  perm: ArrayLike<number>;
}

/**
 * Output pass: ToTensor + Normalize → float32 [B, S, S, 3]; `erase` rows (top, left, h, w; h = 0
 * for none) zero a rectangle of the normalised image; `cutmix` pastes box pixels from image perm[i]
 * (after that image's own erasing, as CutMix runs on the finished batch).
 */
export function outputPass(
  img: Tensor,
  norm: { mean: readonly number[]; std: readonly number[] },
  erase?: Float32Array,
  cutmix?: CutMixBox,
): Tensor {
  const [b, s] = img.shape;
  const ep = new Float32Array(b * OUT_STRIDE);
  if (erase) ep.set(erase.subarray(0, b * OUT_STRIDE));
  for (let i = 0; i < b; i++) {
    ep[i * OUT_STRIDE + 4] = cutmix ? cutmix.perm[i] : i;
  }
  const epT = tf.tensor2d(ep, [b, OUT_STRIDE], "float32");
  const box = cutmix ?? { c1: 0, c2: 0, r1: 0, r2: 0 };
  try {
    return runAugment(new OutProgram(b, s), [img, epT], "float32", [
      ...ints(s, b * s * s, box.c1, box.c2, box.r1, box.r2),
      ...floats(norm.mean[0], norm.mean[1], norm.mean[2], norm.std[0], norm.std[1], norm.std[2]),
    ]);
  } finally {
    epT.dispose();
  }
}

/** Reads packed RGB images back as uint8 [B, S, S, 3] (tests and debugging only). */
export async function readPacked(img: Tensor): Promise<Uint8Array> {
  const words = await img.data() as Int32Array;
  const out = new Uint8Array(words.length * 3);
  for (let i = 0; i < words.length; i++) {
    const u = words[i] >>> 0;
    out[i * 3] = u & 255;
    out[i * 3 + 1] = (u >>> 8) & 255;
    out[i * 3 + 2] = (u >>> 16) & 255;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CPU-side parameter drawing (torchvision rules)

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A crop box in source pixels. */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/**
 * torchvision `RandomResizedCrop.get_params`: up to 10 tries of area·U(scale) and
 * exp(U(log ratio)); w = round(√(a·r)), h = round(√(a/r)); accepted if 0 < w ≤ W and 0 < h ≤ H,
 * placed at randint offsets; otherwise the centred fallback crop.
 */
export function randomResizedCropBox(
  rng: Rng,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): Box {
  const area = height * width;
  const lr0 = Math.log(ratio[0]), lr1 = Math.log(ratio[1]);
  for (let i = 0; i < 10; i++) {
    const target = area * rng.uniformIn(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniformIn(lr0, lr1));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h);
      const left = rng.int(0, width - w);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * torchvision `RandomErasing.get_params` on an S×S image (p already decided): up to 10 tries;
 * undefined when every try fails (image left unchanged).
 */
export function randomErasingBox(rng: Rng, size: number, op: RandomErasingOp): Box | undefined {
  const area = size * size;
  const lr0 = Math.log(op.ratio[0]), lr1 = Math.log(op.ratio[1]);
  for (let i = 0; i < 10; i++) {
    const eraseArea = area * rng.uniformIn(op.scale[0], op.scale[1]);
    const aspect = Math.exp(rng.uniformIn(lr0, lr1));
    const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(h < size && w < size)) continue;
    const top = rng.int(0, size - h);
    const left = rng.int(0, size - w);
    return { top, left, height: h, width: w };
  }
  return undefined;
}

/** CutMix parameters of one batch, exactly as coded (docs/protocol.md §1.3). */
export interface CutMixPlan extends CutMixBox {
  /** perm[i]: the image pasted into image i (rows ≥ valid map to themselves). */
  perm: Int32Array;
  /** Raw λ ~ U(0,1), the weight of yA (not area-corrected). */
  lambda: number;
  /** Drawn centre column and row. */
  cx: number;
  cy: number;
}

/**
 * Draws λ ~ U(0,1), perm = randperm(valid) (padding rows keep themselves), cut = int(S·√(1−λ)),
 * cx, cy ~ randint[0,S); columns [max(cx−cut//2,0), min(cx+cut//2,S)), rows likewise from cy.
 */
export function drawCutMix(rng: Rng, size: number, batch: number, valid = batch): CutMixPlan {
  const lambda = rng.uniform();
  const p = rng.permutation(valid);
  const perm = new Int32Array(batch);
  for (let i = 0; i < batch; i++) perm[i] = i < valid ? p[i] : i;
  const cut = Math.trunc(size * Math.sqrt(1 - lambda));
  const cx = rng.int(0, size - 1);
  const cy = rng.int(0, size - 1);
  const half = Math.floor(cut / 2);
  return {
    lambda,
    perm,
    cx,
    cy,
    c1: Math.max(cx - half, 0),
    c2: Math.min(cx + half, size),
    r1: Math.max(cy - half, 0),
    r2: Math.min(cy + half, size),
  };
}

/** float32 rounding of torch.linspace(start, end, steps)[i] (torch's two-sided formula). */
function linspaceAt(start: number, end: number, steps: number, i: number): number {
  const f = Math.fround;
  if (steps === 1) return f(start);
  const step = f((end - start) / (steps - 1));
  return i < steps / 2 ? f(f(start) + f(i * step)) : f(f(end) - f((steps - 1 - i) * step));
}

/** The 14 RandAugment ops in torchvision's order. */
export const RAND_AUGMENT_OPS = [
  "Identity",
  "ShearX",
  "ShearY",
  "TranslateX",
  "TranslateY",
  "Rotate",
  "Brightness",
  "Color",
  "Contrast",
  "Sharpness",
  "Posterize",
  "Solarize",
  "AutoContrast",
  "Equalize",
] as const;

/** Name of a RandAugment op. */
export type RandAugmentName = typeof RAND_AUGMENT_OPS[number];

/** torchvision `_augmentation_space` magnitude of `name` at `op.magnitude`, and whether it is signed. */
export function randAugmentMagnitude(
  name: RandAugmentName,
  op: RandAugmentOp,
  size: number,
): [number, boolean] {
  const bins = op.numMagnitudeBins, m = op.magnitude;
  switch (name) {
    case "ShearX":
    case "ShearY":
      return [linspaceAt(0, 0.3, bins, m), true];
    case "TranslateX":
    case "TranslateY":
      return [linspaceAt(0, Math.fround(150 / 331 * size), bins, m), true];
    case "Rotate":
      return [linspaceAt(0, 30, bins, m), true];
    case "Brightness":
    case "Color":
    case "Contrast":
    case "Sharpness":
      return [linspaceAt(0, 0.9, bins, m), true];
    case "Posterize":
      return [8 - roundHalfEven(Math.fround(m / Math.fround((bins - 1) / 4))), false];
    case "Solarize":
      return [linspaceAt(255, 0, bins, m), false];
    default:
      return [0, false];
  }
}

const degToRad = (d: number) => d * Math.PI / 180;

/** PIL `Image.rotate(angle)` inverse affine matrix (centre (S/2, S/2), no expand). */
export function rotateMatrix(angle: number, size: number): number[] {
  const a = -degToRad(angle % 360);
  const r15 = (v: number) => Math.round(v * 1e15) / 1e15;
  const m = [r15(Math.cos(a)), r15(Math.sin(a)), 0, r15(-Math.sin(a)), r15(Math.cos(a)), 0];
  const cx = size / 2, cy = size / 2;
  m[2] = m[0] * -cx + m[1] * -cy + cx;
  m[5] = m[3] * -cx + m[4] * -cy + cy;
  return m;
}

/** The op record of RandAugment op `name` with signed magnitude `mag` on an S×S image. */
export function randAugmentOp(name: RandAugmentName, mag: number, size: number): ImageOp | undefined {
  switch (name) {
    case "Identity":
      return undefined;
    case "ShearX":
      // torchvision passes degrees(atan(mag)) and the matrix takes tan(radians(·)) of it.
      return {
        code: OpCode.affine,
        args: [1, Math.tan(degToRad(Math.atan(mag) * 180 / Math.PI)), 0, 0, 1, 0],
      };
    case "ShearY":
      return {
        code: OpCode.affine,
        args: [1, 0, 0, Math.tan(degToRad(Math.atan(mag) * 180 / Math.PI)), 1, 0],
      };
    case "TranslateX":
      return { code: OpCode.affine, args: [1, 0, -Math.trunc(mag), 0, 1, 0] };
    case "TranslateY":
      return { code: OpCode.affine, args: [1, 0, 0, 0, 1, -Math.trunc(mag)] };
    case "Rotate":
      return mag % 360 === 0 ? undefined : { code: OpCode.affine, args: rotateMatrix(mag, size) };
    case "Brightness":
      return { code: OpCode.brightness, args: [1 + mag] };
    case "Color":
      return { code: OpCode.color, args: [1 + mag] };
    case "Contrast":
      return { code: OpCode.contrast, args: [1 + mag] };
    case "Sharpness":
      return { code: OpCode.sharpness, args: [1 + mag] };
    case "Posterize": {
      const bits = Math.trunc(mag);
      return bits >= 8 ? undefined : { code: OpCode.posterize, args: [~(2 ** (8 - bits) - 1) & 255] };
    }
    case "Solarize":
      return { code: OpCode.solarize, args: [mag] };
    case "AutoContrast":
      return { code: OpCode.autocontrast, args: [] };
    case "Equalize":
      return { code: OpCode.equalize, args: [] };
  }
}

/** Draws RandAugment's ops for one image (torchvision draw order: op index, then sign). */
export function drawRandAugment(rng: Rng, op: RandAugmentOp, size: number): ImageOp[] {
  const out: ImageOp[] = [];
  for (let k = 0; k < op.numOps; k++) {
    const name = RAND_AUGMENT_OPS[rng.int(0, RAND_AUGMENT_OPS.length - 1)];
    let [mag, signed] = randAugmentMagnitude(name, op, size);
    if (signed && rng.int(0, 1) === 1) mag = -mag;
    const rec = randAugmentOp(name, mag, size);
    if (rec) out.push(rec);
  }
  return out;
}

/** Hue shift in 8-bit HSV units for a hue factor (numpy int8 truncation, as torchvision). */
export function hueShiftOf(factor: number): number {
  return Math.trunc(factor * 255);
}

/** Draws ColorJitter for one image: randperm(4), then the factors, applied in the permuted order. */
export function drawColorJitter(rng: Rng, op: ColorJitterOp): ImageOp[] {
  const order = rng.permutation(4);
  const b = op.brightness > 0 ? rng.uniformIn(Math.max(0, 1 - op.brightness), 1 + op.brightness) : undefined;
  const c = op.contrast > 0 ? rng.uniformIn(Math.max(0, 1 - op.contrast), 1 + op.contrast) : undefined;
  const s = op.saturation > 0 ? rng.uniformIn(Math.max(0, 1 - op.saturation), 1 + op.saturation) : undefined;
  const h = op.hue > 0 ? rng.uniformIn(-op.hue, op.hue) : undefined;
  const out: ImageOp[] = [];
  for (const i of order) {
    if (i === 0 && b !== undefined) out.push({ code: OpCode.brightness, args: [b] });
    if (i === 1 && c !== undefined) out.push({ code: OpCode.contrast, args: [c] });
    if (i === 2 && s !== undefined) out.push({ code: OpCode.color, args: [s] });
    if (i === 3 && h !== undefined) out.push({ code: OpCode.hue, args: [hueShiftOf(h)] });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pipelines compiled from a protocol

/** Geometry of one image: source box, virtual resized size, window offset. */
export interface Geometry {
  /** Source box in stored pixels (fractional when mapped from the original image). */
  box: Box;
  /** Size the box is resized to (virtual image). */
  vw: number;
  vh: number;
  /** Offset of the S×S output window inside the virtual image. */
  ox: number;
  oy: number;
}

/** A protocol compiled for one image size and source shape. */
export interface AugmentPipeline {
  /** Output side S. */
  size: number;
  /** Random-resized-crop parameters, or undefined for a deterministic geometry. */
  rrc?: { scale: [number, number]; ratio: [number, number] };
  /** Deterministic geometry (Resize / CenterCrop chain) when there is no RRC. */
  fixed?: Geometry;
  /** The chain behind `fixed`, to redo it on each image's original size ({@link fixedGeometryOn}). */
  chain?: { ops: EvalOp[]; inputSize: number };
  /** Horizontal flip probability. */
  flipP: number;
  /** Colour ops in order. */
  color: Array<ColorJitterOp | RandAugmentOp>;
  /** RandomErasing, if any. */
  erasing?: RandomErasingOp;
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * The deterministic geometry of a Resize/CenterCrop chain on an H×W source for output S, with
 * sizes scaled by S / inputSize (the source is first scaled by the same factor, so a bare
 * CenterCrop keeps its fraction of the image).
 */
export function chainGeometry(
  ops: ReadonlyArray<EvalOp>,
  height: number,
  width: number,
  size: number,
  inputSize: number,
): Geometry {
  const sc = size / inputSize;
  let vw = sc === 1 ? width : Math.max(1, Math.round(width * sc));
  let vh = sc === 1 ? height : Math.max(1, Math.round(height * sc));
  let ox = 0, oy = 0, curW = vw, curH = vh;
  for (const op of ops) {
    if (op.op === "resize") {
      if (ox !== 0 || oy !== 0 || curW !== vw || curH !== vh) {
        throw new UserError("protocol: Resize after CenterCrop is not supported; put Resize first");
      }
      if (typeof op.size === "number") {
        const n = Math.max(1, Math.round(op.size * sc));
        const [short, long] = vw <= vh ? [vw, vh] : [vh, vw];
        const nl = Math.trunc(n * long / short);
        [vw, vh] = vw <= vh ? [n, nl] : [nl, n];
      } else {
        vh = Math.max(1, Math.round(op.size[0] * sc));
        vw = Math.max(1, Math.round(op.size[1] * sc));
      }
      curW = vw;
      curH = vh;
    } else {
      const n = Math.max(1, Math.round(op.size * sc));
      if (n > curW || n > curH) {
        throw new UserError(`protocol: CenterCrop(${op.size}) is larger than the ${curW}x${curH} image`);
      }
      oy += roundHalfEven((curH - n) / 2);
      ox += roundHalfEven((curW - n) / 2);
      curW = curH = n;
    }
  }
  if (curW !== size || curH !== size) {
    // A rounding mismatch of the last crop (e.g. 160·S/160 vs S): centre an S window instead.
    if (Math.abs(curW - size) <= 1 && Math.abs(curH - size) <= 1 && vw >= size && vh >= size) {
      ox = Math.max(0, Math.min(vw - size, ox + Math.floor((curW - size) / 2)));
      oy = Math.max(0, Math.min(vh - size, oy + Math.floor((curH - size) / 2)));
    } else {
      throw new UserError(
        `protocol: transforms give ${curW}x${curH} images, not ${size}x${size}; end with Resize((S,S)) or CenterCrop(S)`,
      );
    }
  }
  return { box: { top: 0, left: 0, height, width }, vw, vh, ox, oy };
}

/** Compiles a protocol's training ops for an H×W source and output size S (validates the order). */
export function compileTrain(
  protocol: DatasetProtocol,
  height: number,
  width: number,
  size: number,
): AugmentPipeline {
  const p: AugmentPipeline = {
    size,
    flipP: 0,
    color: [],
    mean: [...protocol.mean],
    std: [...protocol.std],
  };
  const geom: EvalOp[] = [];
  let stage = 0; // 0 geometry, 1 flip, 2 colour, 3 erasing
  const order = (op: TrainOp, s: number) => {
    if (s < stage) {
      throw new UserError(
        `protocol ${protocol.dataset}: ${op.op} out of order (geometry, flip, colour, erasing)`,
      );
    }
    stage = s;
  };
  for (const op of protocol.train) {
    switch (op.op) {
      case "randomResizedCrop":
        order(op, 0);
        if (p.rrc || geom.length) {
          throw new UserError(
            `protocol ${protocol.dataset}: RandomResizedCrop must be the only geometric op`,
          );
        }
        p.rrc = { scale: [...op.scale], ratio: [...op.ratio] };
        break;
      case "resize":
      case "centerCrop":
        order(op, 0);
        if (p.rrc) {
          throw new UserError(
            `protocol ${protocol.dataset}: RandomResizedCrop must be the only geometric op`,
          );
        }
        geom.push(op);
        break;
      case "hflip":
        order(op, 1);
        p.flipP = op.p;
        break;
      case "colorJitter":
      case "randAugment":
        order(op, 2);
        p.color.push(op);
        break;
      case "randomErasing":
        order(op, 3);
        p.erasing = op;
        break;
    }
  }
  if (!p.rrc) {
    p.fixed = chainGeometry(geom, height, width, size, protocol.inputSize);
    p.chain = { ops: geom, inputSize: protocol.inputSize };
  }
  return p;
}

/** Compiles a protocol's evaluation ops for an H×W source and output size S. */
export function compileEval(
  protocol: DatasetProtocol,
  height: number,
  width: number,
  size: number,
): AugmentPipeline {
  return {
    size,
    flipP: 0,
    color: [],
    mean: [...protocol.mean],
    std: [...protocol.std],
    fixed: chainGeometry(protocol.test, height, width, size, protocol.inputSize),
    chain: { ops: [...protocol.test], inputSize: protocol.inputSize },
  };
}

/**
 * Per-image original sizes of a batch whose stored images are whole-image stretches of their
 * originals (data/loader.ts `ImageSource.sourceSizes`): the protocol's geometry is then drawn on
 * the original W0×H0 image with torchvision's rules and mapped onto the stored image.
 */
export interface OriginalSizes {
  /** (W0, H0) of each batch image, as pairs in batch order; a 0 entry means "unknown, use the stored size". */
  sizes: ArrayLike<number>;
  /** Stored image height. */
  height: number;
  /** Stored image width. */
  width: number;
  /**
   * How the stored image was cut from its original: "stretch" (default: the whole original) or
   * "center-square" (its largest centred square, e.g. MIT Indoor-67). For a centre square only
   * RandomResizedCrop is drawn on the original ({@link mapBoxFromCenterSquare}); Resize/CenterCrop
   * chains act on the stored square, which is the original's centred square already.
   */
  fit?: "stretch" | "center-square";
}

/** Grid the mapped boxes are snapped to: exact in float32, so x0 + w lands on the intended edge. */
const BOX_GRID = 1024;

/**
 * Maps a box on a W0×H0 original onto its Ws×Hs stored stretch: x·Ws/W0, y·Hs/H0 (snapped to
 * 1/1024 px and kept inside the stored image). The result is fractional in general.
 */
export function mapBoxToStored(box: Box, w0: number, h0: number, hs: number, ws: number): Box {
  const snap = (v: number) => Math.round(v * BOX_GRID) / BOX_GRID;
  const x0 = Math.max(0, snap(box.left * ws / w0));
  const y0 = Math.max(0, snap(box.top * hs / h0));
  const x1 = Math.min(ws, snap((box.left + box.width) * ws / w0));
  const y1 = Math.min(hs, snap((box.top + box.height) * hs / h0));
  return { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Maps a box on a W0×H0 original onto its stored largest centred square (side m = min(W0, H0),
 * stored at Hs×Ws): the box is shifted by the square's offset and scaled by Ws/m, Hs/m. The
 * fallback crop of RandomResizedCrop with ratio (1, 1) is exactly that square, so it maps onto the
 * whole stored image; a crop that succeeded on a near-square original (aspect below ~1.11 at scale
 * 0.9-1.1) may reach up to (W0 - m)/2 px outside the square and is moved inside it, keeping its size.
 */
export function mapBoxFromCenterSquare(box: Box, w0: number, h0: number, hs: number, ws: number): Box {
  const m = Math.min(w0, h0);
  const ox = (w0 - m) / 2, oy = (h0 - m) / 2;
  const bw = Math.min(box.width, m), bh = Math.min(box.height, m);
  const left = Math.min(Math.max(box.left - ox, 0), m - bw);
  const top = Math.min(Math.max(box.top - oy, 0), m - bh);
  return mapBoxToStored({ left, top, width: bw, height: bh }, m, m, hs, ws);
}

/**
 * The deterministic (Resize / CenterCrop) geometry of pipeline `p` computed on a W0×H0 original
 * and mapped onto its Hs×Ws stored stretch. The chain always resizes the whole image, so the
 * mapped box is the whole stored image and only the virtual size (vw, vh) and the window offset
 * carry the original's aspect ratio: resizing the stretch to vw×vh undoes the stretch.
 */
export function fixedGeometryOn(
  p: AugmentPipeline,
  w0: number,
  h0: number,
  hs: number,
  ws: number,
): Geometry {
  if (!p.chain) throw new Error("fixedGeometryOn: pipeline has no deterministic geometry");
  const g = chainGeometry(p.chain.ops, h0, w0, p.size, p.chain.inputSize);
  return { ...g, box: mapBoxToStored(g.box, w0, h0, hs, ws) };
}

/** (W0, H0) of batch image i, or undefined when unknown. */
function originalSize(orig: OriginalSizes | undefined, i: number): [number, number] | undefined {
  if (!orig) return undefined;
  const w0 = orig.sizes[2 * i], h0 = orig.sizes[2 * i + 1];
  return w0 > 0 && h0 > 0 ? [w0, h0] : undefined;
}

/** Everything random about one training batch, drawn on the CPU. */
export interface BatchPlan {
  /** [B · GEOM_STRIDE] geometry records. */
  geom: Float32Array;
  /** One [B · PASS_STRIDE] record array per op pass (identity where an image has fewer passes). */
  passes: Float32Array[];
  /** [B · OUT_STRIDE] erasing records, or undefined. */
  erase?: Float32Array;
  /** CutMix of the batch, or undefined. */
  cutmix?: CutMixPlan;
  /** Flip decisions (for tests and statistics). */
  flips: Uint8Array;
}

function writeGeometry(out: Float32Array, i: number, g: Geometry, flip: boolean): void {
  const o = i * GEOM_STRIDE;
  out[o] = g.box.left;
  out[o + 1] = g.box.top;
  out[o + 2] = g.box.width;
  out[o + 3] = g.box.height;
  out[o + 4] = g.vw;
  out[o + 5] = g.vh;
  out[o + 6] = g.ox;
  out[o + 7] = g.oy;
  out[o + 8] = flip ? 1 : 0;
}

/**
 * Draws the random parameters of a training batch of `batch` images (the first `valid` real) in
 * torchvision's per-image order: crop, flip, colour ops, erasing; then CutMix for the batch.
 * With `original`, each image's crop (or fixed geometry) is drawn on its original size and mapped
 * onto the stored image ({@link mapBoxToStored}).
 */
export function planTrainBatch(
  p: AugmentPipeline,
  rng: Rng,
  src: { height: number; width: number },
  batch: number,
  valid: number,
  cutmix: boolean,
  original?: OriginalSizes,
): BatchPlan {
  const geom = new Float32Array(batch * GEOM_STRIDE);
  const flips = new Uint8Array(batch);
  const perImage: ImageOp[][] = [];
  const erase = p.erasing ? new Float32Array(batch * OUT_STRIDE) : undefined;
  for (let i = 0; i < batch; i++) {
    let g: Geometry;
    const o = originalSize(original, i);
    const square = original?.fit === "center-square";
    if (p.rrc) {
      const box = o && square
        ? mapBoxFromCenterSquare(
          randomResizedCropBox(rng, o[1], o[0], p.rrc.scale, p.rrc.ratio),
          o[0],
          o[1],
          src.height,
          src.width,
        )
        : o
        ? mapBoxToStored(
          randomResizedCropBox(rng, o[1], o[0], p.rrc.scale, p.rrc.ratio),
          o[0],
          o[1],
          src.height,
          src.width,
        )
        : randomResizedCropBox(rng, src.height, src.width, p.rrc.scale, p.rrc.ratio);
      g = { box, vw: p.size, vh: p.size, ox: 0, oy: 0 };
    } else {
      g = o && !square ? fixedGeometryOn(p, o[0], o[1], src.height, src.width) : p.fixed!;
    }
    const flip = p.flipP > 0 && rng.uniform() < p.flipP;
    flips[i] = flip ? 1 : 0;
    writeGeometry(geom, i, g, flip);
    const ops: ImageOp[] = [];
    for (const c of p.color) {
      ops.push(...(c.op === "colorJitter" ? drawColorJitter(rng, c) : drawRandAugment(rng, c, p.size)));
    }
    perImage.push(ops);
    if (erase && p.erasing && rng.uniform() < p.erasing.p) {
      const e = randomErasingBox(rng, p.size, p.erasing);
      if (e) erase.set([e.top, e.left, e.height, e.width], i * OUT_STRIDE);
    }
  }
  const passes = encodePasses(perImage.map(segmentOps), batch);
  return {
    geom,
    passes,
    erase,
    cutmix: cutmix ? drawCutMix(rng, p.size, batch, valid) : undefined,
    flips,
  };
}

/** True for ops that read only their own pixel and need no statistics (fusable after another op). */
export function isPointwise(code: number): boolean {
  return code === OpCode.brightness || code === OpCode.color || code === OpCode.hue ||
    code === OpCode.posterize || code === OpCode.solarize || code === OpCode.identity;
}

/**
 * Splits one image's op sequence into passes: an op that reads neighbours or image statistics
 * (affine, sharpness, contrast, autocontrast, equalize) starts a new pass, so it sees the image
 * as the previous ops left it; pointwise ops join the current pass (up to {@link OPS_PER_PASS}).
 */
export function segmentOps(ops: ImageOp[]): ImageOp[][] {
  const segs: ImageOp[][] = [];
  let cur: ImageOp[] = [];
  for (const op of ops) {
    if (cur.length > 0 && (!isPointwise(op.code) || cur.length >= OPS_PER_PASS)) {
      segs.push(cur);
      cur = [];
    }
    cur.push(op);
  }
  if (cur.length) segs.push(cur);
  return segs;
}

/** Encodes per-image pass lists (from {@link segmentOps}) as one [B · PASS_STRIDE] array per pass. */
export function encodePasses(perImage: ImageOp[][][], batch: number): Float32Array[] {
  const nPasses = Math.max(0, ...perImage.map((o) => o.length));
  const passes: Float32Array[] = [];
  for (let k = 0; k < nPasses; k++) {
    const rec = new Float32Array(batch * PASS_STRIDE);
    for (let i = 0; i < batch; i++) {
      const seg = perImage[i]?.[k] ?? [];
      if (seg.length > OPS_PER_PASS) throw new RangeError(`at most ${OPS_PER_PASS} ops per pass`);
      seg.forEach((op, j) => {
        if (j > 0 && !isPointwise(op.code)) throw new RangeError(`op ${op.code} must start its pass`);
        rec[i * PASS_STRIDE + j * OP_STRIDE] = op.code;
        rec.set(op.args, i * PASS_STRIDE + j * OP_STRIDE + 1);
      });
    }
    passes.push(rec);
  }
  return passes;
}

/** The geometry records of an evaluation batch (deterministic; per image with `original`). */
export function planEvalBatch(p: AugmentPipeline, batch: number, original?: OriginalSizes): Float32Array {
  const geom = new Float32Array(batch * GEOM_STRIDE);
  for (let i = 0; i < batch; i++) {
    const o = originalSize(original, i);
    const g = o ? fixedGeometryOn(p, o[0], o[1], original!.height, original!.width) : p.fixed!;
    writeGeometry(geom, i, g, false);
  }
  return geom;
}

/**
 * Runs a planned training batch on the GPU: uint8 `pixels` [B, H, W, C] → float32 [B, S, S, 3].
 * Only the returned tensor stays alive; `pixels` may be reused when this returns.
 */
export function augmentTrainBatch(
  p: AugmentPipeline,
  plan: BatchPlan,
  pixels: Uint8Array,
  shape: SourceShape,
): Tensor {
  const src = uploadBytes(pixels, shape);
  let img: Tensor;
  try {
    img = geometryPass(src, shape, plan.geom, p.size);
  } finally {
    src.dispose();
  }
  for (const pass of plan.passes) {
    const next = opPass(img, pass);
    img.dispose();
    img = next;
  }
  try {
    return outputPass(img, p, plan.erase, plan.cutmix);
  } finally {
    img.dispose();
  }
}

/**
 * Runs an evaluation batch: geometry + normalisation, float32 [B, S, S, 3]. `sizes`: (W0, H0)
 * pairs of the batch's originals when the stored images are stretches of them ({@link OriginalSizes}).
 */
export function augmentEvalBatch(
  p: AugmentPipeline,
  pixels: Uint8Array,
  shape: SourceShape,
  sizes?: ArrayLike<number>,
): Tensor {
  const src = uploadBytes(pixels, shape);
  const original = sizes ? { sizes, height: shape.height, width: shape.width } : undefined;
  let img: Tensor;
  try {
    img = geometryPass(src, shape, planEvalBatch(p, shape.n, original), p.size);
  } finally {
    src.dispose();
  }
  try {
    return outputPass(img, p);
  } finally {
    img.dispose();
  }
}
