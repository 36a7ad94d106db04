/**
 * Generated splits persisted as JSON in the cache directory (`<cache>/split.json`), so that a
 * seeded split is both reproducible (same seed, same files -> same split) and stable (a later
 * prepare reuses the stored split instead of silently drawing a new one).
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../../runtime/fs.ts";
import { MAX_TEXT_INPUT_BYTES, readTextFileBounded } from "../../runtime/cli.ts";

/** A persisted split: named lists of root-relative item keys (paths or image ids). */
export interface SplitFile {
  /** Dataset id the split belongs to. */
  dataset: string;
  /** How it was made, e.g. "random-80-20" or "stratified-70-15-15". */
  method: string;
  /** The seed of the generating Rng. */
  seed: number;
  /** Split name -> item keys. */
  splits: Record<string, string[]>;
}

/** The file a split for `cacheDir` lives in. */
export function splitPath(cacheDir: string): string {
  return join(cacheDir, "split.json");
}

/**
 * Returns the stored split if it was made by the same method and seed over exactly the same set
 * of item keys; otherwise builds a new one with `make`, stores it and returns it.
 */
export async function loadOrMakeSplit(
  cacheDir: string,
  dataset: string,
  method: string,
  seed: number,
  keys: string[],
  make: () => Record<string, string[]>,
): Promise<{ split: SplitFile; reused: boolean }> {
  const path = splitPath(cacheDir);
  try {
    const stored = JSON.parse(await readTextFileBounded(path, MAX_TEXT_INPUT_BYTES)) as SplitFile;
    if (stored.dataset === dataset && stored.method === method && stored.seed === seed) {
      const all = Object.values(stored.splits).flat();
      const want = new Set(keys);
      if (all.length === want.size && all.every((k) => want.has(k))) return { split: stored, reused: true };
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) && !(err instanceof SyntaxError)) throw err;
  }
  const split: SplitFile = { dataset, method, seed, splits: make() };
  await writeFileAtomic(path, JSON.stringify(split, null, 1) + "\n");
  return { split, reused: false };
}

/** A short content hash of a split (part of the cache fingerprint). */
export async function splitHash(split: SplitFile): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(split));
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(h.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}
