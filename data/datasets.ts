/**
 * The dataset registry: id -> reader, default root, class count and splits. Readers live in
 * `data/readers/` and decide the stored shape (recorded in the cache manifest); `deno task prepare`
 * turns a dataset into the packed cache (`data/cache/`), which is what training reads.
 *
 * Split names are uniform across datasets: "train" and "test" (the split the paper evaluates on,
 * e.g. Imagenette's and MiniPlaces' val), plus "val" where the protocol makes one (HAM10000).
 *
 * @module
 */
import { UserError } from "../runtime/errors.ts";
import { canonicalDatasetId, squashId } from "../runtime/dataset_ids.ts";
import {
  buildCache,
  type BuildOptions,
  type BuildResult,
  type CacheManifest,
  MANIFEST,
  readJson,
} from "./cache/mod.ts";
import type { StorageFit } from "./images.ts";
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
  /**
   * The stored image is our whole-image stretch (or largest centred square) of the source while the
   * protocol's geometry is defined on the source image, so loaders draw crops on the source size
   * (recorded in the cache manifest). Not set where the stretch is the reference's own step
   * (Stanford Dogs' 256x256 cache, HAM10000's Resize((224,224))) or the image is stored as-is.
   */
  sourceGeometry?: boolean;
  /** Number of classes, or undefined when it depends on the data (imagefolder). */
  numClasses?: number;
  /** Splits written to the cache, in order. */
  splits: string[];
  /** Opens the source (validates the layout; missing root -> UserError, exit 2). */
  open(opts: ReaderOptions): Promise<DatasetSource>;
  /**
   * The reference preset reads a cache whose images were re-encoded as JPEG at this quality (the
   * authors' Stanford Dogs cache); kept in its own directory `.cache/<id>-jpeg<q>`.
   */
  referenceJpegQuality?: number;
  /**
   * The registry entry a named dataset derives from (`imagefolder:pets` → "imagefolder"): its data
   * protocol and reader. Undefined for registered datasets, whose `id` is their own.
   */
  base?: string;
}

/** Allowed custom dataset names (`imagefolder:NAME`): they become a ledger id and a folder name. */
const CUSTOM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Where datasets are looked for by default: `$XSCORE_DATASETS` or `./datasets`. */
export function datasetsDir(): string {
  try {
    return Deno.env.get("XSCORE_DATASETS") ?? "datasets";
  } catch {
    // Without --allow-env (a task that only lists datasets) the default stands.
    return "datasets";
  }
}

/** All datasets, keyed by id. */
export const DATASETS: Record<string, DatasetInfo> = {
  "cifar10": {
    id: "cifar10",
    description: "CIFAR-10: cifar-10-batches-bin/*.bin or cifar-10-batches-py/ (pickle); 32x32 as-is",
    defaultRoot: `${datasetsDir()}/cifar10`,
    numClasses: 10,
    splits: ["train", "test"],
    open: openCifar10,
  },
  "cifar100": {
    id: "cifar100",
    description: "CIFAR-100 (fine labels): cifar-100-binary/*.bin or cifar-100-python/; 32x32 as-is",
    defaultRoot: `${datasetsDir()}/cifar100`,
    numClasses: 100,
    splits: ["train", "test"],
    open: openCifar100,
  },
  "imagenette160": {
    id: "imagenette160",
    description:
      "Imagenette2-160: imagenette2-160/{train,val}/<wnid>/*.JPEG; stored stretched to 192x384 (HxW)",
    defaultRoot: `${datasetsDir()}/imagenette2-160`,
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
    referenceJpegQuality: 75,
    numClasses: 120,
    splits: ["train", "test"],
    open: openStanfordDogs,
  },
  "ham10000": {
    id: "ham10000",
    description:
      "HAM10000: HAM10000_metadata.csv + HAM10000_images_part_{1,2}/; stratified 70/15/15; 224x224",
    defaultRoot: `${datasetsDir()}/ham10000`,
    numClasses: 7,
    splits: ["train", "val", "test"],
    open: openHam10000,
  },
  "mit-indoor67": {
    id: "mit-indoor67",
    description: "MIT Indoor-67: Images/<cat>/ + TrainImages.txt/TestImages.txt; centred square at 256x256",
    defaultRoot: `${datasetsDir()}/mit-indoor67`,
    // RandomResizedCrop(scale 0.9-1.1, ratio 1) is drawn on the original: it falls back to the
    // stored centred square for every image wider than ~1.11:1, as in the authors' pipeline.
    sourceGeometry: true,
    numClasses: 67,
    splits: ["train", "test"],
    open: openIndoor67,
  },
  "miniplaces": {
    id: "miniplaces",
    description: "MiniPlaces: images/ + data/{train,val,categories}.txt; 128x128 as-is",
    defaultRoot: `${datasetsDir()}/miniplaces`,
    numClasses: 100,
    splits: ["train", "test"],
    open: openMiniPlaces,
  },
  "fashion-mnist": {
    id: "fashion-mnist",
    description: "Fashion-MNIST: IDX (.gz) files as in Debian's dataset-fashion-mnist; 28x28x1 as-is",
    defaultRoot: "/usr/share/datasets/fashion-mnist",
    numClasses: 10,
    splits: ["train", "test"],
    open: openFashionMnist,
  },
  "imagefolder": {
    id: "imagefolder",
    description:
      "Generic ImageFolder: root/{train,test}/<class>/ (optional val/); --size (256), --fit (center-square)",
    defaultRoot: `${datasetsDir()}/imagefolder`,
    splits: ["train", "test"],
    open: openImageFolder,
  },
};

