/**
 * MiniPlaces reader (the CSAILVision/miniplaces development kit layout): `images/` from
 * data.tar.gz plus `data/train.txt` (`train/a/abbey/00000001.jpg 0`), `data/val.txt`
 * (`val/00000001.jpg 71`) and `data/categories.txt` (`/a/abbey 0` ... `/y/yard 99`); the three
 * list files may also sit in the root. Class ids come from the official files, which equal the
 * sorted-full-path order the paper's flattened ImageFolder produces (spec §3.3); the val split is
 * the test split, as in the paper. A train line whose folder names a category with a different id
 * is an error. Images (128x128 JPEGs) are stored as-is.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import type { StorageSpec } from "../images.ts";
import {
  type DatasetSource,
  type FileItem,
  fileSplit,
  type ReaderOptions,
  readLines,
  safeRelPath,
  statOrUndefined,
} from "./common.ts";

const STORAGE: StorageSpec = { height: 128, width: 128, channels: 3, fit: "stretch" };

async function findListDir(root: string): Promise<string> {
  for (const dir of [join(root, "data"), root]) {
    if ((await statOrUndefined(join(dir, "categories.txt")))?.isFile) return dir;
  }
  throw new UserError(
    `expected data/categories.txt in ${root}; put the miniplaces dev kit's data/ folder there`,
  );
}

/** Opens MiniPlaces under `opts.root`. */
export async function openMiniPlaces(opts: ReaderOptions): Promise<DatasetSource> {
  const root = opts.root;
  const listDir = await findListDir(root);
  if (!(await statOrUndefined(join(root, "images")))?.isDirectory) {
    throw new UserError(`expected images/ in ${root}; extract the MiniPlaces data.tar.gz there`);
  }
  const catPath = join(listDir, "categories.txt");
  const idOfPath = new Map<string, number>();
  const names: string[] = [];
  for (const l of await readLines(catPath)) {
    const m = /^(\S+)\s+(\d+)$/.exec(l.text);
    if (!m) throw new UserError(`${catPath}:${l.line}: expected "<category path> <id>"`);
    const id = Number(m[2]);
    if (names[id] !== undefined) throw new UserError(`${catPath}:${l.line}: id ${id} used twice`);
    // "/b/bakery/shop" -> "bakery/shop": the full path keeps sub-categories distinct.
    names[id] = m[1].replace(/^\/[a-z]\//, "");
    idOfPath.set(m[1].replace(/^\/+/, ""), id);
  }
  const k = names.length;
  for (let i = 0; i < k; i++) {
    if (names[i] === undefined) {
      throw new UserError(`${catPath}: class id ${i} is missing (ids must be 0..${k - 1})`);
    }
  }
  const read = async (file: string, split: string): Promise<FileItem[]> => {
    const path = join(listDir, file);
    if (!(await statOrUndefined(path))?.isFile) {
      throw new UserError(
        `expected ${file} in ${listDir}; the miniplaces dev kit's data/ folder is incomplete`,
      );
    }
    return (await readLines(path)).map((l) => {
      const where = `${path}:${l.line}`;
      const m = /^(\S+)\s+(\d+)$/.exec(l.text);
      if (!m) throw new UserError(`${where}: expected "<image path> <class id>"`);
      const rel = safeRelPath(m[1], where);
      const label = Number(m[2]);
      if (label >= k) throw new UserError(`${where}: class id ${label}, expected 0..${k - 1}`);
      if (split === "train") {
        const dir = rel.split("/").slice(1, -1).join("/");
        const expected = idOfPath.get(dir);
        if (expected !== undefined && expected !== label) {
          throw new UserError(
            `${where}: folder ${dir} is class ${expected} in categories.txt but the line says ${label}`,
          );
        }
      }
      return { path: `images/${rel}`, label };
    });
  };
  const train = await read("train.txt", "train");
  const test = await read("val.txt", "val");
  return {
    id: "miniplaces",
    format: "MiniPlaces images/ + data/{train,val,categories}.txt",
    root,
    classNames: names,
    storage: STORAGE,
    splits: [fileSplit("train", root, train, STORAGE), fileSplit("test", root, test, STORAGE)],
    sourceFiles: [
      catPath,
      join(listDir, "train.txt"),
      join(listDir, "val.txt"),
      ...[...train, ...test].map((it) => join(root, it.path)),
    ],
    options: {},
    notes: ["class ids from categories.txt", "test split = official val (val.txt labels)"],
  };
}
