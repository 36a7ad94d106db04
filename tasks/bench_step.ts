/**
 * `deno task bench:step`: the cost of the trainer's own training step (train/step.ts), recorded
 * (replayed) vs eager, in one process.
 *
 *     deno task bench:step --model mobilenet [--image-size 32] [--batch-size 32] [--steps 10]
 *                          [--step recorded|eager] [--all] [--compare-stock] [--json results/F.json]
 *
 * Per row: median ms of one synced step (step, then wait for the GPU), ms per step of `--steps`
 * steps queued back to back with one sync (throughput), `host_ms` — the time to issue one step
 * with the GPU idle (the GPU is drained first and the step's submits carry no work, so this is host
 * work only: JavaScript, tfjs bookkeeping, WebGPU encoding and the submit calls) — and the WebGPU calls of one step (dispatches, submits, passes,
 * bind groups, buffers, buffer writes). The batch is a fixed synthetic one already on the GPU, as
 * the augmentation leaves it. `--compare-stock` adds the stock-kernel eager step (slow: bounded to
 * 2 timed steps, run after the others).
 *
 * @module
 */
import { tf, type WebGPUBackend } from "../runtime/tf.ts";
import { assertBindable, assertGpuHealthy, GpuError, initRuntime } from "../runtime/webgpu.ts";
import { runMain, UserError } from "../runtime/errors.ts";
import { assertWritableDir, choiceFlag, intFlag, parseCli, UsageError } from "../runtime/cli.ts";
import {
  deviceOf,
  gpuBufferOf,
  type GpuCallCounts,
  gpuCallCounts,
  installGpuHooks,
  withoutGpuWork,
} from "../runtime/gpu.ts";
import { dirname } from "node:path";
import { writeFileAtomic } from "../runtime/fs.ts";
import { Rng } from "../runtime/rng.ts";
import "../models/zoo.ts";
import { buildModel, MODELS } from "../models/registry.ts";
import { emptyActivation, largestActivation } from "../models/inspect.ts";
import type { KernelChoice } from "../models/core.ts";
import { createAdamState, disposeAdamState } from "../train/optimizer.ts";
import { type StepMode, TrainStep } from "../train/step.ts";
import type { TrainBatch } from "../data/types.ts";

