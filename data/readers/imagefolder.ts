/**
 * ImageFolder-layout readers: Imagenette2-160 (`imagenette2-160/{train,val}/<wnid>/*.JPEG`) and the
 * generic `imagefolder` (`root/{train,test}/<class>/...`, optional `val/`).
 *
 * Class indices follow torchvision's ImageFolder: sorted training folder names. Other splits
 * are mapped by folder name to the training indices (the paper's code rebuilds the mapping per
 * split, which agrees only when every split has every class; a split with an unknown class folder
 * is an error here).
 *
 * Imagenette is stored stretched to 192 high x 384 wide (short side 160 in the source, long side
 * 160-320 for nearly every image): the protocol's RandomResizedCrop(160, ratio 3/4..4/3) and
 * Resize(192)+CenterCrop(160) act on the whole non-square source image, so the loader maps those
 * boxes through the recorded source size (x * 384 / W, y * 192 / H). 192 rows keep the test path's
 * resolution exactly (its Resize(192) upsamples the 160-px short side), and 384 columns keep at least
 * as many columns as that resize gives any image up to 2:1, so wide originals lose no horizontal
 * detail (a 192x192 stretch kept 0.6 of a 320-px-wide original's columns).
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../../runtime/errors.ts";
import type { StorageFit, StorageSpec } from "../images.ts";
import {
  type DatasetSource,
  fileSplit,
  type ReaderOptions,
  scanImageFolder,
  statOrUndefined,
} from "./common.ts";

async function hasDirs(dir: string, subs: string[]): Promise<boolean> {
  for (const s of subs) if (!(await statOrUndefined(join(dir, s)))?.isDirectory) return false;
  return true;
}

async function openFolders(
  id: string,
  format: string,
  root: string,
  splits: { name: string; dir: string }[],
  storage: StorageSpec,
  options: Record<string, string | number>,
  notes: string[],
): Promise<DatasetSource> {
  const train = await scanImageFolder(root, splits[0].dir);
  if (train.classes.length === 0) throw new UserError(`${join(root, splits[0].dir)}: no class folders`);
  const out = [{ name: splits[0].name, items: train.items }];
  for (const s of splits.slice(1)) {
    out.push({ name: s.name, items: (await scanImageFolder(root, s.dir, train.classes)).items });
  }
  return {
    id,
    format,
    root,
    classNames: train.classes,
    storage,
    splits: out.map((s) => fileSplit(s.name, root, s.items, storage)),
    sourceFiles: out.flatMap((s) => s.items.map((it) => join(root, it.path))),
    options,
    notes,
  };
}

/** Opens Imagenette2-160 (`train/` and `val/`, val used as the test split). */
export async function openImagenette(opts: ReaderOptions): Promise<DatasetSource> {
  let root = opts.root;
  if (
    !(await hasDirs(root, ["train", "val"])) &&
    (await hasDirs(join(root, "imagenette2-160"), ["train", "val"]))
  ) {
    root = join(root, "imagenette2-160");
  }
  if (!(await hasDirs(root, ["train", "val"]))) {
    throw new UserError(`expected train/ and val/ in ${opts.root}; extract imagenette2-160.tgz there`);
  }
  return await openFolders(
    "imagenette160",
    "imagenette2-160 folders",
    root,
    [{ name: "train", dir: "train" }, { name: "test", dir: "val" }],
    { height: 192, width: 384, channels: 3, fit: "stretch" },
    {},
    [
      "test split = official val folder",
      "stored stretched to 192x384 (HxW); map source-image boxes through the recorded source size",
    ],
  );
}

/** Opens a generic ImageFolder dataset: `train/` and `test/` (and `val/` if present). */
export async function openImageFolder(opts: ReaderOptions): Promise<DatasetSource> {
  const root = opts.root;
  if (!(await hasDirs(root, ["train", "test"]))) {
    throw new UserError(
      `expected train/ and test/ in ${root}; lay the dataset out as <split>/<class>/<image>`,
    );
  }
  const size = opts.size ?? 256;
  const fit: StorageFit = opts.fit ?? "center-square";
  const splits = [{ name: "train", dir: "train" }];
  if (await hasDirs(root, ["val"])) splits.push({ name: "val", dir: "val" });
  splits.push({ name: "test", dir: "test" });
  return await openFolders(
    "imagefolder",
    "ImageFolder",
    root,
    splits,
    { height: size, width: size, channels: 3, fit },
    { size, fit },
    [],
  );
}
