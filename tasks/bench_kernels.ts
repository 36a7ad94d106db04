/**
 * `deno task bench:kernels`: custom WGSL kernels against stock tfjs ops, for every depthwise, SE
 * and 1×1-conv (matmul) layer shape of the zoo at 224x224 and batch 32 (or the largest batch whose tensors fit the
 * adapter's maxStorageBufferBindingSize, noted in the row). Prints a markdown table and, last,
 * one JSON line with every number.
 *
 * Timing: each timed batch runs `iters` iterations and then reads back one element once (a
 * readback costs ~11 ms in Deno, so it is amortised, not per iteration). Stock and custom runs
 * interleave; each figure is the best of `--rounds` batches.
 *
 * Shapes come from {@link zooKernelShapes}: every registered model's depthwise, SE and 1×1-conv
 * calls (128 distinct depthwise/SE shapes for the 11 models, plus the 1×1 convs; on llvmpipe a full run takes hours, so restrict it with
 * --models).
 *
 * Flags: --quick (three shapes, one round), --models id,id, --match s,s (shapes whose label
 * contains one of the substrings, e.g. "k7x7,hardsigmoid"), --batch N, --size N, --rounds N,
 * --target-ms N (wall time one timed batch aims for), --only dw|se|pw. Geometric means per kind,
 * and over dw+se (the custom kernels' figure of merit in BENCHMARKS.md).
 *
 * @module
 */
import { tf } from "../runtime/tf.ts";
import { runMain, UserError } from "../runtime/errors.ts";
import { choiceFlag, intFlag, parseCli } from "../runtime/cli.ts";
import { assertGpuHealthy, initRuntime } from "../runtime/webgpu.ts";
import { depthwiseConv2d, type KernelChoice, matMul, type SeOptions, squeezeExcite } from "../kernels/mod.ts";
import { describeShape, type ZooLayerShape } from "../kernels/zoo_shapes.ts";
import { zooKernelShapes } from "../models/inspect.ts";
import { Rng } from "../runtime/rng.ts";

interface Row {
  shape: string;
  models: string[];
  batch: number;
  batchNote: string;
  fwd: { stock: number; custom: number; speedup: number };
  fwdBwd: { stock: number; custom: number; speedup: number };
}

/** Runs `step` (which returns the tensors it made) `iters` times, then syncs once; ms per iteration. */
async function timeBatch(step: () => tf.Tensor[], iters: number): Promise<number> {
  const t0 = performance.now();
  let last: tf.Tensor[] = [];
  for (let i = 0; i < iters; i++) {
    tf.dispose(last);
    last = step();
  }
  const probe = tf.tidy(() => tf.addN(last.map((t) => tf.slice(t.reshape([-1]), 0, 1))));
  await probe.data();
  const ms = (performance.now() - t0) / iters;
  tf.dispose([probe, ...last]);
  assertGpuHealthy();
  return ms;
}

/** Best-of-`rounds` ms per iteration for each kernel choice, interleaved. */
async function compare(
  make: (k: KernelChoice) => () => tf.Tensor[],
  rounds: number,
  targetMs: number,
): Promise<Record<KernelChoice, number>> {
  const best: Record<KernelChoice, number> = { stock: Infinity, custom: Infinity };
  const iters: Record<KernelChoice, number> = { stock: 1, custom: 1 };
  for (const k of ["stock", "custom"] as const) {
    await timeBatch(make(k), 1); // compile pipelines, fill the buffer pool
    const once = await timeBatch(make(k), 1);
    iters[k] = Math.max(1, Math.min(500, Math.round(targetMs / Math.max(once, 0.05))));
  }
  for (let r = 0; r < rounds; r++) {
    for (const k of ["stock", "custom"] as const) {
      best[k] = Math.min(best[k], await timeBatch(make(k), iters[k]));
    }
  }
  return best;
}

/** Largest batch <= `want` whose biggest tensor fits the binding limit. */
function fitBatch(want: number, bytesPerImage: number, limit: number): { batch: number; note: string } {
  const fits = Math.floor(limit / bytesPerImage);
  if (fits >= want) return { batch: want, note: "" };
  if (fits < 1) throw new UserError(`one image needs ${bytesPerImage} bytes, over the binding limit`);
  const need = (want * bytesPerImage / 2 ** 20).toFixed(0);
  return {
    batch: fits,
    note: `batch ${fits}: ${want}x needs ${need} MiB > ${(limit / 2 ** 20).toFixed(0)} MiB binding limit`,
  };
}

