/**
 * CPU-side random draws of the augmentation, with torchvision's rules: crop boxes, erasing boxes,
 * CutMix, RandAugment and ColorJitter parameters. All randomness comes from an {@link Rng}.
 *
 * @module
 */
import type { Rng } from "../../runtime/rng.ts";
import type { ColorJitterOp, RandAugmentOp, RandomErasingOp } from "../protocol.ts";
import { type ImageOp, OpCode } from "./layout.ts";
import type { CutMixBox } from "./programs.ts";

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