/**
 * The registered dataset id that `name` reads as, or undefined: the id itself up to case and
 * punctuation ("CIFAR-10", "ImageFolder"), or a spelling the ledgers canonicalise to it ("dogs",
 * "Indoor67", "imagenette"; runtime/dataset_ids.ts).
 */
function registeredDatasetLike(name: string): string | undefined {
  const canonical = canonicalDatasetId(name), squashed = squashId(name);
  return Object.keys(DATASETS).find((id) => id === canonical || squashId(id) === squashed);
}

/**
 * Looks up a dataset by id; an unknown id is a {@link UserError} listing the known ones.
 * `imagefolder:NAME` is a custom ImageFolder dataset with its own identity: `id` NAME (the ledger's
 * dataset column), `base` "imagefolder" (reader and protocol), cached under `.cache/imagefolder-NAME`.
 */
export function getDataset(id: string): DatasetInfo {
  const named = id.match(/^imagefolder:(.*)$/s);
  if (named) {
    const name = named[1];
    if (!CUSTOM_NAME.test(name)) {
      throw new UserError(
        `dataset name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_' or '-' (imagefolder:NAME)`,
      );
    }
    const clash = registeredDatasetLike(name);
    if (clash) {
      throw new UserError(
        `dataset name ${name} reads as the registered dataset ${clash} (ledgers match dataset names ` +
          `up to case, punctuation and the paper's spellings); pick another NAME (imagefolder:NAME)`,
      );
    }
    return {
      ...DATASETS.imagefolder,
      id: name,
      base: "imagefolder",
      description: `ImageFolder dataset ${name}: root/{train,test}/<class>/ (optional val/)`,
      defaultRoot: `${datasetsDir()}/${name}`,
    };
  }
  const info = DATASETS[id];
  if (!info) {
    throw new UserError(
      `unknown dataset "${id}"; known: ${Object.keys(DATASETS).join(", ")}, or imagefolder:NAME for your own`,
    );
  }
  return info;
}

/**
 * The default cache directory of a dataset: `.cache/<id>`, `.cache/imagefolder-NAME` for
 * `imagefolder:NAME`; under `preset` "reference", `.cache/<id>-jpeg<q>` for a dataset whose
 * reference cache is JPEG re-encoded ({@link DatasetInfo.referenceJpegQuality}).
 */
export function defaultCacheDir(id: string, preset?: string): string {
  const info = getDataset(id);
  const q = referenceJpegQuality(id, preset);
  if (q !== undefined) return `.cache/${info.id}-jpeg${q}`;
  return info.base ? `.cache/${info.base}-${info.id}` : `.cache/${info.id}`;
}

/** The JPEG quality of `preset`'s cache of dataset `id`, or undefined (lossless). */
export function referenceJpegQuality(id: string, preset?: string): number | undefined {
  return preset === "reference" ? getDataset(id).referenceJpegQuality : undefined;
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
  /** Re-encode stored images as JPEG at this quality (Stanford Dogs' reference cache). */
  jpegQuality?: number;
}

/**
 * Opens a dataset's source and builds (or confirms) its packed cache. A preparation that fails, or
 * that finds no readable image in a split, leaves no cache behind (a directory it created is
 * removed; an existing one loses its manifest), so a later run never trains on it.
 */
