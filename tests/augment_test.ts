/**
 * GPU augmentation and loaders against plain CPU references written here (PIL/torchvision
 * semantics transcribed independently of data/augment/), plus statistical checks of the random
 * draws with fixed seeds. Tiny shapes: llvmpipe is slow.
 */
import { assert, assertAlmostEquals, assertEquals } from "./assert.ts";
import { tf } from "../runtime/tf.ts";
import { assertGpuHealthy, initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import {
  chainGeometry,
  compileEval,
  compileTrain,
  drawCutMix,
  encodePasses,
  fixedGeometryOn,
  GEOM_STRIDE,
  geometryPass,
  type ImageOp,
  OpCode,
  opPass,
  OUT_STRIDE,
  outputPass,
  planEvalBatch,
  planTrainBatch,
  randAugmentMagnitude,
  randAugmentOp,
  randomErasingBox,
  randomResizedCropBox,
  readPacked,
  rotateMatrix,
  segmentOps,
  uploadBytes,
} from "../data/augment/mod.ts";
import { createEvalLoader, createTrainLoader, fromCacheSplit, type ImageSource } from "../data/loader.ts";
import {
  type DatasetProtocol,
  paperProtocol,
  PROTOCOL_DATASETS,
  protocolFor,
  referenceProtocol,
} from "../data/protocol.ts";

await initRuntime();

const fr = Math.fround;

function randomBytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.int(0, 255);
  return out;
}

/** Smooth-ish random image (gradients + noise), so that resampling errors would show. */
function testImage(h: number, w: number, c: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const out = new Uint8Array(h * w * c);
  const a = r.uniformIn(2, 9), b = r.uniformIn(2, 9);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        const v = 128 + 90 * Math.sin((x + 3 * k) / a) * Math.cos((y - k) / b) + r.uniformIn(-30, 30);
        out[(y * w + x) * c + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

/** Max |a-b| and the fraction of entries that differ. */
function diff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; frac: number } {
  assertEquals(a.length, b.length, "length");
  let max = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) n++;
    if (d > max) max = d;
  }
  return { max, frac: n / a.length };
}

function assertClose(
  gpu: ArrayLike<number>,
  cpu: ArrayLike<number>,
  maxDiff: number,
  maxFrac: number,
  what: string,
): void {
  const d = diff(gpu, cpu);
  assert(
    d.max <= maxDiff && d.frac <= maxFrac,
    `${what}: max diff ${d.max} (allowed ${maxDiff}), ${(d.frac * 100).toFixed(2)}% differ (allowed ${
      maxFrac * 100
    }%)`,
  );
}

// ---------------------------------------------------------------------------------------------
// CPU references

/** PIL bilinear resize of box (left, top, w, h) to vw×vh, window (ox, oy) of S×S, optional flip. */
function cpuResize(
  src: Uint8Array,
  _H: number,
  W: number,
  C: number,
  box: [number, number, number, number],
  vw: number,
  vh: number,
  ox: number,
  oy: number,
  S: number,
  flip = false,
): Uint8Array {
  const [left, top, bw, bh] = box;
  const coeffs = (inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    const fs = Math.max(scale, 1);
    const rows: Array<{ min: number; w: number[] }> = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const xmin = Math.max(Math.trunc(center - fs + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + fs + 0.5), inSize);
      const w: number[] = [];
      let sum = 0;
      for (let x = xmin; x < xmax; x++) {
        const t = Math.abs((x - center + 0.5) * (1 / fs));
        const k = t < 1 ? 1 - t : 0;
        w.push(k);
        sum += k;
      }
      rows.push({ min: xmin, w: w.map((k) => k / sum) });
    }
    return rows;
  };
  const cx = coeffs(bw, vw), cy = coeffs(bh, vh);
  // PIL: horizontal pass over the box rows into uint8, then the vertical pass.
  const round8 = (v: number) => Math.max(0, Math.min(255, Math.floor(v + 0.5)));
  const mid = new Uint8Array(bh * vw * 3);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < vw; x++) {
      for (let k = 0; k < 3; k++) {
        let acc = 0;
        const r = cx[x];
        for (let i = 0; i < r.w.length; i++) {
          acc += r.w[i] * src[((top + y) * W + left + r.min + i) * C + (C === 1 ? 0 : k)];
        }
        mid[(y * vw + x) * 3 + k] = round8(acc);
      }
    }
  }
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const vx = (flip ? S - 1 - x : x) + ox, r = cy[y + oy];
      for (let k = 0; k < 3; k++) {
        let acc = 0;
        for (let j = 0; j < r.w.length; j++) acc += r.w[j] * mid[((r.min + j) * vw + vx) * 3 + k];
        out[(y * S + x) * 3 + k] = round8(acc);
      }
    }
  }
  return out;
}

const greyL = (r: number, g: number, b: number) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

/** PIL Image.blend for uint8 (float arithmetic, truncation). */
function blend(deg: number, v: number, f: number): number {
  const t = fr(deg + fr(fr(f) * (v - deg)));
  return t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
}

function cpuPointOp(
  img: Uint8Array,
  S: number,
  fn: (r: number, g: number, b: number) => number[],
): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let i = 0; i < S * S; i++) out.set(fn(img[3 * i], img[3 * i + 1], img[3 * i + 2]), 3 * i);
  return out;
}

