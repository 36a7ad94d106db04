/**
 * `deno task bench:data`: data-pipeline throughput.
 *
 * Part 1 (prepare): images/s of `deno task prepare`'s build for Fashion-MNIST (the real IDX files,
 * raw copy) and for a generated set of Imagenette-like JPEGs (213x160, decoded with sharp and
 * stretched to the stored 192x384) at several decode concurrencies. Every build is forced, into
 * `.cache/bench/`.
 *
 * Part 2 (loader + GPU augmentation): images/s of training batches produced on the GPU from uint8
 * sources, for the heaviest protocol, a large-source protocol and the real Fashion-MNIST cache.
 *
 * @module
 */
import { join } from "node:path";
import { runMain } from "../runtime/errors.ts";
import { intFlag, parseCli } from "../runtime/cli.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import { DATASETS, defaultCacheDir, prepareDataset } from "../data/datasets.ts";
import { writeJpegBenchSet } from "../data/synthetic.ts";
import { openCache } from "../data/cache/mod.ts";
import { fromCacheSplit, type ImageSource } from "../data/loader.ts";
import { type DatasetProtocol, paperProtocol, referenceProtocol } from "../data/protocol.ts";
import { benchLoader, syntheticSource } from "../data/bench_loader.ts";
import { initRuntime } from "../runtime/webgpu.ts";

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

/**
 * Loader + GPU augmentation throughput at `size` px, batch 32: the heaviest protocol (CIFAR-100
 * reference: RRC, flip, RandAugment, ColorJitter, erasing, CutMix) on a synthetic 32×32 source,
 * the paper preset on a 256² source (Dogs-like), and the real Fashion-MNIST cache when prepared.
 */
async function benchLoaders(sizes: number[], batches: number): Promise<Row[]> {
  await initRuntime();
  const rows: Row[] = [];
  const configs: {
    name: string;
    protocol: DatasetProtocol;
    source: () => Promise<ImageSource | undefined>;
  }[] = [
    {
      name: "cifar100 reference (synthetic 32²)",
      protocol: referenceProtocol("cifar100"),
      source: () => Promise.resolve(syntheticSource(2048, 32, 32, 3)),
    },
    {
      name: "stanford-dogs paper (synthetic 256²)",
      protocol: paperProtocol("stanford-dogs"),
      source: () => Promise.resolve(syntheticSource(256, 256, 256, 3)),
    },
    {
      name: "fashion-mnist reference (cache)",
      protocol: referenceProtocol("fashion-mnist"),
      source: async () => {
        const dir = defaultCacheDir("fashion-mnist");
        if (!(await exists(join(dir, "manifest.json")))) return undefined;
        return fromCacheSplit(await (await openCache(dir)).split("train"));
      },
    },
  ];
  for (const size of sizes) {
    for (const c of configs) {
      const source = await c.source();
      if (!source) {
        console.log(`${c.name}: no cache (run deno task prepare --dataset fashion-mnist); row skipped`);
        continue;
      }
      const r = await benchLoader({ protocol: c.protocol, source, imageSize: size, batchSize: 32, batches });
      rows.push({
        stage: `loader ${size}px`,
        dataset: c.name,
        images: r.batches * r.batchSize,
        concurrency: "-",
        seconds: (r.msPerBatch * r.batches) / 1000,
        imagesPerSecond: r.imagesPerSecond,
      });
    }
  }
  return rows;
}

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

const USAGE = `usage: deno task bench:data [options]

options:
  --jpegs N            synthetic JPEGs in the prepare benchmark (default 500, at least 10)
  --concurrency a,b    decode concurrencies to time (default 1,2,4)
  --reps N             repetitions per figure (default 2)
  --skip-prepare       leave out the prepare rows
  --skip-loader        leave out the loader rows
  --sizes a,b          loader output sizes (default 32,224)
  --batches N          loader batches per figure (default 8)
  --help`;

async function main(): Promise<void> {
  const { values } = parseCli(Deno.args, {
    usage: USAGE,
    options: {
      jpegs: { type: "string", default: "500" },
      concurrency: { type: "string", default: "1,2,4" },
      reps: { type: "string", default: "2" },
      "skip-prepare": { type: "boolean", default: false },
      "skip-loader": { type: "boolean", default: false },
      sizes: { type: "string", default: "32,224" },
      batches: { type: "string", default: "8" },
    },
  });
  const n = intFlag(values.jpegs, "jpegs", USAGE, { min: 10, max: 1_000_000 })!;
  const reps = intFlag(values.reps, "reps", USAGE, { min: 1, max: 1000 })!;
  const list = (v: string, name: string, min: number, max: number) =>
    v.split(",").map((x) => intFlag(x, name, USAGE, { min, max })!);
  const conc = list(values.concurrency, "concurrency", 1, 1024);
  const sizes = list(values.sizes, "sizes", 8, 4096);
  const batches = intFlag(values.batches, "batches", USAGE, { min: 1, max: 100_000 })!;
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
  if (!values["skip-loader"]) {
    rows.push(...await benchLoaders(sizes, batches));
  }
  printTable(rows);
}

if (import.meta.main) await runMain(main);
