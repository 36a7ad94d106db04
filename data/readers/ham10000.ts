/**
 * HAM10000 reader: `HAM10000_metadata.csv` (columns include `image_id` and `dx`) plus
 * `HAM10000_images_part_1/` and `HAM10000_images_part_2/` holding `<image_id>.jpg` (the Kaggle
 * "skin-cancer-mnist-ham10000" layout the paper's code reads; lower-case folder names are accepted).
 *
 * Class index: sorted `dx` (akiec 0, bcc 1, bkl 2, df 3, mel 4, nv 5, vasc 6).
 *
 * Splits (`--split`), both train / val / test = 70 / 15 / 15 with the paper's sizes (7,009 / 1,503 /
 * 1,503 for the full set), persisted to `<cache>/split.json` as lists of image ids:
 * - `sklearn` (default): the paper's exact split. The authors call sklearn's
 *   `train_test_split(df, test_size=0.15, stratify=df.dx, random_state=42)` and again on the rest
 *   with `test_size=0.17647058823529413`; sklearn_split.ts reproduces that index stream (numpy's
 *   MT19937 `RandomState`, legacy permutation, `StratifiedShuffleSplit`), so with the CSV rows in the
 *   official file order the members equal the paper's. `--seed` sets `random_state` (default 42).
 * - `stratified`: the same per-class allocation, members drawn with our `Rng(--seed)` (default 0);
 *   not sklearn's members, for experiments across split seeds.
 *
 * Images are stored as the protocol's `Resize((224, 224))` (aspect distorted), used by both the
 * train and test transforms.
 *
 * @module
 */
import { join } from "node:path";
import { parseCsv } from "../../runtime/csv.ts";
import { UserError } from "../../runtime/errors.ts";
import { Rng } from "../../runtime/rng.ts";
import type { StorageSpec } from "../images.ts";
import {
  type DatasetSource,
  type FileItem,
  fileSplit,
  type ReaderOptions,
  sortCodeUnits,
  statOrUndefined,
} from "./common.ts";
import { sklearnStratifiedSplit } from "./sklearn_split.ts";
import { loadOrMakeSplit, splitHash } from "./splits.ts";
import { MAX_TEXT_INPUT_BYTES, readTextFileBounded } from "../../runtime/cli.ts";

const STORAGE: StorageSpec = { height: 224, width: 224, channels: 3, fit: "stretch" };
const METADATA = "HAM10000_metadata.csv";
const PARTS = ["HAM10000_images_part_1", "HAM10000_images_part_2"];

/**
 * sklearn's `_approximate_mode`: splits `nDraws` over classes in proportion to `counts`, flooring,
 * then giving the remaining draws to the classes with the largest remainders (ties broken at random).
 */
export function approximateMode(counts: number[], nDraws: number, rng: Rng): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const cont = counts.map((c) => (c / total) * nDraws);
  const out = cont.map(Math.floor);
  let need = nDraws - out.reduce((a, b) => a + b, 0);
  const rem = cont.map((c, i) => c - out[i]);
  const values = [...new Set(rem)].sort((a, b) => b - a);
  for (const v of values) {
    if (need <= 0) break;
    const inds = rem.flatMap((r, i) => (r === v ? [i] : []));
    const perm = rng.permutation(inds.length);
    const add = Math.min(inds.length, need);
    for (let k = 0; k < add; k++) out[inds[perm[k]]] += 1;
    need -= add;
  }
  return out;
}

/**
 * One stratified shuffle split of `labels` (class indices) into `nTest` and the rest, allocating
 * per-class counts as sklearn does (train first, then test from the remainder). Returns positions.
 */