function cpuBrightness(img: Uint8Array, S: number, f: number) {
  return cpuPointOp(img, S, (r, g, b) => [r, g, b].map((v) => blend(0, v, f)));
}
function cpuContrast(img: Uint8Array, S: number, f: number) {
  let sum = 0;
  for (let i = 0; i < S * S; i++) sum += greyL(img[3 * i], img[3 * i + 1], img[3 * i + 2]);
  const mean = Math.trunc(sum / (S * S) + 0.5);
  return cpuPointOp(img, S, (r, g, b) => [r, g, b].map((v) => blend(mean, v, f)));
}
function cpuColor(img: Uint8Array, S: number, f: number) {
  return cpuPointOp(img, S, (r, g, b) => {
    const l = greyL(r, g, b);
    return [r, g, b].map((v) => blend(l, v, f));
  });
}
/** PIL Convert.c rgb2hsv_row / hsv2rgb (float where C stores float) + numpy uint8 hue shift. */
function cpuHue(img: Uint8Array, S: number, shift: number) {
  const clip8 = (v: number) => Math.max(0, Math.min(255, v));
  const cRound = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
  return cpuPointOp(img, S, (r, g, b) => {
    const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
    let uh = 0, us = 0;
    const v = maxc;
    if (maxc !== minc) {
      const cr = fr(maxc - minc);
      const s = fr(cr / maxc);
      const rc = fr((maxc - r) / cr), gc = fr((maxc - g) / cr), bc = fr((maxc - b) / cr);
      let h: number;
      if (r === maxc) h = fr(bc - gc);
      else if (g === maxc) h = fr(2.0 + rc - bc);
      else h = fr(4.0 + gc - rc);
      h = fr((h / 6.0 + 1.0) % 1.0);
      uh = clip8(Math.trunc(h * 255.0));
      us = clip8(Math.trunc(s * 255.0));
    }
    const hh = (uh + shift) & 255;
    if (us === 0) return [v, v, v];
    const i = Math.floor(hh * 6.0 / 255.0);
    const f = fr(hh * 6.0 / 255.0 - i);
    const fs = fr(us / 255.0);
    const p = clip8(cRound(v * (1.0 - fs)));
    const q = clip8(cRound(v * (1.0 - fs * f)));
    const t = clip8(cRound(v * (1.0 - fs * (1.0 - f))));
    switch (i % 6) {
      case 0:
        return [v, t, p];
      case 1:
        return [q, v, p];
      case 2:
        return [p, v, t];
      case 3:
        return [p, q, v];
      case 4:
        return [t, p, v];
      default:
        return [v, p, q];
    }
  });
}
/** PIL Image.transform(AFFINE, inverse matrix, NEAREST, fill 0). */
function cpuAffine(img: Uint8Array, S: number, m: number[]) {
  const out = new Uint8Array(img.length);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const xin = m[0] * (x + 0.5) + m[1] * (y + 0.5) + m[2];
      const yin = m[3] * (x + 0.5) + m[4] * (y + 0.5) + m[5];
      const xi = xin < 0 ? -1 : Math.trunc(xin), yi = yin < 0 ? -1 : Math.trunc(yin);
      if (xi >= 0 && xi < S && yi >= 0 && yi < S) {
        for (let k = 0; k < 3; k++) out[(y * S + x) * 3 + k] = img[(yi * S + xi) * 3 + k];
      }
    }
  }
  return out;
}
/** Per-channel LUT op (PIL ImageOps): lut(channelHistogram) -> 256-entry table. */
function cpuLutOp(img: Uint8Array, S: number, lutOf: (h: number[]) => number[]) {
  const out = new Uint8Array(img.length);
  for (let k = 0; k < 3; k++) {
    const h = new Array(256).fill(0);
    for (let i = 0; i < S * S; i++) h[img[3 * i + k]]++;
    const lut = lutOf(h);
    for (let i = 0; i < S * S; i++) out[3 * i + k] = lut[img[3 * i + k]];
  }
  return out;
}
function autocontrastLut(h: number[]): number[] {
  let lo = 0, hi = 255;
  while (lo < 256 && !h[lo]) lo++;
  while (hi >= 0 && !h[hi]) hi--;
  if (hi <= lo) return Array.from({ length: 256 }, (_, i) => i);
  const scale = 255.0 / (hi - lo), offset = -lo * scale;
  return Array.from({ length: 256 }, (_, i) => Math.max(0, Math.min(255, Math.trunc(i * scale + offset))));
}
function equalizeLut(h: number[]): number[] {
  const histo = h.filter((v) => v);
  if (histo.length <= 1) return Array.from({ length: 256 }, (_, i) => i);
  const step = Math.floor((histo.reduce((a, b) => a + b, 0) - histo[histo.length - 1]) / 255);
  if (!step) return Array.from({ length: 256 }, (_, i) => i);
  const lut: number[] = [];
  let n = Math.floor(step / 2);
  for (let i = 0; i < 256; i++) {
    lut.push(Math.min(255, Math.floor(n / step)));
    n += h[i];
  }
  return lut;
}
/** PIL ImageEnhance.Sharpness: blend with SMOOTH (3x3, 1/13 weights, centre 5), borders kept. */
function cpuSharpness(img: Uint8Array, S: number, f: number) {
  const k1 = fr(1 / 13), k5 = fr(5 / 13);
  const out = new Uint8Array(img.length);
  const at = (y: number, x: number, k: number) => img[(y * S + x) * 3 + k];
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      for (let k = 0; k < 3; k++) {
        const v = at(y, x, k);
        if (x === 0 || y === 0 || x === S - 1 || y === S - 1) {
          out[(y * S + x) * 3 + k] = v;
          continue;
        }
        const row = (yy: number, kc: number) =>
          fr(fr(fr(at(yy, x - 1, k) * k1) + fr(at(yy, x, k) * kc)) + fr(at(yy, x + 1, k) * k1));
        let ss = fr(0.5);
        ss = fr(ss + row(y + 1, k1));
        ss = fr(ss + row(y, k5));
        ss = fr(ss + row(y - 1, k1));
        const sm = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss);
        out[(y * S + x) * 3 + k] = blend(sm, v, f);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GPU helpers

/** Geometry rows for fixed boxes. */
function geomRows(rows: number[][]): Float32Array {
  const g = new Float32Array(rows.length * GEOM_STRIDE);
  rows.forEach((r, i) => g.set(r, i * GEOM_STRIDE));
  return g;
}

/** Uploads RGB S×S images unchanged (identity resample) and returns the packed tensor. */
function uploadIdentity(imgs: Uint8Array, B: number, S: number): tf.Tensor {
  const src = uploadBytes(imgs, { n: B, height: S, width: S, channels: 3 });
  const g = geomRows(Array.from({ length: B }, () => [0, 0, S, S, S, S, 0, 0, 0]));
  const out = geometryPass(src, { n: B, height: S, width: S, channels: 3 }, g, S);
  src.dispose();
  return out;
}

/** Runs one op per image on RGB images and reads the result back. */
async function gpuOps(imgs: Uint8Array, B: number, S: number, ops: Array<ImageOp | ImageOp[]>) {
  const img = uploadIdentity(imgs, B, S);
  const [rec] = encodePasses(ops.map((o) => [Array.isArray(o) ? o : [o]]), B);
  const out = opPass(img, rec);
  const bytes = await readPacked(out);
  img.dispose();
  out.dispose();
  assertGpuHealthy();
  return bytes;
}

const S = 16;
const B = 3;
const imgs = new Uint8Array(B * S * S * 3);
for (let b = 0; b < B; b++) imgs.set(testImage(S, S, 3, 10 + b), b * S * S * 3);
const one = (b: number) => imgs.subarray(b * S * S * 3, (b + 1) * S * S * 3);

async function checkOp(
  what: string,
  ops: Array<{ code: number; args: number[] }>,
  cpu: (img: Uint8Array, b: number) => Uint8Array,
  maxDiff: number,
  maxFrac: number,
) {
  const gpu = await gpuOps(imgs, B, S, ops);
  for (let b = 0; b < B; b++) {
    assertClose(
      gpu.subarray(b * S * S * 3, (b + 1) * S * S * 3),
      cpu(one(b), b),
      maxDiff,
      maxFrac,
      `${what} image ${b}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic ops

Deno.test("geometry: crop + bilinear resize (down and up, RGB and grey) and flip match PIL's formula", async () => {
  const H = 20, W = 24, N = 4, So = 10;
  for (const C of [3, 1]) {
    const src = new Uint8Array(N * H * W * C);
    for (let n = 0; n < N; n++) src.set(testImage(H, W, C, 100 + n + C), n * H * W * C);
    // [left, top, w, h, vw, vh, ox, oy, flip]
    const rows = [
      [2, 1, 18, 17, So, So, 0, 0, 0], // downscale (antialiased)
      [5, 6, 7, 6, So, So, 0, 0, 0], // upscale
      [0, 0, W, H, 12, 15, 1, 2, 0], // resize + window (Resize + CenterCrop)
      [3, 2, 15, 15, So, So, 0, 0, 1], // flipped
    ];
    const t = uploadBytes(src, { n: N, height: H, width: W, channels: C });
    const out = geometryPass(t, { n: N, height: H, width: W, channels: C }, geomRows(rows), So);
    const gpu = await readPacked(out);
    t.dispose();
    out.dispose();
    for (let n = 0; n < N; n++) {
      const r = rows[n];
      const cpu = cpuResize(
        src.subarray(n * H * W * C),
        H,
        W,
        C,
        [r[0], r[1], r[2], r[3]],
        r[4],
        r[5],
        r[6],
        r[7],
        So,
        r[8] === 1,
      );
      // ±1 at exact .5 ties: neither float order nor PIL's 22-bit fixed point agree there.
      assertClose(gpu.subarray(n * So * So * 3, (n + 1) * So * So * 3), cpu, 1, 0.05, `C=${C} row ${n}`);
    }
    // The flipped row is the mirror of the same crop unflipped.
    const cpuNoFlip = cpuResize(
      src.subarray(3 * H * W * C),
      H,
      W,
      C,
      [3, 2, 15, 15],
      So,
      So,
      0,
      0,
      So,
      false,
    );
    for (let y = 0; y < So; y++) {
      for (let x = 0; x < So; x++) {
        for (let k = 0; k < 3; k++) {
          const g = gpu[3 * So * So * 3 + (y * So + x) * 3 + k];
          assert(Math.abs(g - cpuNoFlip[(y * So + (So - 1 - x)) * 3 + k]) <= 1, "flip mirrors");
        }
      }
    }
    if (C === 1) {
      for (let i = 0; i < gpu.length; i += 3) {
        assert(gpu[i] === gpu[i + 1] && gpu[i] === gpu[i + 2], "grey→RGB");
      }
    }
  }
  assertGpuHealthy();
});

Deno.test("geometry: identity resample is exact", async () => {
  const img = uploadIdentity(imgs, B, S);
  assertEquals(Array.from(await readPacked(img)), Array.from(imgs));
  img.dispose();
});

Deno.test("eval Resize(short side) + CenterCrop matches torchvision sizes and PIL resampling", async () => {
  // Source 16×20 (H×W): Resize(12) → 12×15 (W = int(12·20/16)), CenterCrop(10): top 1, left round(2.5) = 2.
  const H = 16, W = 20, So = 10;
  const g = chainGeometry([{ op: "resize", size: 12 }, { op: "centerCrop", size: 10 }], H, W, So, So);
  assertEquals([g.vw, g.vh, g.ox, g.oy], [15, 12, 2, 1]);
  // Imagenette's Resize(192) → CenterCrop(160) on a 192² image at 160: window 16 px in.
  const g2 = chainGeometry(
    [{ op: "resize", size: 192 }, { op: "centerCrop", size: 160 }],
    192,
    192,
    160,
    160,
  );
  assertEquals([g2.vw, g2.vh, g2.ox, g2.oy], [192, 192, 16, 16]);
  // Scaled to a 32 px run: Resize(38) → CenterCrop(32).
  const g3 = chainGeometry([{ op: "resize", size: 192 }, { op: "centerCrop", size: 160 }], 192, 192, 32, 160);
  assertEquals([g3.vw, g3.vh, g3.ox, g3.oy], [38, 38, 3, 3]);
  const src = testImage(H, W, 3, 77);
  const prot: DatasetProtocol = {
    ...referenceProtocol("cifar10"),
    inputSize: So,
    test: [{ op: "resize", size: 12 }, { op: "centerCrop", size: 10 }],
  };
  const source: ImageSource = {
    count: 1,
    height: H,
    width: W,
    channels: 3,
    labels: [7],
    readImages: (idx, out) => idx.forEach((_, i) => out.set(src, i * src.length)),
  };
  const loader = createEvalLoader({ source, protocol: prot, batchSize: 2, imageSize: So });
  for await (const batch of loader.batchesIter()) {
    assertEquals(batch.valid, 1);
    assertEquals(batch.x.shape, [2, So, So, 3]);
    const x = await batch.x.data();
    batch.x.dispose();
    const cpu = cpuResize(src, H, W, 3, [0, 0, W, H], 15, 12, 2, 1, So);
    const m = prot.mean, s = prot.std;
    let maxErr = 0;
    for (let i = 0; i < So * So * 3; i++) {
      const ref = (cpu[i] / 255 - m[i % 3]) / s[i % 3];
      maxErr = Math.max(maxErr, Math.abs(x[i] - ref));
    }
    // ≤ 1 uint8 level after normalisation (1/255/std ≈ 0.016).
    assert(maxErr <= 1 / 255 / 0.24 + 1e-5, `eval max err ${maxErr}`);
  }
});

Deno.test("normalisation, erasing box and CutMix box/perm on the GPU match a CPU reference", async () => {
  const img = uploadIdentity(imgs, B, S);
  const mean = [0.4914, 0.4822, 0.4465], std = [0.2471, 0.2435, 0.2616];
  const erase = new Float32Array(B * OUT_STRIDE);
  erase.set([2, 3, 5, 4], 1 * OUT_STRIDE); // image 1: rows 2..6, cols 3..6
  const cut = { c1: 4, c2: 12, r1: 0, r2: 6, perm: [1, 2, 0] };
  const out = outputPass(img, { mean, std }, erase, cut);
  const x = await out.data();
  img.dispose();
  out.dispose();
  let maxErr = 0;
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < S; y++) {
      for (let xx = 0; xx < S; xx++) {
        const inBox = xx >= cut.c1 && xx < cut.c2 && y >= cut.r1 && y < cut.r2;
        const src = inBox ? cut.perm[b] : b;
        const erased = src === 1 && y >= 2 && y < 7 && xx >= 3 && xx < 7;
        for (let k = 0; k < 3; k++) {
          const ref = erased ? 0 : (imgs[((src * S + y) * S + xx) * 3 + k] / 255 - mean[k]) / std[k];
          maxErr = Math.max(maxErr, Math.abs(x[((b * S + y) * S + xx) * 3 + k] - ref));
        }
      }
    }
  }
  assert(maxErr < 1e-5, `normalise/erase/cutmix max err ${maxErr}`);
});

Deno.test("ColorJitter ops with fixed factors: brightness, contrast, saturation, hue", async () => {
  const f = [0.8, 1.17, 1.3];
  await checkOp(
    "brightness",
    f.map((v) => ({ code: OpCode.brightness, args: [v] })),
    (im, b) => cpuBrightness(im, S, f[b]),
    1,
    0.01,
  );
  await checkOp(
    "contrast",
    f.map((v) => ({ code: OpCode.contrast, args: [0.7 * v] })),
    (im, b) => cpuContrast(im, S, 0.7 * f[b]),
    1,
    0.01,
  );
  await checkOp(
    "saturation",
    f.map((v) => ({ code: OpCode.color, args: [v] })),
    (im, b) => cpuColor(im, S, f[b]),
    1,
    0.01,
  );
  const shifts = [-51, 13, 40];
  await checkOp(
    "hue",
    shifts.map((v) => ({ code: OpCode.hue, args: [v] })),
    (im, b) => cpuHue(im, S, shifts[b]),
    // A float32 vs double difference can move the 8-bit hue by one step (≤ ~6 levels in a channel).
    8,
    0.01,
  );
});

Deno.test("RandAugment geometric ops (shear, translate, rotate; nearest, fill 0) match PIL's affine", async () => {
  const size = S;
  const ra = { op: "randAugment" as const, numOps: 2, magnitude: 10, numMagnitudeBins: 31 };
  const [shear] = randAugmentMagnitude("ShearX", ra, size);
  assertAlmostEquals(shear, 0.1, 1e-6);
  const [tr224] = randAugmentMagnitude("TranslateX", ra, 224);
  assertEquals(Math.trunc(tr224), 33);
  const [tr160] = randAugmentMagnitude("TranslateX", ra, 160);
  assertEquals(Math.trunc(tr160), 24);
  const [rot] = randAugmentMagnitude("Rotate", ra, size);
  assertAlmostEquals(rot, 10, 1e-5);
  const cases: Array<[string, number]> = [
    ["ShearX", shear],
    ["ShearX", -shear],
    ["ShearY", shear],
    [
      "TranslateX",
      5,
    ],
    ["TranslateY", -4],
    ["Rotate", rot],
    ["Rotate", -rot],
  ];
  for (let i = 0; i < cases.length; i += B) {
    const batch = cases.slice(i, i + B);
    while (batch.length < B) batch.push(["TranslateX", 0]);
    const ops = batch.map(([n, m]) => randAugmentOp(n as "ShearX", m, size)!);
    await checkOp(
      `affine ${batch.map((c) => c.join(" ")).join(", ")}`,
      ops,
      (im, b) => cpuAffine(im, S, ops[b].args),
      255,
      0.005,
    );
  }
  // Translation by +5 moves content right and fills the left 5 columns with 0.
  const shifted = cpuAffine(one(0), S, randAugmentOp("TranslateX", 5, S)!.args);
  assertEquals(shifted[0], 0);
  assertEquals(shifted[5 * 3], one(0)[0]);
  // PIL rotate matrix: the centre maps to itself.
  const m = rotateMatrix(10, S);
  assertAlmostEquals(m[0] * S / 2 + m[1] * S / 2 + m[2], S / 2, 1e-9);
});

Deno.test("RandAugment posterize, solarize, autocontrast, equalize, sharpness, colour ops match PIL", async () => {
  const ra = { op: "randAugment" as const, numOps: 2, magnitude: 10, numMagnitudeBins: 31 };
  assertEquals(randAugmentMagnitude("Posterize", ra, S)[0], 7);
  assertEquals(randAugmentMagnitude("Solarize", ra, S)[0], 170);
  const post = randAugmentOp("Posterize", 7, S)!;
  assertEquals(post.args[0], 0xfe);
  await checkOp(
    "posterize",
    [post, post, post],
    (im) => cpuPointOp(im, S, (r, g, b) => [r & 0xfe, g & 0xfe, b & 0xfe]),
    0,
    0,
  );
  const sol = randAugmentOp("Solarize", 170, S)!;
  await checkOp(
    "solarize",
    [sol, sol, sol],
    (im) => cpuPointOp(im, S, (r, g, b) => [r, g, b].map((v) => v < 170 ? v : 255 - v)),
    0,
    0,
  );
  // Low-contrast images make autocontrast/equalize non-trivial.
  const low = new Uint8Array(imgs.length);
  for (let i = 0; i < low.length; i++) low[i] = 60 + Math.floor(imgs[i] / 3);
  const ac = { code: OpCode.autocontrast, args: [] };
  const gpuAc = await gpuOps(low, B, S, [ac, ac, ac]);
  const eq = { code: OpCode.equalize, args: [] };
  const gpuEq = await gpuOps(low, B, S, [eq, eq, eq]);
  for (let b = 0; b < B; b++) {
    const im = low.subarray(b * S * S * 3, (b + 1) * S * S * 3);
    assertClose(
      gpuAc.subarray(b * S * S * 3, (b + 1) * S * S * 3),
      cpuLutOp(im, S, autocontrastLut),
      1,
      0.02,
      "autocontrast",
    );
    assertClose(
      gpuEq.subarray(b * S * S * 3, (b + 1) * S * S * 3),
      cpuLutOp(im, S, equalizeLut),
      0,
      0,
      "equalize",
    );
  }
  const sf = [0.7, 1.3, 1.0];
  await checkOp(
    "sharpness",
    sf.map((v) => ({ code: OpCode.sharpness, args: [v] })),
    (im, b) => cpuSharpness(im, S, sf[b]),
    1,
    0.02,
  );
  await checkOp(
    "RA brightness",
    [
      randAugmentOp("Brightness", -0.3, S)!,
      randAugmentOp("Brightness", 0.3, S)!,
      randAugmentOp("Color", 0.3, S)!,
    ],
    (im, b) => b === 2 ? cpuColor(im, S, 1.3) : cpuBrightness(im, S, b === 0 ? 0.7 : 1.3),
    1,
    0.01,
  );
});

Deno.test("fused pass: a neighbourhood/statistics op then pointwise ops equals the ops one by one", async () => {
  const chains: ImageOp[][] = [
    [{ code: OpCode.contrast, args: [1.25] }, { code: OpCode.brightness, args: [0.9] }, {
      code: OpCode.hue,
      args: [-30],
    }, { code: OpCode.color, args: [1.2] }],
    [{ code: OpCode.affine, args: rotateMatrix(10, S) }, { code: OpCode.solarize, args: [170] }, {
      code: OpCode.posterize,
      args: [0xfe],
    }],
    [{ code: OpCode.equalize, args: [] }, { code: OpCode.brightness, args: [1.2] }],
  ];
  const gpu = await gpuOps(imgs, B, S, chains);
  for (let b = 0; b < B; b++) {
    let ref: Uint8Array = one(b);
    for (const op of chains[b]) {
      if (op.code === OpCode.contrast) ref = cpuContrast(ref, S, op.args[0]);
      else if (op.code === OpCode.brightness) ref = cpuBrightness(ref, S, op.args[0]);
      else if (op.code === OpCode.hue) ref = cpuHue(ref, S, op.args[0]);
      else if (op.code === OpCode.color) ref = cpuColor(ref, S, op.args[0]);
      else if (op.code === OpCode.affine) ref = cpuAffine(ref, S, op.args);
      else if (op.code === OpCode.solarize) {
        ref = cpuPointOp(ref, S, (r, g, bl) => [r, g, bl].map((v) => v < 170 ? v : 255 - v));
      } else if (op.code === OpCode.posterize) {
        ref = cpuPointOp(ref, S, (r, g, bl) => [r & 0xfe, g & 0xfe, bl & 0xfe]);
      } else if (op.code === OpCode.equalize) ref = cpuLutOp(ref, S, equalizeLut);
    }
    assertClose(gpu.subarray(b * S * S * 3, (b + 1) * S * S * 3), ref, 1, 0.02, `chain ${b}`);
  }
  // Segmentation: ops needing neighbours or statistics start a pass.
  const seg = segmentOps([
    { code: OpCode.brightness, args: [1] },
    { code: OpCode.hue, args: [1] },
    { code: OpCode.contrast, args: [1] },
    { code: OpCode.color, args: [1] },
    { code: OpCode.affine, args: [1, 0, 0, 0, 1, 0] },
  ]);
  assertEquals(seg.map((p) => p.map((o) => o.code)), [[2, 5], [3, 4], [1]]);
});

// ---------------------------------------------------------------------------------------------
// Random draws

Deno.test("flip rate ≈ 0.5 over 2000 draws", () => {
  const p = compileTrain(referenceProtocol("ham10000"), 224, 224, 32);
  let flips = 0;
  const rng = new Rng(7);
  for (let i = 0; i < 20; i++) {
    const plan = planTrainBatch(p, rng, { height: 224, width: 224 }, 100, 100, false);
    flips += plan.flips.reduce((a, b) => a + b, 0);
  }
  // 2000 Bernoulli(0.5): sd ≈ 0.011; allow 4 sd.
  assertAlmostEquals(flips / 2000, 0.5, 0.045);
});

Deno.test("CutMix: λ ~ U(0,1) (mean, KS bound), box rule as coded, perm over valid rows only", () => {
  const rng = new Rng(11);
  const n = 2000, lams: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = drawCutMix(rng, 32, 8, 6);
    lams.push(c.lambda);
    const cut = Math.trunc(32 * Math.sqrt(1 - c.lambda));
    assertEquals(c.c1, Math.max(c.cx - Math.floor(cut / 2), 0));
    assertEquals(c.c2, Math.min(c.cx + Math.floor(cut / 2), 32));
    assertEquals(c.r1, Math.max(c.cy - Math.floor(cut / 2), 0));
    assertEquals(c.r2, Math.min(c.cy + Math.floor(cut / 2), 32));
    assert(c.cx >= 0 && c.cx < 32 && c.cy >= 0 && c.cy < 32);
    assertEquals(Array.from(c.perm).slice(0, 6).sort(), [0, 1, 2, 3, 4, 5]);
    assertEquals([c.perm[6], c.perm[7]], [6, 7]);
  }
  const mean = lams.reduce((a, b) => a + b, 0) / n;
  assertAlmostEquals(mean, 0.5, 0.03);
  lams.sort((a, b) => a - b);
  let ks = 0;
  for (let i = 0; i < n; i++) ks = Math.max(ks, Math.abs((i + 1) / n - lams[i]), Math.abs(i / n - lams[i]));
  // KS critical value at α = 0.01: 1.63/√n ≈ 0.036.
  assert(ks < 1.63 / Math.sqrt(n), `KS ${ks}`);
});

Deno.test("RandomResizedCrop: CIFAR square crops of 30-32 px; ratio (1,1) on non-square falls back to the centred square", () => {
  const rng = new Rng(3);
  const sides = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const b = randomResizedCropBox(rng, 32, 32, [0.9, 1.1], [1, 1]);
    assertEquals(b.width, b.height);
    assert(b.width >= 30 && b.width <= 32, `side ${b.width}`);
    assert(b.top >= 0 && b.left >= 0 && b.top + b.height <= 32 && b.left + b.width <= 32);
    sides.add(b.width);
  }
  assertEquals([...sides].sort(), [30, 31, 32]);
  // 40 wide × 30 high: every try needs side ≥ √(0.9·1200) ≈ 33 > 30, so all 10 fail.
  for (let i = 0; i < 200; i++) {
    assertEquals(randomResizedCropBox(rng, 30, 40, [0.9, 1.1], [1, 1]), {
      top: 0,
      left: 5,
      height: 30,
      width: 30,
    });
  }
  // Default ratio on a square image: area fraction within scale bounds (up to rounding).
  for (let i = 0; i < 1000; i++) {
    const b = randomResizedCropBox(rng, 100, 100, [0.9, 1.1], [3 / 4, 4 / 3]);
    const frac = b.width * b.height / 10000;
    assert(frac >= 0.86 && frac <= 1.0, `area fraction ${frac}`);
    assert(b.width / b.height >= 0.7 && b.width / b.height <= 1.4);
  }
  // Erasing boxes stay inside and smaller than the image.
  const op = referenceProtocol("cifar100").train.find((o) => o.op === "randomErasing")!;
  for (let i = 0; i < 500; i++) {
    const e = randomErasingBox(rng, 32, op as Parameters<typeof randomErasingBox>[2]);
    if (!e) continue;
    assert(e.height < 32 && e.width < 32 && e.top + e.height <= 32 && e.left + e.width <= 32);
  }
});

// ---------------------------------------------------------------------------------------------
// Loaders

function syntheticSource(count: number, h: number, w: number, c: number): ImageSource {
  const labels = new Int32Array(count).map((_, i) => i % 10);
  const imageBytes = h * w * c;
  const pool = randomBytes(imageBytes * 4, 5);
  return {
    count,
    height: h,
    width: w,
    channels: c,
    labels,
    readImages(idx, out) {
      for (let i = 0; i < idx.length; i++) {
        out.set(pool.subarray((idx[i] % 4) * imageBytes, (idx[i] % 4 + 1) * imageBytes), i * imageBytes);
        out[i * imageBytes] = idx[i] & 255; // makes every image distinct
      }
    },
  };
}

Deno.test("train loader: shapes, padding vs drop_last, seeded order, resume, no tensor leak over 20 batches", async () => {
  const source = syntheticSource(45, 12, 12, 3);
  const protocol = referenceProtocol("cifar100"); // RRC + flip + RandAugment + ColorJitter + erasing
  const loader = createTrainLoader({ source, protocol, batchSize: 8, imageSize: 8, seed: 1 });
  assertEquals(loader.batchesPerEpoch, 6);
  const ord = loader.order(0);
  assertEquals([...ord].sort((a, b) => a - b), Array.from({ length: 45 }, (_, i) => i));
  assertEquals(
    Array.from(createTrainLoader({ source, protocol, batchSize: 8, imageSize: 8, seed: 1 }).order(0)),
    Array.from(ord),
  );
  assert(Array.from(loader.order(1)).join() !== Array.from(ord).join(), "epochs differ");

  const before = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  let batches = 0;
  let third: Float32Array | undefined;
  for (let e = 0; e < 4 && batches < 20; e++) {
    let k = 0;
    for await (const b of loader.epoch(e)) {
      assertEquals(b.x.shape, [8, 8, 8, 3]);
      assertEquals(b.yA.shape, [8]);
      assertEquals(b.valid, k === 5 ? 5 : 8);
      assert(b.lambda >= 0 && b.lambda < 1);
      if (e === 1 && k === 2) third = await b.x.data() as Float32Array;
      if (e === 0 && k === 0) {
        const ya = await b.yA.data();
        assertEquals(Array.from(ya), Array.from(ord.slice(0, 8)).map((i) => i % 10));
      }
      tf.dispose([b.x, b.yA, b.yB]);
      batches++;
      k++;
      if (batches === 20) break;
    }
  }
  assertEquals(tf.memory().numTensors, before, "no tensor leak");
  assertEquals(tf.memory().numBytes, bytesBefore, "no byte leak");
  assertGpuHealthy();

  // Resume at epoch 1, batch 2 gives the same batch.
  for await (const b of loader.epoch(1, 2)) {
    const x = await b.x.data();
    tf.dispose([b.x, b.yA, b.yB]);
    assertEquals(diff(x, third!).max, 0);
    assertEquals(loader.rngState(), { seed: 1, epoch: 1, nextBatch: 3 });
    break;
  }

  const dl = createTrainLoader({
    source,
    protocol: referenceProtocol("ham10000"),
    batchSize: 8,
    imageSize: 8,
    seed: 2,
  });
  assertEquals(dl.batchesPerEpoch, 5);
  let n = 0;
  for await (const b of dl.epoch(0)) {
    assertEquals(b.valid, 8);
    tf.dispose([b.x, b.yA, b.yB]);
    n++;
  }
  assertEquals(n, 5);
});

Deno.test("train loader without CutMix: yB equals yA, lambda 1; grey source expands to RGB", async () => {
  const source = syntheticSource(10, 28, 28, 1);
  const loader = createTrainLoader({
    source,
    protocol: paperProtocol("fashion-mnist"),
    batchSize: 4,
    imageSize: 8,
    seed: 0,
    cutmix: false,
    limit: 6,
  });
  assertEquals(loader.batchesPerEpoch, 2);
  for await (const b of loader.epoch(0)) {
    assertEquals(b.lambda, 1);
    assertEquals(Array.from(await b.yA.data()), Array.from(await b.yB.data()));
    assertEquals(b.x.shape, [4, 8, 8, 3]);
    tf.dispose([b.x, b.yA, b.yB]);
  }
});

Deno.test("every protocol compiles for its stored size at 32 px and at its own input size", () => {
  // Stored sizes of data/datasets.ts.
  const stored: Record<string, number> = {
    "cifar10": 32,
    "cifar100": 32,
    "imagenette160": 192,
    "stanford-dogs": 256,
    "ham10000": 224,
    "mit-indoor67": 256,
    "miniplaces": 128,
    "fashion-mnist": 28,
    "imagefolder": 256,
  };
  assertEquals([...PROTOCOL_DATASETS].sort(), Object.keys(stored).sort());
  for (const ds of PROTOCOL_DATASETS) {
    for (const preset of ["reference", "paper"] as const) {
      const p = protocolFor(ds, preset);
      for (const size of [32, p.inputSize]) {
        compileTrain(p, stored[ds], stored[ds], size);
        const e = compileEval(p, stored[ds], stored[ds], size).fixed!;
        assert(
          e.ox >= 0 && e.oy >= 0 && e.ox + size <= e.vw && e.oy + size <= e.vh,
          `${ds} ${preset} ${size}`,
        );
      }
    }
  }
  // Stanford Dogs: CenterCrop(224) of the 256 image; at 32 px the same fraction (37 → 32).
  const dogs = compileEval(referenceProtocol("stanford-dogs"), 256, 256, 224).fixed!;
  assertEquals([dogs.vw, dogs.ox], [256, 16]);
  const dogs32 = compileEval(referenceProtocol("stanford-dogs"), 256, 256, 32).fixed!;
  assertEquals([dogs32.vw, dogs32.ox], [37, 2]);
  assertEquals(paperProtocol("cifar10").train.map((o) => o.op), ["resize", "hflip", "colorJitter"]);
});

// ---------------------------------------------------------------------------------------------
// Geometry on the original image of a stretched cache (Imagenette: W0×H0 stored as 192×384; the
// geometry tests below also use square stores — the mapping through the source size is the same)

/** Smooth image (no noise): a resample of a resample stays within a few levels of one resample. */
function smoothImage(h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < 3; k++) {
        const v = 128 + 60 * Math.sin((x + 7 * k) / 17) + 50 * Math.cos((y - 5 * k) / 13) + 0.08 * (x - y);
        out[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

/** The stored stretch of an original (PIL bilinear resize of the whole image to hs×ws; square here). */
function stretch(orig: Uint8Array, h0: number, w0: number, hs: number): Uint8Array {
  return cpuResize(orig, h0, w0, 3, [0, 0, w0, h0], hs, hs, 0, 0, hs);
}

/** Normalised float output of one image back to uint8 levels. */
function toLevels(x: ArrayLike<number>, mean: number[], std: number[], n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (x[i] * std[i % 3] + mean[i % 3]) * 255;
  return out;
}

Deno.test("stretched source: eval Resize(192)+CenterCrop(160) is torchvision's on the 213x160 original", async () => {
  const W0 = 213, H0 = 160, Hs = 192, Ws = 192, So = 160;
  const prot = referenceProtocol("imagenette160");
  const p = compileEval(prot, Hs, Ws, So);
  const orig = { sizes: [W0, H0], height: Hs, width: Ws };
  // torchvision: Resize(192) → short side 160 → 192, long int(192·213/160) = int(255.6) = 255;
  // CenterCrop(160): top = round((192−160)/2) = 16, left = round((255−160)/2) = round(47.5) = 48.
  const g = planEvalBatch(p, 1, orig);
  assertEquals(Array.from(g.subarray(0, 9)), [0, 0, 192, 192, 255, 192, 48, 16, 0]);
  assertEquals(fixedGeometryOn(p, W0, H0, Hs, Ws).box, { left: 0, top: 0, width: 192, height: 192 });
  // The kept window in stored pixels: x ∈ [48, 208)·192/255 (original [48, 208)·213/255, then ·192/213),
  // y ∈ [16, 176) (original [16, 176)·160/192 = [13.33, 146.67), then ·192/160).
  const win = (o: number, n: number, box: number, v: number) => [o * box / v, (o + n) * box / v];
  const [x0, x1] = win(g[6], So, g[2], g[4]), [y0, y1] = win(g[7], So, g[3], g[5]);
  assertAlmostEquals(x0, 48 * 213 / 255 * 192 / 213, 1e-9);
  assertAlmostEquals(x1, 208 * 213 / 255 * 192 / 213, 1e-9);
  assertAlmostEquals(y0, 16 * 160 / 192 * 192 / 160, 1e-9);
  assertAlmostEquals(y1, 176 * 160 / 192 * 192 / 160, 1e-9);
  // Its aspect in original pixels is torchvision's (160·213/255)/(160·160/192) ≈ 1.0024 (int() of the
  // long side), where the stored-square geometry's is 213/160.
  assertAlmostEquals(
    ((x1 - x0) * W0 / Ws) / ((y1 - y0) * H0 / Hs),
    (160 * 213 / 255) / (160 * 160 / 192),
    1e-9,
  );
  // At a 32 px run (factor 0.2): source 43x32, Resize(38) → 51x38, CenterCrop(32) at (round(9.5), 3) = (10, 3).
  const g32 = planEvalBatch(compileEval(prot, Hs, Ws, 32), 1, orig);
  assertEquals(Array.from(g32.subarray(4, 8)), [51, 38, 10, 3]);
  // No sizes (or a 0 size): the stored-image geometry as before.
  assertEquals(Array.from(planEvalBatch(p, 1).subarray(0, 8)), [0, 0, 192, 192, 192, 192, 16, 16]);
  assertEquals(Array.from(planEvalBatch(p, 1, { ...orig, sizes: [0, 0] }).subarray(4, 8)), [
    192,
    192,
    16,
    16,
  ]);

  // Pixels: the GPU on the stored stretch vs a CPU PIL reference that resizes the ORIGINAL.
  const original = smoothImage(H0, W0);
  const stored = stretch(original, H0, W0, Hs);
  const source: ImageSource = {
    count: 1,
    height: Hs,
    width: Ws,
    channels: 3,
    labels: [3],
    sourceSizes: new Uint16Array([W0, H0]),
    readImages: (idx, out) => idx.forEach((_, i) => out.set(stored, i * stored.length)),
  };
  const loader = createEvalLoader({ source, protocol: prot, batchSize: 1, imageSize: So });
  const ref = cpuResize(original, H0, W0, 3, [0, 0, W0, H0], 255, 192, 48, 16, So);
  const old = cpuResize(original, H0, W0, 3, [0, 0, W0, H0], 192, 192, 16, 16, So);
  for await (const batch of loader) {
    const got = toLevels(await batch.x.data(), prot.mean, prot.std, So * So * 3);
    batch.x.dispose();
    // Two resamples (stretch, then stretch back) vs one: ≤ 2 levels on this smooth image; the
    // stored-square geometry (what the loader did before) is far off.
    const d = diff(Array.from(got, Math.round), ref);
    assert(d.max <= 2, `original-geometry max diff ${d.max}`);
    assert(diff(Array.from(got, Math.round), old).max > 40, "differs from the stretched-square geometry");
  }
  assertGpuHealthy();
});

/** A PIL bilinear stretch of the whole original to hs×ws (two square crops of the hs×ws resize). */
function stretchTo(orig: Uint8Array, h0: number, w0: number, hs: number, ws: number): Uint8Array {
  const out = new Uint8Array(hs * ws * 3);
  for (let ox = 0; ox < ws; ox += hs) {
    const part = cpuResize(orig, h0, w0, 3, [0, 0, w0, h0], ws, hs, ox, 0, hs);
    for (let y = 0; y < hs; y++) out.set(part.subarray(y * hs * 3, (y + 1) * hs * 3), (y * ws + ox) * 3);
  }
  return out;
}

Deno.test("Imagenette storage (192x384): a 2:1 original keeps its horizontal detail; a 192x192 stretch loses it", async () => {
  const W0 = 320, H0 = 160, So = 160;
  const prot = referenceProtocol("imagenette160");
  // Vertical stripes of period 3.1 px in the original: the eval Resize(192) (320 → 384 columns)
  // keeps them; a 192-column store (0.6×) cannot.
  const original = new Uint8Array(H0 * W0 * 3);
  for (let y = 0; y < H0; y++) {
    for (let x = 0; x < W0; x++) {
      for (let k = 0; k < 3; k++) {
        original[(y * W0 + x) * 3 + k] = Math.round(
          128 + 100 * Math.sin((2 * Math.PI * x) / 3.1 + k) + 0.1 * y,
        );
      }
    }
  }
  // torchvision: Resize(192) → 384x192; CenterCrop(160) at left round((384−160)/2) = 112, top 16.
  const ref = cpuResize(original, H0, W0, 3, [0, 0, W0, H0], 384, 192, 112, 16, So);
  const evalOf = async (Hs: number, Ws: number) => {
    const stored = stretchTo(original, H0, W0, Hs, Ws);
    const source: ImageSource = {
      count: 1,
      height: Hs,
      width: Ws,
      channels: 3,
      labels: [0],
      sourceSizes: new Uint16Array([W0, H0]),
      readImages: (idx, out) => idx.forEach((_, i) => out.set(stored, i * stored.length)),
    };
    const loader = createEvalLoader({ source, protocol: prot, batchSize: 1, imageSize: So });
    for await (const batch of loader) {
      const got = toLevels(await batch.x.data(), prot.mean, prot.std, So * So * 3);
      batch.x.dispose();
      return diff(Array.from(got, Math.round), ref);
    }
    throw new Error("no batch");
  };
  const wide = await evalOf(192, 384), square = await evalOf(192, 192);
  // The stored 384 columns are torchvision's own Resize(192) columns, so the crop is exact (measured:
  // 0 levels); allow 2 for the resampling kernels' float rounding.
  assert(wide.max <= 2, `192x384 store: max diff ${wide.max} levels from torchvision's eval crop`);
  assert(square.max > 60, `192x192 store should have lost the stripes (max diff ${square.max})`);
});

Deno.test("stretched source: RandomResizedCrop drawn on the original keeps its ratio bounds (1000 draws)", () => {
  const Hs = 192, Ws = 192;
  const prot = referenceProtocol("imagenette160"); // RRC scale (0.9, 1.1), ratio (3/4, 4/3)
  const p = compileTrain(prot, Hs, Ws, 32);
  const shapes = [[213, 160], [160, 213], [240, 160], [160, 240], [300, 200], [120, 200], [160, 160]];
  const B = 50, rounds = 20;
  let n = 0, fallback = 0;
  const aspects: number[] = [];
  const rng = new Rng(21);
  for (let r = 0; r < rounds; r++) {
    const sizes = new Uint32Array(2 * B);
    for (let i = 0; i < B; i++) sizes.set(shapes[(r * B + i) % shapes.length], 2 * i);
    const plan = planTrainBatch(p, rng, { height: Hs, width: Ws }, B, B, false, {
      sizes,
      height: Hs,
      width: Ws,
    });
    for (let i = 0; i < B; i++) {
      const [W0, H0] = [sizes[2 * i], sizes[2 * i + 1]];
      const [left, top, bw, bh] = plan.geom.subarray(i * GEOM_STRIDE, i * GEOM_STRIDE + 4);
      assert(
        left >= 0 && top >= 0 && left + bw <= Ws + 1e-3 && top + bh <= Hs + 1e-3,
        "inside the stored image",
      );
      // Back in original pixels the box is torchvision's integer box (up to the 1/1024 px snap).
      const [x, y, w, h] = [left * W0 / Ws, top * H0 / Hs, bw * W0 / Ws, bh * H0 / Hs].map((v) => {
        assertAlmostEquals(v, Math.round(v), 0.01);
        return Math.round(v);
      });
      assert(x + w <= W0 && y + h <= H0, "inside the original");
      const aspect = w / h, inRatio = W0 / H0;
      if (inRatio < 3 / 4) {
        // Too tall for the ratio range: every try fails, fallback w = W, h = round(W / (3/4)), centred.
        assertEquals([x, y, w, h], [0, Math.floor((H0 - h) / 2), W0, Math.round(W0 * 4 / 3)]);
        fallback++;
      } else if (inRatio > 4 / 3) {
        assertEquals([x, y, w, h], [Math.floor((W0 - w) / 2), 0, Math.round(H0 * 4 / 3), H0]);
        fallback++;
      } else {
        const area = w * h / (W0 * H0);
        assert(area >= 0.9 * 0.98 && area <= 1, `${W0}x${H0}: area ${area}`);
        aspects.push(aspect);
      }
      // Ratio bounds up to rounding w and h to whole pixels (±0.5 px of ≥ 100 px: < 1 %).
      assert(aspect >= 0.75 * 0.99 && aspect <= 4 / 3 * 1.01, `${W0}x${H0}: aspect ${aspect}`);
      n++;
    }
  }
  assertEquals(n, 1000);
  assert(fallback > 500, `fallbacks ${fallback}`);
  // 213x160 needs h ≤ 160 with area ≥ 0.9·W·H, i.e. aspect ≥ 1.198: the accepted draws sit there.
  assert(aspects.some((a) => a > 1.2) && aspects.some((a) => a < 0.84), "both orientations drawn");
  // Drawn on the stored square instead (the old behaviour), 213x160 crops leave the bounds in original pixels.
  const r2 = new Rng(22);
  let outside = 0;
  for (let i = 0; i < 200; i++) {
    const b = randomResizedCropBox(r2, Hs, Ws, [0.9, 1.1], [3 / 4, 4 / 3]);
    if ((b.width * 213 / Ws) / (b.height * 160 / Hs) > 4 / 3 * 1.01) outside++;
  }
  assert(outside > 10, `stored-square draws outside the bounds: ${outside}`);

  // The first draw of image 0 is the crop: the same generator gives torchvision's box on the original.
  const first = planTrainBatch(p, new Rng(5), { height: Hs, width: Ws }, 1, 1, false, {
    sizes: [213, 160],
    height: Hs,
    width: Ws,
  });
  const box = randomResizedCropBox(new Rng(5), 160, 213, [0.9, 1.1], [3 / 4, 4 / 3]);
  const snap = (v: number) => Math.round(v * 1024) / 1024;
  const l = snap(box.left * 192 / 213), t = snap(box.top * 192 / 160);
  assertEquals(Array.from(first.geom.subarray(0, 4)), [
    fr(l),
    fr(t),
    fr(snap((box.left + box.width) * 192 / 213) - l),
    fr(snap((box.top + box.height) * 192 / 160) - t),
  ]);
});

/**
 * PIL-style two-pass resize of a fractional box [x0, x0 + bw) × [y0, y0 + bh) to n×n, as the
 * kernels define it: centres x0 + (i + 0.5)·scale, taps clamped to [floor(x0), ceil(x0 + bw)).
 */
function cpuResizeFractional(
  src: Uint8Array,
  H: number,
  W: number,
  box: ArrayLike<number>,
  n: number,
  flip: boolean,
): Uint8Array {
  const coeffs = (x0: number, bw: number, lim: number) => {
    const sc = bw / n, fs = Math.max(sc, 1);
    const lo = Math.floor(x0), hi = Math.min(Math.ceil(x0 + bw), lim);
    return Array.from({ length: n }, (_, i) => {
      const c = x0 + (i + 0.5) * sc;
      const a = Math.max(Math.floor(c - fs + 0.5), lo), b = Math.min(Math.floor(c + fs + 0.5), hi);
      const w: number[] = [];
      for (let t = a; t < b; t++) w.push(Math.max(0, 1 - Math.abs((t - c + 0.5) / fs)));
      const sum = w.reduce((u, v) => u + v, 0);
      return { a, w: w.map((k) => k / sum) };
    });
  };
  const cx = coeffs(box[0], box[2], W), cy = coeffs(box[1], box[3], H);
  const round8 = (v: number) => Math.max(0, Math.min(255, Math.floor(v + 0.5)));
  const mid = new Uint8Array(H * n * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < n; x++) {
      for (let k = 0; k < 3; k++) {
        let acc = 0;
        cx[x].w.forEach((w, i) => acc += w * src[(y * W + cx[x].a + i) * 3 + k]);
        mid[(y * n + x) * 3 + k] = round8(acc);
      }
    }
  }
  const out = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const vx = flip ? n - 1 - x : x;
      for (let k = 0; k < 3; k++) {
        let acc = 0;
        cy[y].w.forEach((w, j) => acc += w * mid[((cy[y].a + j) * n + vx) * 3 + k]);
        out[(y * n + x) * 3 + k] = round8(acc);
      }
    }
  }
  return out;
}