async function benchShape(
  s: ZooLayerShape,
  wantBatch: number,
  limit: number,
  rounds: number,
  targetMs: number,
  rng: Rng,
): Promise<Row> {
  const seed = () => rng.int(0, 2 ** 31 - 1);
  if (s.kind === "dw") {
    const [kh, kw] = s.kernel;
    const Ho = Math.floor((s.H + 2 * s.pad[0] - kh) / s.strides[0]) + 1;
    const Wo = Math.floor((s.W + 2 * s.pad[1] - kw) / s.strides[1]) + 1;
    const perImage = 4 * s.C * Math.max(s.H * s.W, (s.H + 2 * s.pad[0]) * (s.W + 2 * s.pad[1]), Ho * Wo);
    const { batch, note } = fitBatch(wantBatch, perImage, limit);
    const x = tf.randomNormal([batch, s.H, s.W, s.C], 0, 1, "float32", seed()) as tf.Tensor4D;
    const f = tf.randomNormal([kh, kw, s.C, 1], 0, 1, "float32", seed()) as tf.Tensor4D;
    const dy = tf.randomNormal([batch, Ho, Wo, s.C], 0, 1, "float32", seed()) as tf.Tensor4D;
    const opts = { strides: s.strides, pad: s.pad };
    const fwd = await compare((k) => () => [depthwiseConv2d(x, f, opts, k)], rounds, targetMs);
    const fb = await compare(
      (k) => () =>
        tf.grads((a, b) => depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, opts, k))([x, f], dy),
      rounds,
      targetMs,
    );
    tf.dispose([x, f, dy]);
    return row(s, batch, note, fwd, fb);
  }
  if (s.kind === "pw") {
    const { batch, note } = fitBatch(wantBatch, 4 * s.H * s.W * Math.max(s.C, s.Cout), limit);
    const M = batch * s.H * s.W;
    const x = tf.randomNormal([M, s.C], 0, 1, "float32", seed());
    const w = tf.randomNormal([s.C, s.Cout], 0, 0.1, "float32", seed());
    const dy = tf.randomNormal([M, s.Cout], 0, 1, "float32", seed());
    const fwd = await compare((k) => () => [matMul(x, w, false, false, k)], rounds, targetMs);
    const fb = await compare(
      (k) => () => tf.grads((a, b) => matMul(a, b, false, false, k))([x, w], dy),
      rounds,
      targetMs,
    );
    tf.dispose([x, w, dy]);
    return row(s, batch, note, fwd, fb);
  }
  const { batch, note } = fitBatch(wantBatch, 4 * s.H * s.W * s.C, limit);
  const x = tf.randomNormal([batch, s.H, s.W, s.C], 0, 1, "float32", seed()) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, s.H, s.W, s.C], 0, 1, "float32", seed()) as tf.Tensor4D;
  const w = [
    tf.randomNormal([s.C, s.Cr], 0, 0.1, "float32", seed()),
    tf.randomNormal([s.Cr], 0, 0.1, "float32", seed()),
    tf.randomNormal([s.Cr, s.C], 0, 0.1, "float32", seed()),
    tf.randomNormal([s.C], 0, 0.1, "float32", seed()),
  ];
  const opts: SeOptions = { act: s.act, gate: s.gate };
  const se =
    (k: KernelChoice) => (xx: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) =>
      squeezeExcite(
        xx as tf.Tensor4D,
        { w1: w1 as tf.Tensor2D, b1: b1 as tf.Tensor1D, w2: w2 as tf.Tensor2D, b2: b2 as tf.Tensor1D },
        opts,
        k,
      );
  const fwd = await compare((k) => () => [se(k)(x, w[0], w[1], w[2], w[3])], rounds, targetMs);
  const fb = await compare((k) => () => tf.grads(se(k))([x, ...w], dy), rounds, targetMs);
  tf.dispose([x, dy, ...w]);
  return row(s, batch, note, fwd, fb);
}

function row(
  s: ZooLayerShape,
  batch: number,
  note: string,
  fwd: Record<KernelChoice, number>,
  fb: Record<KernelChoice, number>,
): Row {
  return {
    shape: describeShape(s),
    models: s.models,
    batch,
    batchNote: note,
    fwd: { ...fwd, speedup: fwd.stock / fwd.custom },
    fwdBwd: { ...fb, speedup: fb.stock / fb.custom },
  };
}

/** Geometric mean; null for no values (JSON-friendly). */
const geomean = (xs: number[]) =>
  xs.length === 0 ? null : Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

const USAGE = `usage: deno task bench:kernels [options]

options:
  --quick            three shapes, one round
  --models id,id     only these models' layer shapes
  --match s,s        shapes whose label contains one of the substrings (e.g. k7x7,hardsigmoid)
  --only dw|se|pw    one kind of kernel
  --batch N          batch (default 32)
  --size N           input size (default 224)
  --rounds N         timed batches per figure (default 2; --quick 1)
  --target-ms N      wall time one timed batch aims for (default 400; --quick 100)
  --help`;