export function stratifiedSplit(labels: number[], numClasses: number, testFraction: number, rng: Rng) {
  const n = labels.length;
  const nTest = Math.ceil(testFraction * n);
  const nTrain = n - nTest;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((y, i) => byClass[y].push(i));
  const counts = byClass.map((c) => c.length);
  const trainCounts = approximateMode(counts, nTrain, rng);
  const testCounts = approximateMode(counts.map((c, i) => c - trainCounts[i]), nTest, rng);
  const train: number[] = [], test: number[] = [];
  byClass.forEach((members, c) => {
    const perm = rng.permutation(members.length);
    for (let k = 0; k < trainCounts[c]; k++) train.push(members[perm[k]]);
    for (let k = trainCounts[c]; k < trainCounts[c] + testCounts[c]; k++) test.push(members[perm[k]]);
  });
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** Opens HAM10000 under `opts.root`. */
export async function openHam10000(opts: ReaderOptions): Promise<DatasetSource> {
  const root = opts.root;
  const csvPath = join(root, METADATA);
  if (!(await statOrUndefined(csvPath))?.isFile) {
    throw new UserError(
      `expected ${METADATA} in ${root}; extract the HAM10000 (Kaggle layout) archive there`,
    );
  }
  const table = parseCsv(await readTextFileBounded(csvPath, MAX_TEXT_INPUT_BYTES));
  const col = (name: string) => {
    const k = table.header.indexOf(name);
    if (k < 0) throw new UserError(`${csvPath}: no "${name}" column (header: ${table.header.join(",")})`);
    return k;
  };
  const idCol = col("image_id"), dxCol = col("dx");
  const ids: string[] = [], dxs: string[] = [];
  const seen = new Set<string>();
  table.rows.forEach((r, i) => {
    const id = r[idCol], dx = r[dxCol];
    const where = `${csvPath}:${table.lines[i]}`;
    if (!/^[A-Za-z0-9_-]+$/.test(id)) {
      throw new UserError(
        `${where}: image_id "${id}" is not a plain file stem; paths may not leave the dataset root`,
      );
    }
    if (!dx) throw new UserError(`${where}: empty dx`);
    if (seen.has(id)) throw new UserError(`${where}: duplicate image_id ${id}`);
    seen.add(id);
    ids.push(id);
    dxs.push(dx);
  });
  if (ids.length === 0) throw new UserError(`${csvPath}: no rows`);

  // Where each image lives: part_1 or part_2 (Kaggle also ships lower-case duplicates).
  const location = new Map<string, string>();
  let partsFound = 0;
  for (const part of PARTS) {
    for (const name of [part, part.toLowerCase()]) {
      const dir = join(root, name);
      if (!(await statOrUndefined(dir))?.isDirectory) continue;
      partsFound++;
      for await (const e of Deno.readDir(dir)) {
        const stem = e.name.replace(/\.jpe?g$/i, "");
        if (stem !== e.name && !location.has(stem)) location.set(stem, `${name}/${e.name}`);
      }
      break;
    }
  }
  if (partsFound === 0) throw new UserError(`expected ${PARTS[0]}/ and ${PARTS[1]}/ in ${root}`);

  const classNames = sortCodeUnits([...new Set(dxs)]);
  const labelOf = new Map(classNames.map((c, i) => [c, i]));
  const labels = dxs.map((d) => labelOf.get(d)!);
  const method = opts.split ?? "sklearn";
  if (method !== "sklearn" && method !== "stratified") {
    throw new UserError(
      `--split ${method}: HAM10000 splits are "sklearn" (the paper's, random_state 42) or "stratified"`,
    );
  }
  const seed = opts.seed ?? (method === "sklearn" ? 42 : 0);
  const methodName = method === "sklearn" ? "sklearn-train_test_split-70-15-15" : "stratified-70-15-15";
  const { split, reused } = await loadOrMakeSplit(opts.cacheDir, "ham10000", methodName, seed, ids, () => {
    if (method === "sklearn") {
      let first, second;
      try {
        first = sklearnStratifiedSplit(labels, 0.15, seed);
        second = sklearnStratifiedSplit(first.train.map((i) => labels[i]), 0.17647058823529413, seed);
      } catch (err) {
        throw new UserError(`${csvPath}: ${(err as Error).message}`);
      }
      return {
        train: second.train.map((k) => ids[first.train[k]]),
        val: second.test.map((k) => ids[first.train[k]]),
        test: first.test.map((i) => ids[i]),
      };
    }
    const rng = new Rng(seed);
    const first = stratifiedSplit(labels, classNames.length, 0.15, rng);
    const rest = first.train;
    const second = stratifiedSplit(rest.map((i) => labels[i]), classNames.length, 0.17647058823529413, rng);
    return {
      train: second.train.map((k) => ids[rest[k]]),
      val: second.test.map((k) => ids[rest[k]]),
      test: first.test.map((i) => ids[i]),
    };
  });
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  const items = (name: string): FileItem[] =>
    (split.splits[name] ?? []).map((id) => {
      const i = indexOf.get(id)!;
      return { path: location.get(id) ?? `${PARTS[0]}/${id}.jpg`, label: labels[i] };
    });
  return {
    id: "ham10000",
    format: "HAM10000 metadata csv + image parts",
    root,
    classNames,
    storage: STORAGE,
    splits: ["train", "val", "test"].map((s) => fileSplit(s, root, items(s), STORAGE)),
    sourceFiles: [csvPath, ...ids.map((id) => join(root, location.get(id) ?? `${PARTS[0]}/${id}.jpg`))],
    options: { split: methodName, seed, splitHash: await splitHash(split) },
    notes: [
      method === "sklearn"
        ? `sklearn train_test_split 70/15/15, random_state ${seed} (the paper's split), ` +
          `${reused ? "reused from" : "written to"} split.json`
        : `stratified 70/15/15 split with our Rng, seed ${seed} (not sklearn's members), ` +
          `${reused ? "reused from" : "written to"} split.json`,
    ],
  };
}
