/**
 * What every dataset reader returns, plus the helpers they share: root checks, path-escape
 * checks for paths read from list files, and a torchvision-compatible ImageFolder scan.
 *
 * Readers only read: they parse the source layout and return lazily loaded splits. Decoding and
 * writing the packed cache is `data/cache/`'s job.
 *
 * @module
 */
import { MAX_TEXT_INPUT_BYTES, readFileBounded, readTextFileBounded } from "../../runtime/cli.ts";
import { isAbsolute, join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import { type DecodedImage, decodeToStorage, type StorageFit, type StorageSpec } from "../images.ts";

/** One split of a dataset source: labels are known up front, pixels load per item. */
export interface SplitSource {
  /** Split name: "train", "test" (the split a paper evaluates on) or "val". */
  name: string;
  /** Number of source items (before any skipped as unreadable). */
  count: number;
  /** Class index of item `i`. */
  label(i: number): number;
  /** Where item `i` comes from, for error reports: a root-relative path or `file#record`. */
  describe(i: number): string;
  /** Decodes item `i` at the dataset's storage size; throws if the item is unreadable. */
  load(i: number): Promise<DecodedImage>;
}

/** A dataset found on disk by a reader. */
export interface DatasetSource {
  /** Registry id, e.g. "cifar10". */
  id: string;
  /** The on-disk format that was recognised, e.g. "cifar-10 python pickle". */
  format: string;
  /** Absolute dataset root. */
  root: string;
  /** Class names in class-index order. */
  classNames: string[];
  /** Stored size of every image. */
  storage: StorageSpec;
  /** Splits in the order they are written. */
  splits: SplitSource[];
  /** Every source file the cache depends on (absolute paths), for change detection. */
  sourceFiles: string[];
  /** Reader options that change the cache's content (split method, seed, size); part of the fingerprint. */
  options: Record<string, string | number>;
  /** Human-readable notes recorded in the manifest (e.g. where a split came from). */
  notes: string[];
}

/** Options every reader accepts; each uses what applies to it. */
export interface ReaderOptions {
  /** Dataset root as given by the user. */
  root: string;
  /** Cache directory, where readers persist generated split files. */
  cacheDir: string;
  /** Split method, for datasets that have a choice (Stanford Dogs: "random" | "official"; HAM10000: "sklearn" | "stratified"). */
  split?: string;
  /** Seed for generated splits. */
  seed?: number;
  /** Stored square size override (generic ImageFolder). */
  size?: number;
  /** Stored fit override (generic ImageFolder). */
  fit?: StorageFit;
  /** Re-encode stored images as JPEG at this quality (Stanford Dogs' reference cache). */
  jpegQuality?: number;
}

/** torchvision's `IMG_EXTENSIONS` (compared lower-case), i.e. the files ImageFolder picks up. */
export const IMG_EXTENSIONS = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"];

/** True if `name` has one of {@link IMG_EXTENSIONS}. */
export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMG_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** Stat that returns undefined instead of throwing NotFound. */
export async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return undefined;
    throw err;
  }
}

/**
 * Checks a path read from a list file or CSV: it must be relative and stay inside the dataset
 * root (no `..` segment, no absolute or drive path, no NUL). Returns it with `/` separators.
 */
export function safeRelPath(rel: string, where: string): string {
  const bad = (why: string): never => {
    throw new UserError(
      `${where}: path "${rel}" ${why}; list files must hold paths relative to the dataset root`,
    );
  };
  if (rel.length === 0) bad("is empty");
  if (rel.includes("\0")) bad("contains a NUL byte");
  if (isAbsolute(rel) || rel.startsWith("\\") || /^[A-Za-z]:/.test(rel)) bad("is absolute");
  const parts = rel.split(/[\\/]+/).filter((p) => p !== "" && p !== ".");
  if (parts.some((p) => p === "..")) bad("escapes the dataset root");
  if (parts.length === 0) bad("is empty");
  return parts.join("/");
}

/** Sorts strings by UTF-16 code units, as Python's `sorted` does for BMP text. */
export function sortCodeUnits(xs: string[]): string[] {
  return xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Names of the sub-directories of `dir` (symlinks followed), sorted. */
export async function listDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory || (e.isSymlink && (await statOrUndefined(join(dir, e.name)))?.isDirectory)) {
      out.push(e.name);
    }
  }
  return sortCodeUnits(out);
}

