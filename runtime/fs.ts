/**
 * Crash-safe file writes: results and checkpoints are written to a temp file in the same
 * directory and renamed over the target, so a killed process never leaves a half-written file.
 *
 * @module
 */

/** Writes `data` to `path` atomically (temp file + rename), creating parent directories. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
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

/** Options of {@link tryFlock} / {@link flockWait}. */
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
  const file = await Deno.open(path, { read: true, write: true, create: true });
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (let attempt = 0;; attempt++) {
    if (await file.tryLock(true)) break;
    if (Date.now() >= deadline) {
      file.close();
      return undefined;
    }
    if (attempt === 0) opts.onWait?.((await Deno.readTextFile(path).catch(() => "")).trim());
    await new Promise((r) => setTimeout(r, Math.min(100 * (attempt + 1), 2000)));
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return file;
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
