/**
 * Augmentation pipelines compiled from a dataset protocol, and the per-batch plans (geometry, op
 * passes, output parameters) the GPU passes consume.
 *
 * @module
 */
import { UserError } from "../../runtime/errors.ts";
import type { Rng } from "../../runtime/rng.ts";
import type {
  ColorJitterOp,
  DatasetProtocol,
  EvalOp,
  RandAugmentOp,
  RandomErasingOp,
  TrainOp,
} from "../protocol.ts";
import {
  GEOM_STRIDE,
  type ImageOp,
  OP_STRIDE,
  OpCode,
  OPS_PER_PASS,
  OUT_STRIDE,
  PASS_STRIDE,
} from "./layout.ts";
import {
  type Box,
  type CutMixPlan,
  drawColorJitter,
  drawCutMix,
  drawRandAugment,
  randomErasingBox,
  randomResizedCropBox,
  roundHalfEven,
} from "./draws.ts";

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

/**
 * The geometry records of an evaluation batch (deterministic): per image on its original size with
 * `original`, except from a stored centred square, which is the Resize/CenterCrop chain's input
 * already (as in {@link planTrainBatch}).
 */
export function planEvalBatch(p: AugmentPipeline, batch: number, original?: OriginalSizes): Float32Array {
  const geom = new Float32Array(batch * GEOM_STRIDE);
  const square = original?.fit === "center-square";
  for (let i = 0; i < batch; i++) {
    const o = originalSize(original, i);
    const g = o && !square ? fixedGeometryOn(p, o[0], o[1], original!.height, original!.width) : p.fixed!;
    writeGeometry(geom, i, g, false);
  }
  return geom;
}