/** One labelled image file, `path` relative to the dataset root. */
export interface FileItem {
  /** Root-relative path with `/` separators. */
  path: string;
  /** Class index. */
  label: number;
}

/**
 * Lists an ImageFolder tree as torchvision's `ImageFolder` does: classes are the sorted immediate
 * sub-directories; inside each, `sorted(os.walk(...))` order with `sorted(fnames)`, keeping
 * files with {@link IMG_EXTENSIONS}. `rel` is the folder relative to `root`.
 */
export async function scanImageFolder(
  root: string,
  rel: string,
  classes?: string[],
): Promise<{ classes: string[]; items: FileItem[] }> {
  const base = join(root, rel);
  const found = await listDirs(base);
  const classNames = classes ?? found;
  const index = new Map(classNames.map((c, i) => [c, i]));
  const items: FileItem[] = [];
  for (const cls of found) {
    const label = index.get(cls);
    if (label === undefined) {
      throw new UserError(
        `${
          join(base, cls)
        }: class folder not among the training classes; every split must use the same class folders`,
      );
    }
    const dirs: string[] = [];
    // Symlinked folders are followed (as torchvision's os.walk(followlinks=True)); a link back to an
    // ancestor would recurse forever, so the chain of real paths is tracked and a loop refused.
    const walk = async (d: string, ancestors: string[]) => {
      const real = await Deno.realPath(join(base, d));
      if (ancestors.includes(real)) {
        throw new UserError(
          `${join(base, d)}: symbolic link loop (leads back to ${real}); remove or replace the link`,
        );
      }
      dirs.push(d);
      for (const sub of await listDirs(join(base, d))) await walk(`${d}/${sub}`, [...ancestors, real]);
    };
    await walk(cls, []);
    for (const d of sortCodeUnits(dirs)) {
      const files: string[] = [];
      for await (const e of Deno.readDir(join(base, d))) {
        if (!isImageFile(e.name)) continue;
        if (e.isFile || (e.isSymlink && (await statOrUndefined(join(base, d, e.name)))?.isFile)) {
          files.push(e.name);
        }
      }
      for (const f of sortCodeUnits(files)) {
        items.push({ path: rel ? `${rel}/${d}/${f}` : `${d}/${f}`, label });
      }
    }
  }
  return { classes: classNames, items };
}

/** The largest image file read (bytes); larger files are skipped as unreadable. */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

/** A split whose items are encoded image files under `root`, decoded with sharp at `storage`. */
export function fileSplit(name: string, root: string, items: FileItem[], storage: StorageSpec): SplitSource {
  return {
    name,
    count: items.length,
    label: (i) => items[i].label,
    describe: (i) => items[i].path,
    load: async (i) => {
      let bytes: Uint8Array;
      try {
        // Bounded: an image path that is a device or FIFO (or absurdly large) is skipped, not read forever.
        bytes = await readFileBounded(join(root, items[i].path), MAX_IMAGE_FILE_BYTES);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw new Error("file not found");
        throw err;
      }
      return await decodeToStorage(bytes, storage);
    },
  };
}

/** A split whose items are already-decoded fixed-size HWC pixels (raw formats). */
export function arraySplit(
  name: string,
  labels: Int32Array,
  storage: StorageSpec,
  pixels: (i: number) => Uint8Array,
  describe: (i: number) => string,
): SplitSource {
  return {
    name,
    count: labels.length,
    label: (i) => labels[i],
    describe,
    load: (i) =>
      Promise.resolve({ pixels: pixels(i), sourceWidth: storage.width, sourceHeight: storage.height }),
  };
}

/** Reads a small text file, returning its non-empty trimmed lines with 1-based line numbers. */
export async function readLines(path: string): Promise<{ text: string; line: number }[]> {
  const text = await readTextFileBounded(path, MAX_TEXT_INPUT_BYTES);
  return text.split(/\r?\n/).map((t, i) => ({ text: t.trim(), line: i + 1 })).filter((l) =>
    l.text.length > 0
  );
}
