/**
 * The packed dataset cache: every image of a split decoded once into one raw uint8 file, so that
 * training reads fixed-shape batches without touching a decoder.
 *
 * Layout of a cache directory (default `.cache/<dataset id>`):
 * | file | content |
 * |---|---|
 * | `manifest.json` | {@link CacheManifest}; written last, so its presence means the cache is complete |
 * | `<split>.u8` | images, raw uint8 `[N, H, W, C]` (HWC, row-major), `H*W*C` bytes per image |
 * | `<split>.labels` | class indices, uint16 little-endian `[N]` |
 * | `<split>.sizes` | source image size before resizing, uint16 little-endian `[N, 2]` = (width, height) |
 * | `split.json` | a generated split (Stanford Dogs, HAM10000), kept across rebuilds |
 * | `.journal.json`, `*.partial` | progress of an unfinished build (resume state) |
 *
 * A build ({@link buildCache}) is idempotent (an unchanged source fingerprint does nothing),
 * resumable (chunks are appended to `*.partial` files and acknowledged in the journal; a killed run
 * truncates to the last acknowledged chunk and continues), and detects source changes (sizes and
 * mtimes of every source file, reader options and the decoding policy version). Unreadable images
 * are skipped, reported and counted in the manifest; they never abort the build.
 *
 * Reading ({@link openCache}): a split either lives in memory (up to `maxInMemoryBytes`) or is read
 * by file offset per batch.
 *
 * This module: the on-disk format (versions, manifest, file names and helpers); build.ts writes a
 * cache, read.ts opens one, mod.ts exports both.
 *
 * @module
 */
import { join } from "node:path";
import type { StorageSpec } from "../images.ts";

/** Version of the on-disk layout; {@link openCache} refuses other versions. */
export const CACHE_FORMAT_VERSION = 1;

/**
 * Version of the decoding policy (decoder options, resampling, reader semantics). Part of the
 * fingerprint: bumping it makes every existing cache rebuild.
 */
export const DECODE_POLICY_VERSION = "sharp-0.34-linear-1";

/** One split's entry in the manifest. */
export interface ManifestSplit {
  /** Images stored. */
  count: number;
  /** Source items, stored plus skipped. */
  sourceCount: number;
  /** Images stored per class index. */
  perClass: number[];
  /** Items skipped as unreadable. */
  skipped: number;
  /** File names (relative to the cache directory). */
  files: { images: string; labels: string; sizes: string };
}

/** An item that could not be read. */
export interface SkippedItem {
  /** Split name. */
  split: string;
  /** The item, as the reader describes it (root-relative path or `file#record`). */
  item: string;
  /** Why (decoder or file-system message). */
  reason: string;
}

/** `manifest.json`: everything a loader needs to know about a cache. */
export interface CacheManifest {
  /** {@link CACHE_FORMAT_VERSION} at write time. */
  formatVersion: number;
  /** Dataset registry id. */
  dataset: string;
  /** Recognised source format. */
  sourceFormat: string;
  /** Absolute source root. */
  sourceRoot: string;
  /** Class names in index order. */
  classNames: string[];
  /** `classNames.length`. */
  numClasses: number;
  /** Stored image shape and how sources were fitted to it. */
  storage: StorageSpec;
  /**
   * The protocol's geometry is defined on the source image, of which each stored image is a
   * whole-image stretch or the largest centred square (`storage.fit`; registry flag,
   * data/datasets.ts): loaders draw crops on `<split>.sizes`.
   * Absent in caches written before the flag existed (geometry then applies to the stored image).
   */
  sourceGeometry?: boolean;
  /** Pixel layout of the `.u8` files. */
  pixelLayout: "NHWC-uint8";
  /** Label file encoding. */
  labelEncoding: "uint16le";
  /** Source-size file encoding. */
  sizeEncoding: "uint16le-width-height";
  /** Split names in write order. */
  splitOrder: string[];
  /** Per-split counts and files. */
  splits: Record<string, ManifestSplit>;
  /** Every skipped item with its reason. */
  skipped: SkippedItem[];
  /** SHA-256 over source file sizes/mtimes, reader options and {@link DECODE_POLICY_VERSION}. */
  fingerprint: string;
  /** Reader options that shaped the content (split method, seed, ...). */
  options: Record<string, string | number>;
  /** Reader notes (split provenance, storage choices). */
  notes: string[];
  /** {@link DECODE_POLICY_VERSION} at write time. */
  decodePolicy: string;
  /** ISO time the build finished. */
  createdAt: string;
}

/** File names inside a cache directory. */
export const MANIFEST = "manifest.json";

export const JOURNAL = ".journal.json";

export const LOCK = ".prepare.lock";

/** The three files of split `name`. */
export function splitFiles(name: string) {
  return { images: `${name}.u8`, labels: `${name}.labels`, sizes: `${name}.sizes` };
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A JSON file's value, or undefined when it is missing or not JSON. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** A file's size in bytes, or -1 when it cannot be stat-ed. */
async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return -1;
  }
}

/** True if every file of `manifest` exists with the size its counts imply. */
export async function filesComplete(dir: string, manifest: CacheManifest): Promise<boolean> {
  const imageBytes = manifest.storage.height * manifest.storage.width * manifest.storage.channels;
  for (const name of manifest.splitOrder) {
    const s = manifest.splits[name];
    if (!s) return false;
    if (await fileSize(join(dir, s.files.images)) !== s.count * imageBytes) return false;
    if (await fileSize(join(dir, s.files.labels)) !== s.count * 2) return false;
    if (await fileSize(join(dir, s.files.sizes)) !== s.count * 4) return false;
  }
  return true;
}

/** Serialises a uint16 array little-endian regardless of the host byte order. */
export function leBytes(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setUint16(2 * i, a[i], true);
  return out;
}

/** Little-endian bytes as uint16 values. */
export function readLe16(bytes: Uint8Array): Uint16Array {
  const n = bytes.length >> 1;
  const out = new Uint16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
  return out;
}
