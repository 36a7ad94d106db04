/**
 * `deno task bench:data`: data-pipeline throughput.
 *
 * Part 1 (prepare): images/s of `deno task prepare`'s build for Fashion-MNIST (the real IDX files,
 * raw copy) and for a generated set of Imagenette-like JPEGs (213x160, decoded with sharp and
 * stretched to the stored 192x192) at several decode concurrencies. Every build is forced, into
 * `.cache/bench/`.
 *
 * Part 2 (loader + GPU augmentation): see the marked section below.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { runMain, UserError } from "../runtime/errors.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import { DATASETS, prepareDataset } from "../data/datasets.ts";
import { writeJpegBenchSet } from "../tests/fixtures.ts";

/** One row of the printed table. */
interface Row {
  stage: string;
  dataset: string;
  images: number;
  concurrency: number | string;
  seconds: number;
  imagesPerSecond: number;
}

const BENCH_DIR = ".cache/bench";

async function benchPrepare(dataset: string, root: string, concurrency: number, reps: number): Promise<Row> {
  let best: Row | undefined;
  for (let r = 0; r < reps; r++) {
    const res = await prepareDataset({
      dataset,
      root,
      cacheDir: join(BENCH_DIR, `${dataset}-c${concurrency}`),
      concurrency,
      force: true,
      log: null,
    });
    const row: Row = {
      stage: "prepare",
      dataset,
      images: res.processed,
      concurrency,
      seconds: res.seconds,
      imagesPerSecond: res.processed / res.seconds,
    };
    if (!best || row.imagesPerSecond > best.imagesPerSecond) best = row;
  }
  return best!;
}

async function jpegSet(n: number): Promise<string> {
  const parent = join(BENCH_DIR, `jpeg-src-${n}`);
  const stamp = join(parent, "complete");
  if (!(await exists(stamp))) {
    console.error(`generating ${n} Imagenette-like JPEGs in ${parent} ...`);
    await Deno.remove(parent, { recursive: true }).catch(() => {});
    await writeJpegBenchSet(parent, n);
    await writeFileAtomic(stamp, `${n}\n`);
  }
  return join(parent, "imagenette2-160");
}

// ================================================================================================
// LOADER THROUGHPUT — owned by the augmentation/loader engineer (data/loader.ts, data/augment*.ts).
// Fill in: open a prepared cache with openCache() (data/cache.ts), run the batch loader with the
// protocol's GPU augmentation for a few hundred batches per dataset, and return one Row per
// configuration with stage "loader" (images/s after warm-up). Returning [] prints a note instead.
// ================================================================================================
// deno-lint-ignore require-await
async function benchLoader(): Promise<Row[]> {
  return [];
}
// ======================================== END LOADER SECTION ====================================

function printTable(rows: Row[]): void {
  const header = ["stage", "dataset", "images", "concurrency", "seconds", "images/s"];
  const cells = rows.map((r) => [
    r.stage,
    r.dataset,
    String(r.images),
    String(r.concurrency),
    r.seconds.toFixed(2),
    r.imagesPerSecond.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    `| ${c.map((v, i) => (i >= 2 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i >= 2 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")}|`);
  for (const c of cells) console.log(line(c));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      jpegs: { type: "string", default: "500" },
      concurrency: { type: "string", default: "1,2,4" },
      reps: { type: "string", default: "2" },
      "skip-prepare": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task bench:data [--jpegs 500] [--concurrency 1,2,4] [--reps 2] [--skip-prepare]",
    );
    return;
  }
  const n = Number(values.jpegs);
  const reps = Number(values.reps);
  const conc = values.concurrency.split(",").map(Number);
  if (!Number.isInteger(n) || n < 10) {
    throw new UserError(`--jpegs ${values.jpegs}: expected an integer >= 10`);
  }
  if (!Number.isInteger(reps) || reps < 1) {
    throw new UserError(`--reps ${values.reps}: expected a positive integer`);
  }
  if (conc.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new UserError(`--concurrency ${values.concurrency}: expected e.g. 1,2,4`);
  }
  console.log(`cpus: ${navigator.hardwareConcurrency}; deno ${Deno.version.deno}`);
  const rows: Row[] = [];
  if (!values["skip-prepare"]) {
    const fm = DATASETS["fashion-mnist"].defaultRoot;
    if (await exists(fm)) rows.push(await benchPrepare("fashion-mnist", fm, 1, reps));
    else {console.log(
        `fashion-mnist: ${fm} not installed (apt-get install dataset-fashion-mnist); row skipped`,
      );}
    const jpegRoot = await jpegSet(n);
    for (const c of conc) rows.push(await benchPrepare("imagenette160", jpegRoot, c, reps));
  }
  const loader = await benchLoader();
  rows.push(...loader);
  printTable(rows);
  if (loader.length === 0) {
    console.log("\nloader + augmentation throughput: not implemented yet (see tasks/bench_data.ts)");
  }
}

if (import.meta.main) await runMain(main);
