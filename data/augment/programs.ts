/**
 * The augmentation's WGSL programs (geometry, per-image ops, statistics, output) and the passes that
 * run them through the dispatch layer (runtime/gpu.ts).
 *
 * @module
 */
import { type Tensor, tf, type WebGPUBackend } from "../../runtime/tf.ts";
import { webgpuBackend } from "../../runtime/webgpu.ts";
import { ints, runProgram } from "../../runtime/gpu.ts";
import { flatDispatch, FlatProgram, type WebGPUProgram } from "../../kernels/common.ts";
import {
  GEOM_STRIDE,
  OP_STRIDE,
  OpCode,
  OPS_PER_PASS,
  OUT_STRIDE,
  PASS_STRIDE,
  STATS_STRIDE,
} from "./layout.ts";

type Uniforms = Array<{ type: "int32" | "float32" | "uint32"; data: number[] }>;

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

/** One thread per output element, flat dispatch (64 wide): the shape of the pixel programs below. */
abstract class PixelProgram extends FlatProgram {
  constructor(
    readonly variableNames: string[],
    readonly uniforms: string,
    shaderKey: string,
    outputShape: number[],
    threads: number,
  ) {
    super();
    this.shaderKey = shaderKey;
    this.outputShape = outputShape;
    Object.assign(this, flatDispatch(outputShape, threads, 64));
  }
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
