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
 * @module
 */
import { join, resolve } from "node:path";
import { UserError } from "../runtime/errors.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import type { StorageSpec } from "./images.ts";
import type { DatasetSource } from "./readers/common.ts";

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

/** Options of {@link buildCache}. */
export interface BuildOptions {
  /** Images decoded concurrently (default: the number of CPUs, at least 4; libvips runs one thread per image). */
  concurrency?: number;
  /** Receives progress and status lines (default: stderr). `null` silences them. */
  log?: ((line: string, transient: boolean) => void) | null;
  /** Rebuild even if the cache is up to date. */
  force?: boolean;
  /** Items per written chunk (default: about 8 MiB of pixels, 64..4096 items). */
  chunk?: number;
  /** Testing aid: throw {@link BuildInterrupted} after this many items were written (simulates a kill). */
  interruptAfter?: number;
  /** Recorded as the manifest's {@link CacheManifest.sourceGeometry} (from the dataset registry). */
  sourceGeometry?: boolean;
}

/** What {@link buildCache} did. */
export interface BuildResult {
  /** "up-to-date": nothing to do; "built": from scratch; "resumed": continued an interrupted build. */
  status: "up-to-date" | "built" | "resumed";
  /** The cache's manifest. */
  manifest: CacheManifest;
  /** Items processed by this call (0 when up to date). */
  processed: number;
  /** Wall time of this call in seconds. */
  seconds: number;
}

/** Thrown by {@link buildCache} when `interruptAfter` is reached. */
export class BuildInterrupted extends Error {
  constructor() {
    super("build interrupted (testing aid)");
    this.name = "BuildInterrupted";
  }
}

interface JournalSplit {
  /** Source items consumed (written or skipped). */
  sourceDone: number;
  /** Images written to the partial files. */
  written: number;
  skipped: SkippedItem[];
  done: boolean;
}

interface Journal {
  formatVersion: number;
  fingerprint: string;
  splits: Record<string, JournalSplit>;
}

const MANIFEST = "manifest.json";
const JOURNAL = ".journal.json";
const LOCK = ".prepare.lock";

