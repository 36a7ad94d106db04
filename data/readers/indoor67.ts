/**
 * MIT Indoor-67 reader: `Images/<category>/*.jpg` (indoorCVPR_09.tar) with the official
 * `TrainImages.txt` / `TestImages.txt` (lines like `airport_inside/airport_inside_0001.jpg`,
 * 5,360 / 1,340). Class index: sorted category folder names, as ImageFolder over the pre-split
 * `train/<category>/` folders the paper's code expects. Some files named .jpg are GIF or greyscale;
 * the decoder converts everything to RGB. A listed file that is missing is skipped and counted.
 *
 * Storage: the largest centred square, resized to 256x256, with the original size recorded. The
 * protocol's test transform is Resize(224)+CenterCrop(224), i.e. that same square at 224. Its train
 * RandomResizedCrop(224, scale 0.9-1.1, ratio (1, 1)) is drawn on the original size (registry flag
 * `sourceGeometry`, data/augment/ `mapBoxFromCenterSquare`): no try fits an image wider than
 * ~1.11:1, which then gets the fixed centred square (the stored image), at torchvision's rate; a crop
 * that fits a near-square original keeps its size and is moved inside the stored square (by at most
 * (W - H)/2 px, under 6% of its side).
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
  listDirs,
  type ReaderOptions,
  readLines,
  safeRelPath,
  statOrUndefined,
} from "./common.ts";

const STORAGE: StorageSpec = { height: 256, width: 256, channels: 3, fit: "center-square" };

/** Opens MIT Indoor-67 under `opts.root` (the folder holding `Images/` and the two list files). */
export async function openIndoor67(opts: ReaderOptions): Promise<DatasetSource> {
  const root = opts.root;
  for (const f of ["TrainImages.txt", "TestImages.txt"]) {
    if (!(await statOrUndefined(join(root, f)))?.isFile) {
      throw new UserError(`expected ${f} in ${root}; put the official Indoor-67 list files next to Images/`);
    }
  }
  if (!(await statOrUndefined(join(root, "Images")))?.isDirectory) {
    throw new UserError(`expected Images/ in ${root}; extract indoorCVPR_09.tar there`);
  }
  const classNames = await listDirs(join(root, "Images"));
  const labelOf = new Map(classNames.map((c, i) => [c, i]));
  const read = async (file: string): Promise<FileItem[]> => {
    const path = join(root, file);
    return (await readLines(path)).map((l) => {
      const rel = safeRelPath(l.text, `${path}:${l.line}`);
      const cls = rel.split("/")[0];
      const label = labelOf.get(cls);
      if (label === undefined || !rel.includes("/")) {
        throw new UserError(
          `${path}:${l.line}: "${l.text}" does not start with a category folder of Images/`,
        );
      }
      return { path: `Images/${rel}`, label };
    });
  };
  const train = await read("TrainImages.txt");
  const test = await read("TestImages.txt");
  return {
    id: "mit-indoor67",
    format: "Indoor-67 Images/ + TrainImages.txt/TestImages.txt",
    root,
    classNames,
    storage: STORAGE,
    splits: [fileSplit("train", root, train, STORAGE), fileSplit("test", root, test, STORAGE)],
    sourceFiles: [
      join(root, "TrainImages.txt"),
      join(root, "TestImages.txt"),
      ...[...train, ...test].map((it) => join(root, it.path)),
    ],
    options: {},
    notes: ["official TrainImages.txt / TestImages.txt", "largest centred square stored at 256x256"],
  };
}