/** One measured variant (the `--json` row). */
export interface StepRow {
  model: string;
  image_size: number;
  batch_size: number;
  kernels: KernelChoice;
  step: StepMode;
  /** Median of synced steps (ms). */
  ms_median: number;
  /** Mean ms/step of steps queued back to back, one sync at the end. */
  ms_queued: number;
  /** Host time to issue one step with the GPU idle (ms, median). */
  host_ms: number;
  dispatches: number;
  submits: number;
  passes: number;
  bind_groups: number;
  buffers_created: number;
  buffer_writes: number;
  /** Mean training loss over the timed steps (a sanity value: finite, near ln(classes)). */
  loss: number;
  error?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A fixed synthetic batch on the GPU; each step gets shared-data clones (the step disposes them). */
function syntheticBatch(b: number, size: number, classes: number, seed: number) {
  const rng = new Rng(seed);
  const x = tf.tensor4d(Float32Array.from({ length: b * size * size * 3 }, () => rng.normal()), [
    b,
    size,
    size,
    3,
  ]);
  const y = tf.tensor1d(Int32Array.from({ length: b }, () => rng.int(0, classes - 1)), "int32");
  const yB = tf.tensor1d(Int32Array.from({ length: b }, () => rng.int(0, classes - 1)), "int32");
  if (tf.getBackend() === "webgpu") {
    for (const t of [x, y, yB]) gpuBufferOf(tf.backend() as WebGPUBackend, t);
  }
  return {
    next: (): TrainBatch => ({ x: tf.clone(x), yA: tf.clone(y), yB: tf.clone(yB), lambda: 0.7, valid: b }),
    dispose: () => tf.dispose([x, y, yB]),
  };
}

async function gpuIdle(): Promise<void> {
  if (tf.getBackend() === "webgpu") await deviceOf(tf.backend() as WebGPUBackend).queue.onSubmittedWorkDone();
}

/** Measures the trainer's step for one model, kernel choice and step mode. */
export async function benchStep(
  model: string,
  o: {
    imageSize: number;
    batch: number;
    steps: number;
    numClasses: number;
    kernels: KernelChoice;
    step: StepMode;
  },
): Promise<StepRow> {
  const net = buildModel(model, { numClasses: o.numClasses, imageSize: o.imageSize, seed: 0 });
  const adam = createAdamState(net.params.trainableVariables());
  const ctx = { training: true, rng: new Rng(1), kernels: o.kernels };
  const step = new TrainStep(net, adam, ctx, { kernels: o.kernels, labelSmoothing: 0.05, mode: o.step });
  const data = syntheticBatch(o.batch, o.imageSize, o.numClasses, 7);
  let counter = 0;
  const run = () => step.run(data.next(), 1e-4, { seed: 1, counter: counter++ });
  try {
    // Warm-up: compiles every pipeline; in recorded mode the second step is the recording.
    for (let i = 0; i < 3; i++) run();
    await step.readMetrics();
    assertGpuHealthy();
    step.resetMetrics();
    const synced: number[] = [], host: number[] = [];
    let calls: GpuCallCounts | undefined;
    for (let i = 0; i < o.steps; i++) {
      await gpuIdle();
      const c0 = gpuCallCounts();
      const t0 = performance.now();
      run();
      const c1 = gpuCallCounts();
      await gpuIdle();
      synced.push(performance.now() - t0);
      calls ??= Object.fromEntries(
        Object.keys(c1).map((k) => [k, c1[k as keyof GpuCallCounts] - c0[k as keyof GpuCallCounts]]),
      ) as unknown as GpuCallCounts;
    }
    // Host time: the same step issued with its GPU work dropped (on a software adapter the GPU
    // work would otherwise block inside later submits and be counted as host time).
    for (let i = 0; i < o.steps; i++) {
      await gpuIdle();
      const t0 = performance.now();
      withoutGpuWork(run);
      host.push(performance.now() - t0);
    }
    const tq = performance.now();
    for (let i = 0; i < o.steps; i++) run();
    const m = await step.readMetrics();
    const msQueued = (performance.now() - tq) / o.steps;
    assertGpuHealthy();
    return {
      model,
      image_size: o.imageSize,
      batch_size: o.batch,
      kernels: o.kernels,
      step: step.plan ? "recorded" : "eager",
      ms_median: median(synced),
      ms_queued: msQueued,
      host_ms: median(host),
      dispatches: calls!.dispatches,
      submits: calls!.submits,
      passes: calls!.passes,
      bind_groups: calls!.createBindGroup,
      buffers_created: calls!.createBuffer,
      buffer_writes: calls!.writeBuffer,
      loss: m.lossSum / (2 * o.steps * o.batch),
    };
  } finally {
    data.dispose();
    step.dispose();
    disposeAdamState(adam);
    net.params.dispose();
  }
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

/** The markdown table of a set of rows; recorded rows carry their ratios to the eager row. */
export function formatStepTable(rows: StepRow[]): string {
  const lines = [
    "| model | px | batch | kernels | step | ms/step synced | ms/step queued | host ms | dispatches | submits | passes | bind groups | buffers | writes | eager/recorded (queued, host) | loss |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(
        `| ${r.model} | ${r.image_size} | ${r.batch_size} | ${r.kernels} | ${r.step} | ${r.error} |`,
      );
      continue;
    }
    const eager = rows.find((e) =>
      e.model === r.model && e.kernels === "custom" && e.step === "eager" && !e.error
    );
    const ratio = r.step === "recorded" && eager
      ? `${fmt(eager.ms_queued / r.ms_queued, 2)}×, ${fmt(eager.host_ms / r.host_ms, 1)}×`
      : "";
    lines.push(
      `| ${
        [
          r.model,
          r.image_size,
          r.batch_size,
          r.kernels,
          r.step,
          fmt(r.ms_median),
          fmt(r.ms_queued),
          fmt(r.host_ms, 2),
          r.dispatches,
          r.submits,
          r.passes,
          r.bind_groups,
          r.buffers_created,
          r.buffer_writes,
          ratio,
          fmt(r.loss, 4),
        ].join(" | ")
      } |`,
    );
  }
  return lines.join("\n");
}

const USAGE = `usage: deno task bench:step (--model ID | --all) [--image-size 32] [--batch-size 32]
  [--steps 5] [--step recorded|eager] [--compare-stock] [--json FILE] [--num-classes 10]`;