function splitFiles(name: string) {
  return { images: `${name}.u8`, labels: `${name}.labels`, sizes: `${name}.sizes` };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The source fingerprint: SHA-256 over every source file's root-relative path, size and mtime,
 * plus the reader's format, options, classes, split sizes, storage and the decode policy.
 */
export async function sourceFingerprint(source: DatasetSource): Promise<string> {
  const files = source.sourceFiles;
  const stats: string[] = new Array(files.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const rel = files[i].startsWith(source.root + "/") ? files[i].slice(source.root.length + 1) : files[i];
      try {
        const st = await Deno.stat(files[i]);
        stats[i] = `${rel}\t${st.size}\t${st.mtime?.getTime() ?? 0}`;
      } catch {
        stats[i] = `${rel}\tmissing`;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const head = JSON.stringify({
    formatVersion: CACHE_FORMAT_VERSION,
    policy: DECODE_POLICY_VERSION,
    id: source.id,
    format: source.format,
    storage: source.storage,
    options: source.options,
    classNames: source.classNames,
    splits: source.splits.map((s) => [s.name, s.count]),
  });
  const text = new TextEncoder().encode(head + "\n" + stats.join("\n"));
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", text)));
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return -1;
  }
}

/** True if every file of `manifest` exists with the size its counts imply. */
async function filesComplete(dir: string, manifest: CacheManifest): Promise<boolean> {
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

function isPermissionError(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
}

/**
 * Takes an exclusive advisory lock (flock) on `<dir>/.prepare.lock`. The kernel drops it when the
 * process dies, so a killed build never blocks its own resume, while two live builds of one
 * directory are refused. The lock file itself stays.
 */
async function acquireLock(dir: string): Promise<Deno.FsFile> {
  const path = join(dir, LOCK);
  const file = await Deno.open(path, { read: true, write: true, create: true });
  if (!(await file.tryLock(true))) {
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
    file.close();
    throw new UserError(
      `another prepare${holder ? ` (pid ${holder})` : ""} is writing ${dir}; wait for it to finish`,
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return file;
}

function formatDuration(s: number): string {
  if (!isFinite(s)) return "?";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(sec).padStart(2, "0")}s`
    : `${sec}s`;
}

function defaultLog(): (line: string, transient: boolean) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let lastTransient = 0;
  let pending = false;
  return (line, transient) => {
    if (transient) {
      const now = performance.now();
      // On a terminal redraw in place; in logs print a line every 10 s at most.
      if (!tty && now - lastTransient < 10_000) return;
      lastTransient = now;
      Deno.stderr.writeSync(enc.encode(tty ? `\r\x1b[K${line}` : `${line}\n`));
      pending = tty;
    } else {
      Deno.stderr.writeSync(enc.encode(`${pending ? "\r\x1b[K" : ""}${line}\n`));
      pending = false;
    }
  };
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * Builds (or resumes, or confirms) the packed cache of `source` in `dir`. Returns what it did.
 * Throws {@link UserError} when `dir` cannot be written or is locked by another build.
 */
export async function buildCache(
  source: DatasetSource,
  dir: string,
  opts: BuildOptions = {},
): Promise<BuildResult> {
  const t0 = performance.now();
  const log = opts.log === null ? () => {} : opts.log ?? defaultLog();
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    if (isPermissionError(err)) {
      throw new UserError(
        `cannot write the cache directory ${dir}: ${
          (err as Error).message
        }; prepare may write only under .cache/`,
      );
    }
    throw err;
  }
  const fingerprint = await sourceFingerprint(source);
  const manifestPath = join(dir, MANIFEST);
  const existing = await readJson<CacheManifest>(manifestPath);
  if (
    !opts.force && existing?.formatVersion === CACHE_FORMAT_VERSION && existing.fingerprint === fingerprint &&
    (await filesComplete(dir, existing))
  ) {
    log(`${source.id}: cache ${dir} is up to date (${describeCounts(existing)}); nothing to do`, false);
    const flag = opts.sourceGeometry === true;
    if ((existing.sourceGeometry === true) !== flag) {
      // The flag says how the pixels are read, not what they are: update it without a rebuild.
      existing.sourceGeometry = flag;
      await writeFileAtomic(manifestPath, JSON.stringify(existing, null, 1) + "\n");
    }
    return {
      status: "up-to-date",
      manifest: existing,
      processed: 0,
      seconds: (performance.now() - t0) / 1000,
    };
  }
  if (existing && existing.fingerprint !== fingerprint) {
    log(`${source.id}: source or options changed since the cache was built; rebuilding`, false);
  }

  const lock = await acquireLock(dir);
  try {
    const journalPath = join(dir, JOURNAL);
    let journal = await readJson<Journal>(journalPath);
    let status: BuildResult["status"] = "resumed";
    if (
      opts.force || !journal || journal.formatVersion !== CACHE_FORMAT_VERSION ||
      journal.fingerprint !== fingerprint
    ) {
      status = "built";
      await clearBuildFiles(dir);
      journal = { formatVersion: CACHE_FORMAT_VERSION, fingerprint, splits: {} };
      await writeFileAtomic(journalPath, JSON.stringify(journal));
    } else {
      log(`${source.id}: resuming the interrupted build in ${dir}`, false);
    }

    const imageBytes = source.storage.height * source.storage.width * source.storage.channels;
    const chunk = Math.max(1, opts.chunk ?? Math.min(4096, Math.max(64, Math.floor((8 << 20) / imageBytes))));
    const concurrency = Math.max(1, opts.concurrency ?? Math.max(4, navigator.hardwareConcurrency));
    const total = source.splits.reduce((s, sp) => s + sp.count, 0);
    const startDone = source.splits.reduce((s, sp) => s + (journal!.splits[sp.name]?.sourceDone ?? 0), 0);
    let processed = 0;
    const tStart = performance.now();
    let lastProgress = 0;

    for (const split of source.splits) {
      const js: JournalSplit = journal.splits[split.name] ??
        (journal.splits[split.name] = { sourceDone: 0, written: 0, skipped: [], done: false });
      if (js.done) continue;
      const files = splitFiles(split.name);
      const open = (f: string) =>
        Deno.open(join(dir, `${f}.partial`), { read: true, write: true, create: true });
      const fImg = await open(files.images), fLab = await open(files.labels), fSize = await open(files.sizes);
      try {
        // Drop anything written after the last acknowledged chunk (a kill between write and journal).
        await fImg.truncate(js.written * imageBytes);
        await fLab.truncate(js.written * 2);
        await fSize.truncate(js.written * 4);
        await fImg.seek(js.written * imageBytes, Deno.SeekMode.Start);
        await fLab.seek(js.written * 2, Deno.SeekMode.Start);
        await fSize.seek(js.written * 4, Deno.SeekMode.Start);
        while (js.sourceDone < split.count) {
          const begin = js.sourceDone, end = Math.min(split.count, begin + chunk);
          const results: ({ pixels: Uint8Array; w: number; h: number } | { error: string })[] = new Array(
            end - begin,
          );
          let nextItem = begin;
          const worker = async () => {
            for (let i = nextItem++; i < end; i = nextItem++) {
              try {
                const d = await split.load(i);
                if (d.pixels.length !== imageBytes) {
                  throw new Error(`decoded ${d.pixels.length} bytes, expected ${imageBytes}`);
                }
                results[i - begin] = { pixels: d.pixels, w: d.sourceWidth, h: d.sourceHeight };
              } catch (err) {
                results[i - begin] = { error: String((err as Error)?.message ?? err).split("\n")[0] };
              }
            }
          };
          await Promise.all(Array.from({ length: concurrency }, worker));
          const ok = results.filter((r) => "pixels" in r).length;
          const img = new Uint8Array(ok * imageBytes);
          const lab = new Uint16Array(ok);
          const sizes = new Uint16Array(ok * 2);
          let k = 0;
          results.forEach((r, j) => {
            if ("error" in r) {
              const item = split.describe(begin + j);
              js.skipped.push({ split: split.name, item, reason: r.error });
              log(`${source.id}: skipped ${item}: ${r.error}`, false);
              return;
            }
            img.set(r.pixels, k * imageBytes);
            lab[k] = split.label(begin + j);
            sizes[2 * k] = Math.min(r.w, 65535);
            sizes[2 * k + 1] = Math.min(r.h, 65535);
            k++;
          });
          await writeAll(fImg, img);
          await writeAll(fLab, leBytes(lab));
          await writeAll(fSize, leBytes(sizes));
          js.sourceDone = end;
          js.written += ok;
          await writeFileAtomic(journalPath, JSON.stringify(journal));
          processed += end - begin;
          const now = performance.now();
          if (now - lastProgress > 500 || js.sourceDone === split.count) {
            lastProgress = now;
            const rate = processed / ((now - tStart) / 1000);
            const left = total - startDone - processed;
            log(
              `${source.id} ${split.name}: ${js.sourceDone.toLocaleString("en-US")}/${
                split.count.toLocaleString("en-US")
              }  ${rate.toFixed(0)} img/s  ETA ${formatDuration(left / rate)}`,
              true,
            );
          }
          if (opts.interruptAfter !== undefined && processed >= opts.interruptAfter) {
            throw new BuildInterrupted();
          }
        }
      } finally {
        fImg.close();
        fLab.close();
        fSize.close();
      }
      js.done = true;
      await writeFileAtomic(journalPath, JSON.stringify(journal));
    }

    const manifest = await finalize(source, dir, journal, fingerprint, opts.sourceGeometry === true);
    const seconds = (performance.now() - t0) / 1000;
    log(
      `${source.id}: ${status} ${dir}: ${describeCounts(manifest)}; ${manifest.skipped.length} skipped; ` +
        `${processed} items in ${seconds.toFixed(1)} s (${(processed / seconds).toFixed(0)} img/s)`,
      false,
    );
    return { status, manifest, processed, seconds };
  } finally {
    lock.close();
  }
}

function describeCounts(m: CacheManifest): string {
  return m.splitOrder.map((s) => `${s} ${m.splits[s].count}`).join(", ");
}

/** Serialises a uint16 array little-endian regardless of the host byte order. */
function leBytes(a: Uint16Array): Uint8Array {
  const out = new Uint8Array(a.length * 2);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setUint16(2 * i, a[i], true);
  return out;
}

function readLe16(bytes: Uint8Array): Uint16Array {
  const n = bytes.length >> 1;
  const out = new Uint16Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
  return out;
}

async function clearBuildFiles(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (/\.(u8|labels|sizes)(\.partial)?$/.test(e.name) || e.name === MANIFEST || e.name === JOURNAL) {
      await Deno.remove(join(dir, e.name));
    }
  }
}

async function finalize(
  source: DatasetSource,
  dir: string,
  journal: Journal,
  fingerprint: string,
  sourceGeometry: boolean,
) {
  // The manifest is the commit point: remove it first so a kill mid-way never leaves a stale one.
  await Deno.remove(join(dir, MANIFEST)).catch(() => {});
  const splits: Record<string, ManifestSplit> = {};
  const skipped: SkippedItem[] = [];
  for (const split of source.splits) {
    const js = journal.splits[split.name];
    const files = splitFiles(split.name);
    for (const f of Object.values(files)) {
      if (await exists(join(dir, `${f}.partial`))) await Deno.rename(join(dir, `${f}.partial`), join(dir, f));
    }
    const labels = readLe16(await Deno.readFile(join(dir, files.labels)));
    if (labels.length !== js.written) {
      throw new Error(`${join(dir, files.labels)}: ${labels.length} labels, journal says ${js.written}`);
    }
    const perClass = new Array(source.classNames.length).fill(0);
    for (const y of labels) perClass[y]++;
    splits[split.name] = {
      count: js.written,
      sourceCount: split.count,
      perClass,
      skipped: js.skipped.length,
      files,
    };
    skipped.push(...js.skipped);
  }
  const manifest: CacheManifest = {
    formatVersion: CACHE_FORMAT_VERSION,
    dataset: source.id,
    sourceFormat: source.format,
    sourceRoot: resolve(source.root),
    classNames: source.classNames,
    numClasses: source.classNames.length,
    storage: source.storage,
    sourceGeometry,
    pixelLayout: "NHWC-uint8",
    labelEncoding: "uint16le",
    sizeEncoding: "uint16le-width-height",
    splitOrder: source.splits.map((s) => s.name),
    splits,
    skipped,
    fingerprint,
    options: source.options,
    notes: source.notes,
    decodePolicy: DECODE_POLICY_VERSION,
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 1) + "\n");
  await Deno.remove(join(dir, JOURNAL)).catch(() => {});
  return manifest;
}

// ---------------------------------------------------------------------------------------------
// Reading

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
    sourceGeometry: sourceGeometry && (storage.fit === "stretch" || storage.fit === "center-square"),
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