async function main(): Promise<void> {
  const options = {
    quick: { type: "boolean", default: false },
    batch: { type: "string", default: "32" },
    size: { type: "string", default: "224" },
    rounds: { type: "string" },
    "target-ms": { type: "string" },
    only: { type: "string" },
    models: { type: "string" },
    match: { type: "string" },
  } as const;
  const { values } = parseCli(Deno.args, { options, usage: USAGE });
  const int = (name: string, v: string | undefined, dflt: number) =>
    intFlag(v, name, USAGE, { min: 1 }) ?? dflt;
  const quick = values.quick;
  const batch = int("batch", values.batch, 32);
  const size = int("size", values.size, 224);
  const rounds = int("rounds", values.rounds, quick ? 1 : 2);
  const targetMs = int("target-ms", values["target-ms"], quick ? 100 : 400);
  choiceFlag(values.only, "only", ["dw", "se", "pw"] as const, USAGE);
  const facts = await initRuntime();
  const models = values.models?.split(",").map((m) => m.trim()).filter((m) => m !== "");
  const zoo = zooKernelShapes(size, models);
  const match = values.match?.split(",").filter((m) => m !== "");
  let shapes = zoo.shapes.filter((s) =>
    (values.only === undefined || s.kind === values.only) &&
    (match === undefined || match.some((m) => describeShape(s).includes(m)))
  );
  if (quick) {
    // One small depthwise per stride and one SE: a smoke test of the whole path.
    const cost = (s: ZooLayerShape) => s.H * s.W * s.C;
    const pick = (f: (s: ZooLayerShape) => boolean) => shapes.filter(f).sort((a, b) => cost(a) - cost(b))[0];
    shapes = [
      pick((s) => s.kind === "dw" && s.strides[0] === 1),
      pick((s) => s.kind === "dw" && s.strides[0] === 2),
      pick((s) => s.kind === "se"),
      pick((s) => s.kind === "pw"),
    ].filter((s): s is ZooLayerShape => s !== undefined);
  }
  const limit = facts.limits.maxStorageBufferBindingSize;
  console.log(`# bench:kernels: custom WGSL vs stock tfjs (${size}x${size}, batch ${batch})`);
  const source = `model registry (${models?.join(", ") ?? "all models"})`;
  const limitMiB = (limit / 2 ** 20).toFixed(0);
  console.log(
    `adapter: ${facts.description} (${facts.backend}); maxStorageBufferBindingSize ${limitMiB} MiB`,
  );
  console.log(
    `shapes: ${source}${match ? `, matching ${match.join(" | ")}` : ""}, ${shapes.length} distinct`,
  );
  console.log("ms per iteration, best of " + rounds + " timed batches; speedup = stock / custom\n");
  console.log(
    "| shape | models | batch | fwd stock | fwd custom | fwd x | f+b stock | f+b custom | f+b x |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  const rng = new Rng(20240601);
  const rows: Row[] = [];
  for (const s of shapes) {
    const r = await benchShape(s, batch, limit, rounds, targetMs, rng);
    rows.push(r);
    const b = r.batchNote ? `${r.batch} (${r.batchNote})` : `${r.batch}`;
    console.log(
      `| ${r.shape} | ${r.models.join(", ")} | ${b} | ${r.fwd.stock.toFixed(1)} | ${
        r.fwd.custom.toFixed(1)
      } | ` +
        `${r.fwd.speedup.toFixed(2)} | ${r.fwdBwd.stock.toFixed(1)} | ${r.fwdBwd.custom.toFixed(1)} | ` +
        `${r.fwdBwd.speedup.toFixed(2)} |`,
    );
  }
  const gm = (kinds: string[], key: "fwd" | "fwdBwd") =>
    geomean(rows.filter((r) => kinds.some((k) => r.shape.startsWith(k))).map((r) => r[key].speedup));
  const summary: Record<string, { fwd: number | null; fwdBwd: number | null }> = {};
  // "dw+se" is the custom depthwise/SE kernels' figure of merit; the 1×1-conv matmul is reported beside it.
  for (
    const [name, kinds] of [["dw", ["dw"]], ["se", ["se"]], ["dw+se", ["dw", "se"]], ["pw", ["pw"]]] as const
  ) {
    summary[name] = { fwd: gm([...kinds], "fwd"), fwdBwd: gm([...kinds], "fwdBwd") };
  }
  const fmt = (v: number | null) => (v === null ? "n/a" : `**${v.toFixed(2)}**`);
  for (const [k, v] of Object.entries(summary)) {
    console.log(`| **geomean ${k}** | | | | | ${fmt(v.fwd)} | | | ${fmt(v.fwdBwd)} |`);
  }
  console.log("");
  console.log(
    JSON.stringify({
      bench: "kernels",
      adapter: facts.description,
      shapeSource: zoo.source,
      models: models ?? "all",
      size,
      batch,
      rounds,
      rows,
      geomean: summary,
    }),
  );
}

if (import.meta.main) runMain(main);
