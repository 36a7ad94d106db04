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