Deno.test("stretched source: a fractional crop box on the GPU matches the crop of the original on the CPU", async () => {
  const W0 = 213, H0 = 160, Hs = 64, Ws = 64, So = 24;
  const original = smoothImage(H0, W0);
  const stored = stretch(original, H0, W0, Hs);
  // Smaller crops than Imagenette's scale (0.9, 1.1), so boxes sit inside the image at fractional offsets.
  const prot: DatasetProtocol = {
    ...referenceProtocol("imagenette160"),
    train: [{ op: "randomResizedCrop", scale: [0.3, 0.6], ratio: [3 / 4, 4 / 3] }, { op: "hflip", p: 0.5 }],
  };
  const p = compileTrain(prot, Hs, Ws, So);
  const n = 6;
  const sizes = new Uint32Array(2 * n).fill(0).map((_, i) => (i % 2 === 0 ? W0 : H0));
  const plan = planTrainBatch(p, new Rng(9), { height: Hs, width: Ws }, n, n, false, {
    sizes,
    height: Hs,
    width: Ws,
  });
  const shape = { n, height: Hs, width: Ws, channels: 3 };
  const pixels = new Uint8Array(n * stored.length);
  for (let i = 0; i < n; i++) pixels.set(stored, i * stored.length);
  const src = uploadBytes(pixels, shape);
  const img = geometryPass(src, shape, plan.geom, So);
  const got = await readPacked(img);
  tf.dispose([src, img]);
  let fractional = 0;
  for (let i = 0; i < n; i++) {
    const [left, top, bw, bh] = plan.geom.subarray(i * GEOM_STRIDE, i * GEOM_STRIDE + 4);
    if ([left, top, bw, bh].some((v) => v !== Math.round(v))) fractional++;
    const box: [number, number, number, number] = [
      Math.round(left * W0 / Ws),
      Math.round(top * H0 / Hs),
      Math.round(bw * W0 / Ws),
      Math.round(bh * H0 / Hs),
    ];
    const gi = got.subarray(i * So * So * 3, (i + 1) * So * So * 3);
    // The kernels' fractional-box resampling: float32 vs double weights, ±1 on a .5 tie.
    const frac = cpuResizeFractional(stored, Hs, Ws, [left, top, bw, bh], So, plan.flips[i] === 1);
    assertClose(gi, frac, 1, 0.01, `image ${i} vs the fractional-box reference`);
    // Against the original's integer crop resized directly: the 213x160 → 64² stretch blurs (≈ 3
    // levels in exact arithmetic on this image, + uint8 rounding); rounding the mapped box to whole
    // stored pixels instead gives 4-10 levels here, truncating its offsets 6-18.
    const ref = cpuResize(original, H0, W0, 3, box, So, So, 0, 0, So, plan.flips[i] === 1);
    assertClose(gi, ref, 4, 0.6, `image ${i} vs the original's crop`);
  }
  assert(fractional >= n - 1, `mapped boxes are fractional (${fractional} of ${n})`);
  assertGpuHealthy();
});