async function main(): Promise<void> {
  const { values } = parseCli(Deno.args, {
    usage: USAGE,
    options: {
      model: { type: "string" },
      all: { type: "boolean", default: false },
      "image-size": { type: "string", default: "32" },
      "batch-size": { type: "string", default: "32" },
      "num-classes": { type: "string", default: "10" },
      steps: { type: "string", default: "5" },
      step: { type: "string" },
      "compare-stock": { type: "boolean", default: false },
      json: { type: "string" },
    },
  });
  const int = (name: string, v: string | undefined, min: number): number => intFlag(v, name, USAGE, { min })!;
  const imageSize = int("image-size", values["image-size"], 8);
  const batch = int("batch-size", values["batch-size"], 1);
  const steps = int("steps", values.steps, 1);
  const numClasses = int("num-classes", values["num-classes"], 2);
  choiceFlag(values.step, "step", ["recorded", "eager"] as const, USAGE);
  const modes: StepMode[] = values.step ? [values.step as StepMode] : ["eager", "recorded"];
  const ids = values.all ? Object.keys(MODELS).sort() : values.model ? [values.model] : [];
  if (ids.length === 0) throw new UsageError("give --model <id> or --all", USAGE);
  for (const id of ids) {
    if (!MODELS[id]) {
      throw new UserError(`unknown model "${id}"; known: ${Object.keys(MODELS).sort().join(", ")}`);
    }
  }
  // The rows must have somewhere to go before minutes of benchmarking.
  if (values.json) await assertWritableDir(dirname(values.json), "--json", "bench:step", ["results"]);
  const facts = await initRuntime();
  if (tf.getBackend() === "webgpu") installGpuHooks(tf.backend() as WebGPUBackend);
  console.log(`adapter: ${facts.description}`);
  const rows: StepRow[] = [];
  const variants: Array<[KernelChoice, StepMode]> = modes.map((m) => ["custom", m]);
  if (values["compare-stock"]) variants.push(["stock", "eager"]);
  for (const id of ids) {
    for (const [kernels, step] of variants) {
      const o = {
        imageSize,
        batch,
        numClasses,
        kernels,
        step,
        steps: kernels === "stock" ? Math.min(steps, 2) : steps,
      };
      try {
        const empty = emptyActivation(id, { numClasses, imageSize });
        if (empty) throw new UserError(`${id} does not run at ${imageSize} px: ${empty} is empty`);
        const big = largestActivation(id, { numClasses, imageSize }, batch);
        assertBindable(big.elements * 4, `${id} at ${imageSize} px, batch ${batch}: ${big.where}`);
        const r = await benchStep(id, o);
        // A step whose loss is not finite timed a diverged computation: report it as failed.
        if (!Number.isFinite(r.loss)) throw new Error(`the loss is ${r.loss} after ${o.steps} steps`);
        rows.push(r);
        console.error(
          `${id} ${kernels} ${r.step}: ${fmt(r.ms_median)} ms synced, ${fmt(r.ms_queued)} ms queued, host ` +
            `${fmt(r.host_ms, 2)} ms, ${r.dispatches} dispatches, ${r.submits} submits, ${r.passes} passes`,
        );
      } catch (err) {
        if (err instanceof GpuError) throw err;
        // One model that does not fit or fails must not hide the other rows.
        const msg = (err instanceof Error ? err.message : String(err)).split("\n")[0].replaceAll("|", "/");
        console.error(`${id} ${kernels} ${step}: ${msg}`);
        rows.push({
          model: id,
          image_size: imageSize,
          batch_size: batch,
          kernels,
          step,
          ms_median: NaN,
          ms_queued: NaN,
          host_ms: NaN,
          dispatches: 0,
          submits: 0,
          passes: 0,
          bind_groups: 0,
          buffers_created: 0,
          buffer_writes: 0,
          loss: NaN,
          error: msg,
        });
      }
    }
  }
  console.log(formatStepTable(rows));
  if (values.json) await writeFileAtomic(values.json, JSON.stringify(rows, null, 1) + "\n");
  const failed = rows.filter((r) => r.error);
  if (failed.length > 0) {
    throw new UserError(
      `${failed.length} of ${rows.length} rows failed (${
        failed.map((r) => `${r.model} ${r.kernels} ${r.step}`).join(", ")
      }); ` +
        "their errors are printed above and in the table",
      1,
    );
  }
}

if (import.meta.main) await runMain(main);
