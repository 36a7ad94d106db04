/**
 * The dataset registry: id -> reader, default root, stored resolution and class count. Readers
 * live in `data/readers/`; `deno task prepare` turns a dataset into the packed cache
 * (`data/cache.ts`), which is what training reads.
 *
 * Split names are uniform across datasets: "train" and "test" (the split the paper evaluates on,
 * e.g. Imagenette's and MiniPlaces' val), plus "val" where the protocol makes one (HAM10000).
 *
 * @module
 */
import { UserError } from "../runtime/errors.ts";
import { buildCache, type BuildOptions, type BuildResult } from "./cache.ts";
import type { StorageFit, StorageSpec } from "./images.ts";
import { openCifar10, openCifar100 } from "./readers/cifar.ts";
import type { DatasetSource, ReaderOptions } from "./readers/common.ts";
import { openStanfordDogs } from "./readers/dogs.ts";
import { openHam10000 } from "./readers/ham10000.ts";
import { openFashionMnist } from "./readers/idx.ts";
import { openImageFolder, openImagenette } from "./readers/imagefolder.ts";
import { openIndoor67 } from "./readers/indoor67.ts";
import { openMiniPlaces } from "./readers/miniplaces.ts";

/** A registered dataset. */
export interface DatasetInfo {
  /** Registry id used by `--dataset`. */
  id: string;
  /** One-line description, including the expected layout. */
  description: string;
  /** Root used when `--root` is not given. */
  defaultRoot: string;
  /** Stored per-image shape (the imagefolder entry's size/fit can be overridden). */
  storage: StorageSpec;
  /**
   * The stored image is our whole-image stretch of the source while the protocol's geometry is
   * defined on the source image, so loaders draw crops on the source size (recorded in the cache
   * manifest). Not set where the stretch is the reference's own step (Stanford Dogs' 256x256
   * cache, HAM10000's Resize((224,224))) or the image is stored as-is.
   */
  sourceGeometry?: boolean;
  /** Number of classes, or undefined when it depends on the data (imagefolder). */
  numClasses?: number;
  /** Splits written to the cache, in order. */
  splits: string[];
  /** Opens the source (validates the layout; missing root -> UserError, exit 2). */
  open(opts: ReaderOptions): Promise<DatasetSource>;
}

/** Where datasets are looked for by default: `$XSCORE_DATASETS` or `./datasets`. */
export function datasetsDir(): string {
  try {
    return Deno.env.get("XSCORE_DATASETS") ?? "datasets";
  } catch {
    // Without --allow-env (a task that only lists datasets) the default stands.
    return "datasets";
  }
}

const sq = (s: number, fit: StorageSpec["fit"] = "stretch", channels: 1 | 3 = 3): StorageSpec => ({
  height: s,
  width: s,
  channels,
  fit,
});

