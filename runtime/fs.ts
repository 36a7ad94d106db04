/**
 * Crash-safe file writes: results and checkpoints are written to a temp file in the same
 * directory, fsynced and renamed over the target (then the directory is fsynced), so neither a
 * killed process nor a power loss leaves a half-written or empty file.
 *
 * @module
 */

/** Temp files of a target older than this are left over from a killed writer and removed. */
export const STALE_TEMP_MS = 10 * 60_000;

function parentDir(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Removes `<path>.<pid>.<id>.tmp` files (this module's temp names for `path`) not modified for
 * {@link STALE_TEMP_MS}: a writer killed between write and rename leaves one behind. A live writer
 * keeps touching its temp file, and renames it within seconds of its last write.
 */
export async function removeStaleTemps(path: string, now = Date.now()): Promise<string[]> {
  const dir = parentDir(path);
  const base = path.slice(path.lastIndexOf("/") + 1);
  const pattern = new RegExp(`^${escapeRegExp(base)}\\.\\d+\\.[0-9a-f]{8}\\.tmp$`);
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !pattern.test(e.name)) continue;
      const p = `${dir}/${e.name}`;
      const mtime = (await Deno.stat(p).catch(() => undefined))?.mtime?.getTime();
      if (mtime !== undefined && now - mtime > STALE_TEMP_MS) {
        await Deno.remove(p).then(() => removed.push(p), () => {});
      }
    }
  } catch {
    // Cleanup is best effort (e.g. no read permission on the directory): the write itself decides.
  }
  return removed;
}

/** fsync of a directory, so a rename in it survives a power loss (best effort where unsupported). */
async function syncDir(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    // Platforms or permissions that cannot open a directory: the rename is still atomic.
  } finally {
    f?.close();
  }
}

/** Writes `data` to a fresh temp file next to `path` and fsyncs it; returns the temp path. */
async function writeTemp(path: string, data: string | Uint8Array): Promise<string> {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true });
    try {
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      // Data on disk before the rename publishes it: otherwise a power loss can leave an empty file.
      await f.sync();
    } finally {
      f.close();
    }
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  return tmp;
}

/**
 * Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync of the directory
 * (creating parent directories). Stale temp files of the same target are removed first.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = parentDir(path);
  await Deno.mkdir(dir, { recursive: true });
  await removeStaleTemps(path);
  const tmp = await writeTemp(path, data);
  try {
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

/**
 * Writes several files as a set: every target is checked (an existing directory or a path through
 * a file is refused) and every temp file written and fsynced before the first rename, so a bad
 * output path leaves all targets untouched.
 */
export async function writeFilesAtomic(files: readonly [string, string | Uint8Array][]): Promise<void> {
  for (const [path] of files) {
    const info = await Deno.stat(path).catch((err) => {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    });
    if (info && !info.isFile) throw new Deno.errors.IsADirectory(`${path} exists and is not a file`);
  }
  const temps: string[] = [];
  try {
    for (const [path, data] of files) {
      await Deno.mkdir(parentDir(path), { recursive: true });
      await removeStaleTemps(path);
      temps.push(await writeTemp(path, data));
    }
    for (let i = 0; i < files.length; i++) await Deno.rename(temps[i], files[i][0]);
  } catch (err) {
    for (const t of temps) await Deno.remove(t).catch(() => {});
    throw err;
  }
  for (const dir of new Set(files.map(([p]) => parentDir(p)))) await syncDir(dir);
}

/** True if `path` exists (file or directory). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Runs `fn` while holding an exclusive lock on `path + ".lock"` (a lock file created with
 * `createNew`), so that concurrent processes (e.g. sweep jobs) append to a shared file in turn.
 * Stale locks older than `staleMs` are broken.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, staleMs = 120_000): Promise<T> {
  const lock = `${path}.lock`;
  for (let attempt = 0;; attempt++) {
    try {
      const f = await Deno.open(lock, { write: true, createNew: true });
      f.close();
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      const info = await Deno.stat(lock).catch(() => undefined);
      if (info?.mtime && Date.now() - info.mtime.getTime() > staleMs) {
        await Deno.remove(lock).catch(() => {});
        continue;
      }
      await new Promise((r) => setTimeout(r, Math.min(50 * (attempt + 1), 500)));
    }
  }
  try {
    return await fn();
  } finally {
    await Deno.remove(lock).catch(() => {});
  }
}

/** Options of {@link tryFlock}. */
export interface FlockOptions {
  /** How long to wait for another holder before giving up (default 0: try once). */
  waitMs?: number;
  /** Called once when the lock is busy and waiting starts, with the holder's pid if it wrote one. */
  onWait?: (holder: string) => void;
}

/**
 * Takes an exclusive advisory lock (flock) on `path`, creating the file, and writes this process's
 * pid into it. The kernel drops the lock when the process dies, so a killed holder never leaves a
 * stale lock (unlike {@link withFileLock}'s lock files), which suits locks held for minutes or
 * hours (a dataset preparation, a training run). Polls until `waitMs` has passed; returns the open
 * file (close it to release), or undefined when the lock is still held by someone else.
 */
export async function tryFlock(path: string, opts: FlockOptions = {}): Promise<Deno.FsFile | undefined> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let waited = false;
  for (let attempt = 0;; attempt++) {
    const file = await Deno.open(path, { read: true, write: true, create: true });
    if (await file.tryLock(true)) {
      // A holder that released with releaseFlock unlinked the file after we opened it: our lock is
      // on a file nobody else will open, so start over on the path's current file.
      const now = await Deno.stat(path).catch(() => undefined);
      if (now?.ino === (await file.stat()).ino) {
        await file.truncate(0);
        await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
        return file;
      }
      file.close();
      continue;
    }
    file.close();
    if (Date.now() >= deadline) return undefined;
    if (!waited) opts.onWait?.((await Deno.readTextFile(path).catch(() => "")).trim());
    waited = true;
    await new Promise((r) => setTimeout(r, Math.min(100 * (attempt + 1), 2000)));
  }
}

/**
 * Releases a lock taken with {@link tryFlock} and removes its file, so that short-lived locks (one
 * per dataset preparation) leave nothing behind. Safe against waiters: one that locks the unlinked
 * file sees that the path no longer names it and starts over.
 */
export async function releaseFlock(file: Deno.FsFile, path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
  file.close();
}

/** True if another process holds the flock on `path` (a missing file is not held). */
export async function flockHeld(path: string): Promise<boolean> {
  const file = await Deno.open(path, { read: true }).catch((err) => {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  });
  if (!file) return false;
  try {
    // A shared lock is granted unless someone holds the exclusive one; it is released at once.
    const free = await file.tryLock(false);
    return !free;
  } finally {
    file.close();
  }
}
