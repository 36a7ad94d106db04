/**
 * Building the packed cache ({@link buildCache}): idempotent, resumable, change-detecting; one
 * builder per directory (a flock), progress on stderr. The format is data/cache/format.ts.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import { exists, releaseFlock, tryFlock, writeFileAtomic } from "../../runtime/fs.ts";
import { formatDuration } from "../../runtime/format.ts";
import type { DatasetSource } from "../readers/common.ts";
import {
  CACHE_FORMAT_VERSION,
  type CacheManifest,
  DECODE_POLICY_VERSION,
  filesComplete,
  hex,
  JOURNAL,
  leBytes,
  LOCK,
  MANIFEST,
  type ManifestSplit,
  readJson,
  readLe16,
  type SkippedItem,
  splitFiles,
} from "./format.ts";

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

function isPermissionError(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
}

/** How long a training waits for another process's preparation of the same dataset (6 h). */
const PREPARE_WAIT_MS = 6 * 3600_000;

/**
 * Runs `fn` (a dataset preparation into `cacheDir`) while holding an flock on `cacheDir + ".lock"`,
 * waiting up to `waitMs` for another process's preparation to end first. Concurrent trainings (the
 * tasks of a Slurm array) that need one unprepared dataset thus prepare it once: the first builds,
 * the others wait, then find it ready. A timeout is a {@link UserError}. (The build itself also
 * locks `<dir>/.prepare.lock`, refusing a second writer of the folder's files; this lock sits
 * outside the folder so that it survives a rebuild and covers the up-to-date check too.)
 */
export async function withPrepareLock<T>(
  cacheDir: string,
  fn: () => Promise<T>,
  waitMs = PREPARE_WAIT_MS,
): Promise<T> {
  const path = `${cacheDir.replace(/\/+$/, "")}.lock`;
  const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  let lock: Deno.FsFile | undefined;
  try {
    await Deno.mkdir(parent, { recursive: true });
    lock = await tryFlock(path, {
      waitMs,
      onWait: (holder) =>
        console.error(`waiting for ${holder ? `pid ${holder}` : "another process"} to prepare ${cacheDir}`),
    });
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `cannot create ${path}, the lock of ${cacheDir}'s preparation: use a cache folder inside .cache ` +
          `(e.g. .cache/NAME)`,
      );
    }
    throw err;
  }
  if (!lock) {
    throw new UserError(
      `${cacheDir} is still being prepared by another process after ${Math.round(waitMs / 1000)} s ` +
        `(lock ${path}); rerun when it has finished`,
    );
  }
  try {
    return await fn();
  } finally {
    await releaseFlock(lock, path);
  }
}

/**
 * Takes an exclusive advisory lock (flock, runtime/fs.ts) on `<dir>/.prepare.lock`. The kernel drops
 * it when the process dies, so a killed build never blocks its own resume, while two live builds of
 * one directory are refused. The lock file itself stays.
 */
async function acquireLock(dir: string): Promise<Deno.FsFile> {
  const path = join(dir, LOCK);
  const file = await tryFlock(path);
  if (!file) {
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
    throw new UserError(
      `another prepare${holder ? ` (pid ${holder})` : ""} is writing ${dir}; wait for it to finish`,
    );
  }
  return file;
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