/** All datasets, keyed by id. */
export const DATASETS: Record<string, DatasetInfo> = {
  "cifar10": {
    id: "cifar10",
    description: "CIFAR-10: cifar-10-batches-bin/*.bin or cifar-10-batches-py/ (pickle); 32x32 as-is",
    defaultRoot: `${datasetsDir()}/cifar10`,
    storage: sq(32),
    numClasses: 10,
    splits: ["train", "test"],
    open: openCifar10,
  },
  "cifar100": {
    id: "cifar100",
    description: "CIFAR-100 (fine labels): cifar-100-binary/*.bin or cifar-100-python/; 32x32 as-is",
    defaultRoot: `${datasetsDir()}/cifar100`,
    storage: sq(32),
    numClasses: 100,
    splits: ["train", "test"],
    open: openCifar100,
  },
  "imagenette160": {
    id: "imagenette160",
    description: "Imagenette2-160: imagenette2-160/{train,val}/<wnid>/*.JPEG; stored stretched to 192x192",
    defaultRoot: `${datasetsDir()}/imagenette2-160`,
    storage: sq(192),
    sourceGeometry: true,
    numClasses: 10,
    splits: ["train", "test"],
    open: openImagenette,
  },
  "stanford-dogs": {
    id: "stanford-dogs",
    description:
      "Stanford Dogs: Images/<synset-breed>/*.jpg; seeded 80/20 split (--split official: lists); 256x256",
    defaultRoot: `${datasetsDir()}/stanford-dogs`,
    storage: sq(256),
    numClasses: 120,
    splits: ["train", "test"],
    open: openStanfordDogs,
  },
  "ham10000": {
    id: "ham10000",
    description:
      "HAM10000: HAM10000_metadata.csv + HAM10000_images_part_{1,2}/; stratified 70/15/15; 224x224",
    defaultRoot: `${datasetsDir()}/ham10000`,
    storage: sq(224),
    numClasses: 7,
    splits: ["train", "val", "test"],
    open: openHam10000,
  },
  "mit-indoor67": {
    id: "mit-indoor67",
    description: "MIT Indoor-67: Images/<cat>/ + TrainImages.txt/TestImages.txt; centred square at 256x256",
    defaultRoot: `${datasetsDir()}/mit-indoor67`,
    storage: sq(256, "center-square"),
    numClasses: 67,
    splits: ["train", "test"],
    open: openIndoor67,
  },
  "miniplaces": {
    id: "miniplaces",
    description: "MiniPlaces: images/ + data/{train,val,categories}.txt; 128x128 as-is",
    defaultRoot: `${datasetsDir()}/miniplaces`,
    storage: sq(128),
    numClasses: 100,
    splits: ["train", "test"],
    open: openMiniPlaces,
  },
  "fashion-mnist": {
    id: "fashion-mnist",
    description: "Fashion-MNIST: IDX (.gz) files as in Debian's dataset-fashion-mnist; 28x28x1 as-is",
    defaultRoot: "/usr/share/datasets/fashion-mnist",
    storage: sq(28, "stretch", 1),
    numClasses: 10,
    splits: ["train", "test"],
    open: openFashionMnist,
  },
  "imagefolder": {
    id: "imagefolder",
    description:
      "Generic ImageFolder: root/{train,test}/<class>/ (optional val/); --size (256), --fit (center-square)",
    defaultRoot: `${datasetsDir()}/imagefolder`,
    storage: sq(256, "center-square"),
    splits: ["train", "test"],
    open: openImageFolder,
  },
};

/** Looks up a dataset by id; an unknown id is a {@link UserError} listing the known ones. */
export function getDataset(id: string): DatasetInfo {
  const info = DATASETS[id];
  if (!info) throw new UserError(`unknown dataset "${id}"; known: ${Object.keys(DATASETS).join(", ")}`);
  return info;
}

/** The default cache directory of a dataset: `.cache/<id>`. */
export function defaultCacheDir(id: string): string {
  return `.cache/${id}`;
}

/** Options of {@link prepareDataset}: which dataset, where, and how to build. */
export interface PrepareOptions extends BuildOptions {
  /** Registry id. */
  dataset: string;
  /** Dataset root (default: the registry's `defaultRoot`). */
  root?: string;
  /** Cache directory (default: {@link defaultCacheDir}). */
  cacheDir?: string;
  /** Split method where a dataset has a choice (Stanford Dogs: "random" | "official"; HAM10000: "sklearn" | "stratified"). */
  split?: string;
  /** Seed of generated splits (default 0). */
  seed?: number;
  /** Stored size (imagefolder only). */
  size?: number;
  /** Stored fit (imagefolder only). */
  fit?: StorageFit;
}

/** Opens a dataset's source and builds (or confirms) its packed cache. */
export async function prepareDataset(opts: PrepareOptions): Promise<BuildResult & { cacheDir: string }> {
  const info = getDataset(opts.dataset);
  const cacheDir = opts.cacheDir ?? defaultCacheDir(info.id);
  const root = opts.root ?? info.defaultRoot;
  if (!(await Deno.stat(root).catch(() => undefined))?.isDirectory) {
    throw new UserError(`dataset root ${root} does not exist; pass --root DIR (${info.description})`);
  }
  await Deno.mkdir(cacheDir, { recursive: true }).catch((err) => {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `cannot write the cache directory ${cacheDir}; prepare may write only under .cache/`,
      );
    }
    throw err;
  });
  const source = await info.open({
    root,
    cacheDir,
    split: opts.split,
    seed: opts.seed,
    size: opts.size,
    fit: opts.fit,
  });
  return {
    ...(await buildCache(source, cacheDir, { ...opts, sourceGeometry: info.sourceGeometry === true })),
    cacheDir,
  };
}
