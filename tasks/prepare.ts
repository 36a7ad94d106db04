/**
 * `deno task prepare --dataset ID [--root DIR] [--cache DIR]`: decodes a dataset once into the
 * packed cache (data/cache.ts). Idempotent (an unchanged source does nothing), resumable (a killed
 * run continues where it stopped), and rebuilds when the source changes. Progress goes to stderr;
 * a summary line to stdout. A missing or malformed root prints one line and exits 2.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runMain, UserError } from "../runtime/errors.ts";
import { DATASETS, defaultCacheDir, getDataset, prepareDataset } from "../data/datasets.ts";
import type { StorageFit } from "../data/images.ts";

const USAGE = `usage: deno task prepare --dataset ID [--root DIR] [--cache DIR] [options]

options:
  --dataset ID       one of: ${Object.keys(DATASETS).join(", ")}
  --root DIR         dataset root (default: the dataset's default root, see --list)
  --cache DIR        cache directory (default .cache/<id>; must be under .cache/)
  --split METHOD     stanford-dogs: random (default, the paper's 80/20, seeded) | official
                     ham10000: sklearn (default, the paper's exact split) | stratified (our Rng)
  --seed N           seed of generated splits (stanford-dogs: 0; ham10000: random_state 42 / Rng seed 0)
  --size N           imagefolder: stored square size (default 256)
  --fit MODE         imagefolder: center-square (default) | stretch
  --concurrency N    images decoded at once (default: CPUs, at least 4)
  --force            rebuild even if the cache is up to date
  --list             list datasets with their layouts and default roots
  --help`;

function intFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UserError(`--${name} ${v}: expected a non-negative integer`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      dataset: { type: "string" },
      root: { type: "string" },
      cache: { type: "string" },
      split: { type: "string" },
      seed: { type: "string" },
      size: { type: "string" },
      fit: { type: "string" },
      concurrency: { type: "string" },
      force: { type: "boolean", default: false },
      list: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.list) {
    for (const d of Object.values(DATASETS)) {
      console.log(`${d.id.padEnd(14)} ${d.description}\n${"".padEnd(15)}default root: ${d.defaultRoot}`);
    }
    return;
  }
  if (!values.dataset) throw new UserError(`--dataset is required\n${USAGE}`);
  const info = getDataset(values.dataset);
  const fit = values.fit;
  if (fit !== undefined && fit !== "stretch" && fit !== "center-square") {
    throw new UserError(`--fit ${fit}: expected stretch or center-square`);
  }
  const size = intFlag(values.size, "size");
  if (size !== undefined && (size < 8 || size > 4096)) {
    throw new UserError(`--size ${size}: expected 8..4096`);
  }
  const result = await prepareDataset({
    dataset: info.id,
    root: values.root,
    cacheDir: values.cache ?? defaultCacheDir(info.id),
    split: values.split,
    seed: intFlag(values.seed, "seed"),
    size,
    fit: fit as StorageFit | undefined,
    concurrency: intFlag(values.concurrency, "concurrency"),
    force: values.force,
  });
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
