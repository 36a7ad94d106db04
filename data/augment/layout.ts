/**
 * The layout of the small per-image parameter tensors the augmentation kernels read (strides and op
 * codes), shared by the CPU-side planning and the WGSL programs.
 *
 * @module
 */

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