Deno.test("train loader with source sizes: per-image crops, same shapes; bad size counts are a UserError", async () => {
  const base = syntheticSource(5, 16, 16, 3);
  const source: ImageSource = {
    ...base,
    sourceSizes: new Uint16Array([20, 12, 12, 20, 16, 16, 30, 10, 9, 9]),
  };
  const loader = createTrainLoader({
    source,
    protocol: referenceProtocol("imagenette160"),
    batchSize: 4,
    imageSize: 8,
    seed: 3,
  });
  for await (const b of loader.epoch(0)) {
    assertEquals(b.x.shape, [4, 8, 8, 3]);
    tf.dispose([b.x, b.yA, b.yB]);
  }
  const ev = createEvalLoader({
    source,
    protocol: referenceProtocol("imagenette160"),
    batchSize: 4,
    imageSize: 8,
  });
  for await (const b of ev) {
    assertEquals(b.x.shape, [4, 8, 8, 3]);
    b.x.dispose();
  }
  let threw = false;
  try {
    createEvalLoader({
      source: { ...base, sourceSizes: [1, 2] },
      protocol: referenceProtocol("cifar10"),
      imageSize: 8,
    });
  } catch (e) {
    threw = (e as Error).name === "UserError";
  }
  assert(threw, "short sourceSizes → UserError");
  assertGpuHealthy();
});

