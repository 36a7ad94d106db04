/**
 * Stanford Dogs reader: `Images/<synset>-<breed>/*.jpg` (the official Images.tar), 120 classes in
 * sorted folder order (ImageFolder; equal to the official 1-based label order minus one).
 *
 * Splits:
 * - `random` (default, the paper's): a random 80/20 split of all images, first floor(0.8 N) of a
 *   permutation are train (16,464 / 4,116 for the full set). The authors' permutation was unseeded
 *   and is lost; ours comes from `Rng(seed)` and is persisted to `<cache>/split.json`.
 * - `official`: the authors' 12,000 / 8,580 lists from lists.tar, read from `train_list.mat` /
 *   `test_list.mat` (MATLAB v5, `file_list` entries like `n02085620-Chihuahua/n02085620_10074.jpg`)
 *   or from text exports `train_list.txt` / `test_list.txt` with one such path per line; searched in
 *   the root and in `root/lists/`.
 *
 * Images are stored as the authors' cache: `Resize((256, 256))`, aspect distorted. The authors
 * additionally round-tripped the cache through JPEG quality 75: the reference preset's cache does
 * the same (`jpegQuality` 75, a separate cache directory); the paper preset keeps the lossless resize.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import { Rng } from "../../runtime/rng.ts";
import type { StorageSpec } from "../images.ts";
import {
  type DatasetSource,
  type FileItem,
  fileSplit,
  type ReaderOptions,
  readLines,
  safeRelPath,
  scanImageFolder,
  statOrUndefined,
} from "./common.ts";
import { matStrings, readMat5 } from "./mat5.ts";
import { loadOrMakeSplit, splitHash } from "./splits.ts";
import { MAX_TEXT_INPUT_BYTES, readFileBounded } from "../../runtime/cli.ts";

const STORAGE: StorageSpec = { height: 256, width: 256, channels: 3, fit: "stretch" };

async function findList(root: string, name: string): Promise<string | undefined> {
  for (const dir of [root, join(root, "lists")]) {
    for (const ext of [".mat", ".txt"]) {
      const p = join(dir, name + ext);
      if ((await statOrUndefined(p))?.isFile) return p;
    }
  }
  return undefined;
}

async function readList(path: string): Promise<string[]> {
  if (path.endsWith(".txt")) {
    return (await readLines(path)).map((l) => safeRelPath(l.text.split(/\s+/)[0], `${path}:${l.line}`));
  }
  let files: string[];
  try {
    files = matStrings(
      (await readMat5(await readFileBounded(path, MAX_TEXT_INPUT_BYTES), path)).get("file_list"),
      `${path}: file_list`,
    );
  } catch (err) {
    throw new UserError(
      `${(err as Error).message}; export the list as ${path.replace(/\.mat$/, ".txt")} instead`,
    );
  }
  return files.map((f, i) => safeRelPath(f, `${path}: file_list[${i}]`));
}

/** Opens Stanford Dogs under `opts.root` (the folder holding `Images/`). */
export async function openStanfordDogs(opts: ReaderOptions): Promise<DatasetSource> {
  let root = opts.root;
  if (!(await statOrUndefined(join(root, "Images")))?.isDirectory) {
    // Accept the Images folder itself as the root.
    if (/\/Images\/?$/.test(root) && (await statOrUndefined(root))?.isDirectory) root = join(root, "..");
    else throw new UserError(`expected Images/ in ${opts.root}; extract the official Images.tar there`);
  }
  const all = await scanImageFolder(root, "Images");
  if (all.items.length === 0) throw new UserError(`${join(root, "Images")}: no images found`);
  const byPath = new Map(all.items.map((it) => [it.path, it]));
  const method = opts.split ?? "random";
  const seed = opts.seed ?? 0;
  const notes: string[] = [];
  let train: FileItem[], test: FileItem[];
  const sourceFiles = all.items.map((it) => join(root, it.path));
  let options: Record<string, string | number>;
  if (method === "random") {
    const keys = all.items.map((it) => it.path);
    const { split, reused } = await loadOrMakeSplit(
      opts.cacheDir,
      "stanford-dogs",
      "random-80-20",
      seed,
      keys,
      () => {
        const perm = new Rng(seed).permutation(keys.length);
        const nTrain = Math.floor(0.8 * keys.length);
        const inTrain = new Uint8Array(keys.length);
        for (let i = 0; i < nTrain; i++) inTrain[perm[i]] = 1;
        return { train: keys.filter((_, i) => inTrain[i]), test: keys.filter((_, i) => !inTrain[i]) };
      },
    );
    train = split.splits.train.map((k) => byPath.get(k)!);
    test = split.splits.test.map((k) => byPath.get(k)!);
    notes.push(`random 80/20 split, seed ${seed}, ${reused ? "reused from" : "written to"} split.json`);
    options = { split: method, seed, splitHash: await splitHash(split) };
  } else if (method === "official") {
    const trainList = await findList(root, "train_list");
    const testList = await findList(root, "test_list");
    if (!trainList || !testList) {
      throw new UserError(
        `expected train_list.mat and test_list.mat (or .txt exports) in ${root} or ${join(root, "lists")}; ` +
          `extract the official lists.tar there, or use --split random`,
      );
    }
    const resolve = (paths: string[], list: string) =>
      paths.map((p) => {
        const it = byPath.get(`Images/${p}`) ?? byPath.get(p);
        if (!it) throw new UserError(`${list}: ${p} is not under ${join(root, "Images")}`);
        return it;
      });
    train = resolve(await readList(trainList), trainList);
    test = resolve(await readList(testList), testList);
    sourceFiles.push(trainList, testList);
    notes.push(`official split from ${trainList} / ${testList}`);
    options = { split: method };
  } else {
    throw new UserError(`--split ${method}: Stanford Dogs splits are "random" (the paper's) or "official"`);
  }
  // The reference preset's cache: the authors' JPEG round trip of the 256x256 image (data/images.ts).
  const storage: StorageSpec = opts.jpegQuality === undefined
    ? STORAGE
    : { ...STORAGE, jpegQuality: opts.jpegQuality };
  if (opts.jpegQuality !== undefined) {
    options.jpegQuality = opts.jpegQuality;
    notes.push(`stored images re-encoded as JPEG quality ${opts.jpegQuality} (the authors' cache)`);
  }
  return {
    id: "stanford-dogs",
    format: "Stanford Dogs Images/",
    root,
    classNames: all.classes,
    storage,
    splits: [fileSplit("train", root, train, storage), fileSplit("test", root, test, storage)],
    sourceFiles,
    options,
    notes,
  };
}
