/**
 * Reading the packed cache ({@link openCache}): a split either lives in memory (up to
 * `maxInMemoryBytes`) or is read by file offset per batch. The format is data/cache/format.ts.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import type { StorageSpec } from "../images.ts";
import {
  CACHE_FORMAT_VERSION,
  type CacheManifest,
  filesComplete,
  MANIFEST,
  type ManifestSplit,
  readJson,
  readLe16,
} from "./format.ts";

/** One split of an opened cache. */
export interface CacheSplit {
  /** Split name. */
  readonly name: string;
  /** Images in the split. */
  readonly count: number;
  /** Stored image height. */
  readonly height: number;
  /** Stored image width. */
  readonly width: number;
  /** Stored channels (1 or 3). */
  readonly channels: number;
  /** Bytes per image, `height * width * channels`. */
  readonly imageBytes: number;
  /** All class indices of the split (in memory). */
  readonly labels: Uint16Array;
  /** Source sizes before resizing, `[count * 2]` as (width, height) pairs. */
  readonly sourceSizes: Uint16Array;
  /**
   * The manifest's {@link CacheManifest.sourceGeometry}, for whole-image stretches and centred
   * squares (see {@link CacheSplit.storageFit}).
   */
  readonly sourceGeometry: boolean;
  /** How each stored image was cut from its source (the manifest's `storage.fit`). */
  readonly storageFit: StorageSpec["fit"];
  /** True if the pixels were loaded into memory; false if batches are read by file offset. */
  readonly inMemory: boolean;
  /**
   * Images `start..end-1` as one `[end - start, H, W, C]` array: a view into memory when
   * {@link CacheSplit.inMemory}, a fresh buffer read from the file otherwise.
   */
  images(start: number, end: number): Promise<Uint8Array>;
  /** The images at `indices`, packed in that order into `out` (or a new `[n, H, W, C]` buffer). */
  gather(indices: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array>;
  /** The labels at `indices` as int32 (the dtype tfjs uses for class indices). */
  gatherLabels(indices: ArrayLike<number>, out?: Int32Array): Int32Array;
  /** Releases the file handle (no-op when in memory). */
  close(): void;
}

/** An opened cache directory. */
export interface CacheHandle {
  /** The directory. */
  readonly dir: string;
  /** Its manifest. */
  readonly manifest: CacheManifest;
  /** Split names in manifest order. */
  readonly splitNames: string[];
  /** Opens a split (loads it into memory if it fits `maxInMemoryBytes`). */
  split(name: string): Promise<CacheSplit>;
  /** Closes every split opened through this handle. */
  close(): void;
}

/** Options of {@link openCache}. */
export interface OpenCacheOptions {
  /** Splits up to this many pixel bytes are read into memory (default 2 GiB); larger ones are read per batch. */
  maxInMemoryBytes?: number;
}

/**
 * Opens a complete cache directory. A missing or unfinished cache, or one of another format
 * version, is a {@link UserError} telling the user to run `deno task prepare`.
 */
export async function openCache(dir: string, opts: OpenCacheOptions = {}): Promise<CacheHandle> {
  const manifest = await readJson<CacheManifest>(join(dir, MANIFEST));
  const hint = manifest
    ? `deno task prepare --dataset ${manifest.dataset}`
    : "deno task prepare --dataset <id>";
  if (!manifest) throw new UserError(`no prepared cache in ${dir} (no ${MANIFEST}); run ${hint}`);
  if (manifest.formatVersion !== CACHE_FORMAT_VERSION) {
    throw new UserError(
      `${
        join(dir, MANIFEST)
      }: cache format ${manifest.formatVersion}, expected ${CACHE_FORMAT_VERSION}; run ${hint}`,
    );
  }
  if (!(await filesComplete(dir, manifest))) {
    throw new UserError(`${dir}: cache files are missing or have the wrong size; run ${hint}`);
  }
  const limit = opts.maxInMemoryBytes ?? 2 * 1024 ** 3;
  const opened: CacheSplit[] = [];
  return {
    dir,
    manifest,
    splitNames: [...manifest.splitOrder],
    async split(name: string) {
      const s = manifest.splits[name];
      if (!s) throw new UserError(`${dir}: no split "${name}" (have ${manifest.splitOrder.join(", ")})`);
      const sp = await openSplit(dir, name, s, manifest.storage, limit, manifest.sourceGeometry === true);
      opened.push(sp);
      return sp;
    },
    close() {
      for (const s of opened) s.close();
      opened.length = 0;
    },
  };
}

async function readExactly(file: Deno.FsFile, out: Uint8Array, position: number): Promise<void> {
  await file.seek(position, Deno.SeekMode.Start);
  let off = 0;
  while (off < out.length) {
    const n = await file.read(out.subarray(off, Math.min(out.length, off + (64 << 20))));
    if (n === null) throw new Error(`unexpected end of cache file at byte ${position + off}`);
    off += n;
  }
}

async function openSplit(
  dir: string,
  name: string,
  s: ManifestSplit,
  storage: StorageSpec,
  limit: number,
  sourceGeometry: boolean,
): Promise<CacheSplit> {
  const imageBytes = storage.height * storage.width * storage.channels;
  const labels = readLe16(await Deno.readFile(join(dir, s.files.labels)));
  const sourceSizes = readLe16(await Deno.readFile(join(dir, s.files.sizes)));
  const total = s.count * imageBytes;
  const inMemory = total <= limit;
  const file = await Deno.open(join(dir, s.files.images), { read: true });
  let pixels: Uint8Array | undefined;
  if (inMemory) {
    pixels = new Uint8Array(total);
    try {
      await readExactly(file, pixels, 0);
    } finally {
      file.close();
    }
  }
  // Seek+read pairs on one handle must not interleave between concurrent batch reads.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
  const check = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= s.count) {
      throw new RangeError(`${name}: image index ${i} outside 0..${s.count - 1}`);
    }
  };
  return {
    name,
    count: s.count,
    height: storage.height,
    width: storage.width,
    channels: storage.channels,
    imageBytes,
    labels,
    sourceSizes,
    sourceGeometry,
    storageFit: storage.fit,
    inMemory,
    images(start, end) {
      if (end < start || start < 0 || end > s.count) {
        return Promise.reject(new RangeError(`${name}: range ${start}..${end} outside 0..${s.count}`));
      }
      if (pixels) return Promise.resolve(pixels.subarray(start * imageBytes, end * imageBytes));
      const out = new Uint8Array((end - start) * imageBytes);
      return serial(() => readExactly(file, out, start * imageBytes)).then(() => out);
    },
    async gather(indices, out) {
      const n = indices.length;
      const dst = out ?? new Uint8Array(n * imageBytes);
      if (dst.length < n * imageBytes) {
        throw new RangeError(`gather: output holds ${dst.length} bytes, need ${n * imageBytes}`);
      }
      for (let j = 0; j < n; j++) check(indices[j]);
      if (pixels) {
        for (let j = 0; j < n; j++) {
          const i = indices[j];
          dst.set(pixels.subarray(i * imageBytes, (i + 1) * imageBytes), j * imageBytes);
        }
        return dst;
      }
      // Read runs of consecutive indices with one seek+read each.
      const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => indices[a] - indices[b]);
      await serial(async () => {
        let r = 0;
        while (r < n) {
          let e = r + 1;
          while (e < n && indices[order[e]] === indices[order[e - 1]] + 1) e++;
          const first = indices[order[r]];
          const buf = new Uint8Array((e - r) * imageBytes);
          await readExactly(file, buf, first * imageBytes);
          for (let k = r; k < e; k++) {
            dst.set(buf.subarray((k - r) * imageBytes, (k - r + 1) * imageBytes), order[k] * imageBytes);
          }
          r = e;
        }
      });
      return dst;
    },
    gatherLabels(indices, out) {
      const dst = out ?? new Int32Array(indices.length);
      for (let j = 0; j < indices.length; j++) {
        check(indices[j]);
        dst[j] = labels[indices[j]];
      }
      return dst;
    },
    close() {
      if (!pixels) {
        try {
          file.close();
        } catch {
          // already closed
        }
      }
    },
  };
}
