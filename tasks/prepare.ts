/**
 * `deno task prepare --dataset ID [--root DIR] [--cache DIR]`: decodes a dataset once into the
 * packed cache (data/cache/). Idempotent (an unchanged source does nothing), resumable (a killed
 * run continues where it stopped), and rebuilds when the source changes. Progress goes to stderr;
 * a summary line to stdout. A missing or malformed root prints one line and exits 2.
 *
 * @module
 */
import { runMain } from "../runtime/errors.ts";
import { assertWritableDir, choiceFlag, intFlag, parseCli, UsageError, valueFlags } from "../runtime/cli.ts";
import {
  DATASETS,
  defaultCacheDir,
  getDataset,
  prepareDataset,
  referenceJpegQuality,
} from "../data/datasets.ts";
import { withPrepareLock } from "../data/cache/mod.ts";

const USAGE = `usage: deno task prepare --dataset ID [--root DIR] [--cache DIR] [options]

options:
  --dataset ID       one of: ${Object.keys(DATASETS).join(", ")}
                     imagefolder:NAME is a custom ImageFolder dataset named NAME: cached under
                     .cache/imagefolder-NAME, ledger id NAME
  --name NAME        same as --dataset imagefolder:NAME
  --root DIR         dataset root (default: the dataset's default root, see --list)
  --cache DIR        cache directory (default .cache/<id>; must be under .cache/)
  --split METHOD     stanford-dogs: random (default, the paper's 80/20, seeded) | official
                     ham10000: sklearn (default, the paper's exact split) | stratified (our Rng)
  --seed N           seed of generated splits (stanford-dogs: 0; ham10000: random_state 42 / Rng seed 0)
  --size N           imagefolder: stored square size (default 256)
  --fit MODE         imagefolder: center-square (default) | stretch
  --concurrency N    images decoded at once (default: CPUs, at least 4)
  --preset P         the cache this preset trains on: paper (default) | reference (stanford-dogs:
                     re-encoded as JPEG quality 75 like the authors' cache, in .cache/stanford-dogs-jpeg75)
  --force            rebuild even if the cache is up to date
  --list             list datasets with their layouts and default roots
  --help`;

async function main(): Promise<void> {
  const { values } = parseCli(Deno.args, {
    usage: USAGE,
    options: {
      ...valueFlags(
        "dataset",
        "name",
        "root",
        "cache",
        "split",
        "seed",
        "size",
        "fit",
        "concurrency",
        "preset",
      ),
      force: { type: "boolean", default: false },
      list: { type: "boolean", default: false },
    },
  });
  if (values.list) {
    for (const d of Object.values(DATASETS)) {
      console.log(`${d.id.padEnd(14)} ${d.description}\n${"".padEnd(15)}default root: ${d.defaultRoot}`);
    }
    return;
  }
  if (values.name !== undefined && values.dataset !== undefined && values.dataset !== "imagefolder") {
    throw new UsageError(
      `--name ${values.name}: only for imagefolder datasets (--dataset imagefolder)`,
      USAGE,
    );
  }
  const spec = values.name !== undefined ? `imagefolder:${values.name}` : values.dataset;
  if (!spec) throw new UsageError("--dataset is required", USAGE);
  getDataset(spec);
  const fit = choiceFlag(values.fit, "fit", ["stretch", "center-square"] as const, USAGE);
  const size = intFlag(values.size, "size", USAGE, { min: 8, max: 4096 });
  const preset = choiceFlag(values.preset, "preset", ["paper", "reference"] as const, USAGE);
  const cacheDir = values.cache ?? defaultCacheDir(spec, preset);
  await assertWritableDir(cacheDir, "--cache", "prepare", [".cache"]);
  // A training (or another prepare) preparing the same cache: wait for it, then find it up to date.
  const result = await withPrepareLock(cacheDir, () =>
    prepareDataset({
      dataset: spec,
      root: values.root,
      cacheDir,
      split: values.split,
      seed: intFlag(values.seed, "seed", USAGE),
      size,
      fit,
      concurrency: intFlag(values.concurrency, "concurrency", USAGE, { min: 1, max: 1024 }),
      force: values.force,
      jpegQuality: referenceJpegQuality(spec, preset),
    }));
  const m = result.manifest;
  const counts = m.splitOrder.map((s) => `${s} ${m.splits[s].count}`).join(", ");
  console.log(
    `${m.dataset}: ${
      result.status === "up-to-date" ? "up to date, nothing done" : result.status
    } — ${result.cacheDir}: ` +
      `${counts}; ${m.numClasses} classes; ${m.storage.height}x${m.storage.width}x${m.storage.channels}; ` +
      `${m.skipped.length} skipped`,
  );
}

if (import.meta.main) await runMain(main);
