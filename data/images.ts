/**
 * Image decoding and storage-size resampling with sharp (libvips). Every file-based reader goes
 * through {@link decodeToStorage}, so all datasets share one decoder and one resampling policy.
 *
 * Policy, chosen to match torchvision's PIL pipeline as closely as libvips allows:
 * - no EXIF auto-rotation (PIL's `Image.open(...).convert("RGB")` ignores the orientation tag);
 * - the first frame of animated GIFs; alpha is dropped, not composited (as `convert("RGB")`);
 * - greyscale and palette images are expanded to RGB by replication / palette lookup;
 * - resampling uses libvips' `linear` kernel with shrink-on-load disabled, i.e. an antialiased
 *   triangle filter, the same family as PIL's bilinear resize (not bit-identical);
 * - truncated files are errors (PIL raises "image file is truncated" too); other decoder
 *   warnings are tolerated;
 * - formats libvips' prebuilt sharp cannot load (notably BMP) are reported as unreadable and
 *   skipped by the cache builder; 16-bit images are reduced to 8 bits by libvips (may differ by 1
 *   from PIL's high-byte conversion).
 *
 * @module
 */
import type SharpModule from "sharp";

type Sharp = typeof SharpModule;
let sharpLib: Sharp | undefined;

/**
 * sharp (a native addon) is loaded on first use: only image-file datasets need it, and a bundled
 * task (`deno bundle`, for machines without node_modules) must start without it.
 */
async function loadSharp(): Promise<Sharp> {
  if (!sharpLib) {
    const specifier = "sharp";
    sharpLib = (await import(specifier)).default as Sharp;
    sharpLib.concurrency(1);
    sharpLib.cache(false);
  }
  return sharpLib;
}

/** How a decoded image is brought to the stored fixed size. */
export type StorageFit =
  /** Resize the whole image to width x height, distorting the aspect ratio (torchvision `Resize((h, w))`). */
  | "stretch"
  /**
   * Take the largest centred square (offsets floor((W-s)/2), floor((H-s)/2), as RandomResizedCrop's
   * fallback) and resize it to the stored square size.
   */
  | "center-square";

/** The fixed per-split storage shape of a dataset. */
export interface StorageSpec {
  /** Stored image height in pixels. */
  height: number;
  /** Stored image width in pixels. */
  width: number;
  /** Stored channels: 3 (RGB) or 1 (grey). */
  channels: 1 | 3;
  /** How source images are brought to this size (raw-array formats are stored as-is and ignore it). */
  fit: StorageFit;
  /**
   * Re-encode the stored image as baseline JPEG at this quality and store its decode, as the
   * authors' Stanford Dogs cache did (PIL `save(..., "JPEG")`, quality 75, 4:2:0; docs/protocol.md).
   * Absent: the resized pixels are stored losslessly.
   */
  jpegQuality?: number;
}

/** A decoded image at the stored size plus the source image's size. */
export interface DecodedImage {
  /** HWC uint8 pixels, `height * width * channels` bytes. */
  pixels: Uint8Array;
  /** Width of the source image before any resizing. */
  sourceWidth: number;
  /** Height of the source image before any resizing. */
  sourceHeight: number;
}

/**
 * Decodes an encoded image (JPEG, PNG, GIF, WebP, TIFF, ...) and resamples it to `spec`.
 * Throws on undecodable or truncated input; the caller records the file as skipped.
 */
export async function decodeToStorage(encoded: Uint8Array, spec: StorageSpec): Promise<DecodedImage> {
  // One libvips thread per image (set on load): prepare decodes several images concurrently instead.
  const sharp = await loadSharp();
  const options = { failOn: "truncated" as const, pages: 1, page: 0 };
  const meta = await sharp(encoded, options).metadata();
  const sw = meta.width, sh = meta.height;
  if (!sw || !sh) throw new Error("image has no size");
  let pipe = sharp(encoded, options);
  let cropW = sw, cropH = sh;
  if (spec.fit === "center-square") {
    const s = Math.min(sw, sh);
    if (sw !== sh) {
      pipe = pipe.extract({
        left: Math.floor((sw - s) / 2),
        top: Math.floor((sh - s) / 2),
        width: s,
        height: s,
      });
    }
    cropW = cropH = s;
  }
  if (cropW !== spec.width || cropH !== spec.height) {
    pipe = pipe.resize({
      width: spec.width,
      height: spec.height,
      fit: "fill",
      kernel: "linear",
      fastShrinkOnLoad: false,
    });
  }
  pipe = spec.channels === 1 ? pipe.greyscale() : pipe.toColourspace("srgb");
  const { data, info } = await pipe.removeAlpha().raw({ depth: "uchar" }).toBuffer({
    resolveWithObject: true,
  });
  if (info.width !== spec.width || info.height !== spec.height) {
    throw new Error(`decoder returned ${info.width}x${info.height}, expected ${spec.width}x${spec.height}`);
  }
  let px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (spec.jpegQuality !== undefined) {
    px = await reencodeJpeg(px, info.width, info.height, info.channels, spec.jpegQuality);
  }
  return {
    pixels: adaptChannels(px, info.channels, spec.channels, spec.width * spec.height),
    sourceWidth: sw,
    sourceHeight: sh,
  };
}

/**
 * Encodes HWC uint8 pixels as baseline JPEG at `quality` (libjpeg's standard tables scaled as
 * `jpeg_set_quality`, 4:2:0 chroma, as PIL's default save) and decodes them again.
 */
export async function reencodeJpeg(
  px: Uint8Array,
  width: number,
  height: number,
  channels: number,
  quality: number,
): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const raw = { raw: { width, height, channels: channels as 1 | 3 | 4 } };
  const jpeg = await sharp(px, raw).jpeg({ quality, chromaSubsampling: "4:2:0", mozjpeg: false }).toBuffer();
  const { data } = await sharp(jpeg).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Converts interleaved pixels between channel counts (1 -> 3 replicates; n -> 1 keeps the first). */
function adaptChannels(px: Uint8Array, from: number, to: number, n: number): Uint8Array {
  if (from === to) return px.slice();
  const out = new Uint8Array(n * to);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < to; c++) out[i * to + c] = px[i * from + (from === 1 ? 0 : Math.min(c, from - 1))];
  }
  return out;
}

/** Converts planar CHW uint8 pixels (as in CIFAR records) to interleaved HWC. */
export function planarToInterleaved(
  src: Uint8Array,
  channels: number,
  height: number,
  width: number,
  out = new Uint8Array(channels * height * width),
): Uint8Array {
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    for (let p = 0; p < plane; p++) out[p * channels + c] = src[base + p];
  }
  return out;
}