Deno.test("fromCacheSplit passes source sizes only for a split flagged sourceGeometry", () => {
  const split = {
    count: 2,
    height: 8,
    width: 8,
    channels: 3,
    labels: [0, 1],
    sourceSizes: new Uint16Array([10, 6, 7, 9]),
    gather: (_i: ArrayLike<number>, out?: Uint8Array) => Promise.resolve(out ?? new Uint8Array(0)),
  };
  assertEquals(fromCacheSplit(split).sourceSizes, undefined);
  assertEquals(Array.from(fromCacheSplit({ ...split, sourceGeometry: true }).sourceSizes!), [10, 6, 7, 9]);
});

Deno.test("planEvalBatch: from a stored centre square the test chain keeps the stored-image geometry (the train plan's rule)", () => {
  const S = 256, n = 4;
  const p = compileEval(referenceProtocol("mit-indoor67"), S, S, 224);
  const sizes = [400, 300, 300, 500, 640, 480, 0, 0];
  const stored = planEvalBatch(p, n);
  assertEquals(planEvalBatch(p, n, { sizes, height: S, width: S, fit: "center-square" }), stored);
  // A stretch of the same originals is measured on them instead.
  const stretched = planEvalBatch(p, n, { sizes, height: S, width: S, fit: "stretch" });
  assert(Array.from(stretched.subarray(0, 8)).join() !== Array.from(stored.subarray(0, 8)).join());
});