export async function prepareDataset(opts: PrepareOptions): Promise<BuildResult & { cacheDir: string }> {
  const info = getDataset(opts.dataset);
  const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.dataset);
  const root = opts.root ?? info.defaultRoot;
  if (!(await Deno.stat(root).catch(() => undefined))?.isDirectory) {
    throw new UserError(`dataset root ${root} does not exist; pass --root DIR (${info.description})`);
  }
  const created = !(await Deno.stat(cacheDir).catch(() => undefined));
  await Deno.mkdir(cacheDir, { recursive: true }).catch((err) => {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `cannot write the cache directory ${cacheDir}; prepare may write only under .cache/`,
      );
    }
    throw err;
  });
  const discard = async () => {
    if (created) await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
    else await Deno.remove(`${cacheDir}/${MANIFEST}`).catch(() => {});
  };
  let building = false;
  try {
    const opened = await info.open({
      root,
      cacheDir,
      split: opts.split,
      seed: opts.seed,
      size: opts.size,
      fit: opts.fit,
      jpegQuality: opts.jpegQuality,
    });
    // A named ImageFolder dataset carries its own id into the manifest (and the fingerprint).
    const source = info.base ? { ...opened, id: info.id } : opened;
    const empty = source.splits.find((s) => s.count === 0);
    if (empty) {
      throw new UserError(
        `${root}: split ${empty.name} has no images (${info.description}); nothing was cached`,
      );
    }
    building = true;
    const result = await buildCache(source, cacheDir, {
      ...opts,
      sourceGeometry: info.sourceGeometry === true,
    });
    building = false;
    const unreadable = result.manifest.splitOrder.find((s) => result.manifest.splits[s].count === 0);
    if (unreadable) {
      await discard();
      const first = result.manifest.skipped.find((k) => k.split === unreadable);
      throw new UserError(
        `${root}: no readable image in split ${unreadable} (${result.manifest.splits[unreadable].skipped} ` +
          `skipped${first ? `, e.g. ${first.item}: ${first.reason}` : ""}); nothing was cached`,
      );
    }
    return { ...result, cacheDir };
  } catch (err) {
    // A source that cannot be opened leaves nothing behind in a directory made for it; a build that
    // fails or is interrupted keeps its journal for the resume (and another build's lock is respected).
    if (!building && created) await discard();
    throw err;
  }
}

/** The options a cache was prepared with, as {@link PrepareOptions} (so a check rebuilds it the same way). */
function preparedOptions(options: Record<string, string | number>): Partial<PrepareOptions> {
  const out: Partial<PrepareOptions> = {};
  // Readers record the split method with its parameters ("sklearn-train_test_split-70-15-15").
  if (typeof options.split === "string") out.split = options.split.split("-")[0];
  if (typeof options.seed === "number") out.seed = options.seed;
  if (typeof options.size === "number") out.size = options.size;
  if (options.fit === "stretch" || options.fit === "center-square") out.fit = options.fit;
  if (typeof options.jpegQuality === "number") out.jpegQuality = options.jpegQuality;
  return out;
}

/**
 * The cache a training run reads, confirmed against its source: prepared when missing; otherwise the
 * source (`root`, or the root recorded in the manifest) is fingerprinted again (file list, sizes,
 * mtimes, list/label files, reader options) and the cache rebuilt when it changed, so `--data` is
 * never ignored and a changed source never trains on stale images. Returns the cache directory.
 */
export async function ensurePrepared(
  dataset: string,
  root: string | undefined,
  log: (line: string) => void = console.log,
  preset?: string,
): Promise<string> {
  const cacheDir = defaultCacheDir(dataset, preset);
  const jpegQuality = referenceJpegQuality(dataset, preset);
  const manifest = await readJson<Partial<CacheManifest>>(`${cacheDir}/${MANIFEST}`);
  if (!manifest) {
    log(`no cache for ${dataset} in ${cacheDir}: preparing it (once)`);
    await prepareDataset({ dataset, root, cacheDir, jpegQuality });
    return cacheDir;
  }
  const recorded = manifest.sourceRoot;
  const checkRoot = root ?? recorded;
  if (!checkRoot || !(await Deno.stat(checkRoot).catch(() => undefined))?.isDirectory) {
    if (root) throw new UserError(`--data ${root}: not a directory`);
    log(`${cacheDir}: its source ${recorded ?? "?"} is not present; training on the cache as it is`);
    return cacheDir;
  }
  const r = await prepareDataset({
    dataset,
    root: checkRoot,
    cacheDir,
    ...preparedOptions(manifest.options ?? {}),
    log: (line, transient) => transient ? undefined : log(line),
  });
  if (r.status !== "up-to-date") {
    log(`${cacheDir}: rebuilt from ${checkRoot} (the source differed from the cache)`);
  }
  return cacheDir;
}
