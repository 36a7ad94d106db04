/**
 * `deno task bench:step`: training-step cost per model, stock tfjs ops vs the custom kernels
 * (fused BatchNorm, fused Adam, the depthwise/SE kernels behind `kernels: "custom"`).
 *
 *     deno task bench:step --model mobilenet [--image-size 32] [--batch-size 32] [--steps 10]
 *                          [--kernels custom|stock] [--all] [--no-compare] [--no-profile]
 *
 * A step is forward (training mode) + label-smoothed cross-entropy + gradients + Adam, in one
 * tidy, on a fixed seeded batch. Reported per variant: median ms/step over `--steps` steps after
 * two warm-up steps (each step synced by reading the loss), GPU dispatches per step (every
 * `dispatchWorkgroups`, tfjs's and the raw ones), live and pooled GPU memory, and the top kernels
 * of one `tf.profile`d step. Without `--kernels` both variants run in this process (the pool is
 * emptied between them) and the table shows custom/stock ratios. A model whose largest tensor at
 * this batch would exceed the adapter's `maxStorageBufferBindingSize` gets a "does not fit" row.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Tensor, tf, type WebGPUBackend } from "../runtime/tf.ts";
import { assertBindable, assertGpuHealthy, GpuError, initRuntime } from "../runtime/webgpu.ts";
import { runMain, UserError } from "../runtime/errors.ts";
import { Rng } from "../runtime/rng.ts";
import { buildModel, MODELS, type ModelSpec, registerModel } from "../models/registry.ts";
import type { KernelChoice, Model } from "../models/core.ts";
import { fusedAdamStep } from "../kernels/adam.ts";

/** Label smoothing of the reference loss. */
const SMOOTHING = 0.05;

/** Mean label-smoothed cross-entropy (PyTorch `CrossEntropyLoss(label_smoothing)`), labels one-hot [B, C]. */
export function smoothedCrossEntropy(logits: Tensor, oneHot: Tensor, smoothing = SMOOTHING): Tensor {
  const [b, c] = logits.shape;
  const target = tf.add(tf.mul(oneHot, 1 - smoothing), smoothing / c);
  return tf.div(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)))), b);
}

/** Adam state over flat moments (the layout of train/optimizer.ts). */
interface FlatAdam {
  m: tf.Variable;
  v: tf.Variable;
  step: number;
}

/**
 * The plain-ops Adam the trainer uses without custom kernels (same composition as
 * train/optimizer.ts `applyAdam`: one concat, ~10 flat elementwise ops, a slice + sub per variable).
 */
function stockAdam(vars: tf.Variable[], grads: Tensor[], s: FlatAdam, lr: number): void {
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const bc1 = 1 - beta1 ** s.step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** s.step);
  const g = tf.concat(grads.map((gr) => tf.reshape(gr, [-1])));
  const m = tf.add(s.m, tf.mul(tf.sub(g, s.m), 1 - beta1));
  const v = tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2));
  s.m.assign(m);
  s.v.assign(v);
  const update = tf.mul(tf.div(m, tf.add(tf.div(tf.sqrt(v), bc2Sqrt), eps)), lr / bc1);
  let offset = 0;
  for (const p of vars) {
    p.assign(tf.sub(p, tf.reshape(tf.slice(update, offset, p.size), p.shape)));
    offset += p.size;
  }
}

/** A model with its optimizer state, stepping with one kernel choice. */
export interface Trainer {
  model: Model;
  kernels: KernelChoice;
  /** One training step on (x, oneHot); returns the loss (a scalar tensor the caller disposes). */
  step(x: Tensor, oneHot: Tensor): Tensor;
  /**
   * Loss and gradients (in `model.params.trainableVariables()` order) on (x, oneHot), updating
   * nothing but the BN running stats.
   */
  grads(x: Tensor, oneHot: Tensor): { value: Tensor; grads: Tensor[] };
  /** Frees the model's variables and the optimizer state. */
  dispose(): void;
}

/** Builds `modelId` (seeded) with Adam state; `kernels` picks stock ops or the custom kernels. */
export function makeTrainer(
  modelId: string,
  o: { imageSize: number; numClasses: number; seed: number; kernels: KernelChoice; lr?: number },
): Trainer {
  const model = buildModel(modelId, { numClasses: o.numClasses, imageSize: o.imageSize, seed: o.seed });
  const vars = model.params.trainableVariables();
  const n = vars.reduce((a, v) => a + v.size, 0);
  const state: FlatAdam = {
    m: tf.tidy(() => tf.variable(tf.zeros([n]), false)),
    v: tf.tidy(() => tf.variable(tf.zeros([n]), false)),
    step: 0,
  };
  const lr = o.lr ?? 1e-3;
  const rng = new Rng(o.seed + 1);
  return {
    model,
    kernels: o.kernels,
    step(x: Tensor, oneHot: Tensor): Tensor {
      return tf.tidy(() => {
        const ctx = { training: true, rng, kernels: o.kernels };
        const { value, grads } = tf.variableGrads(
          () => smoothedCrossEntropy(model.apply(x, ctx), oneHot) as tf.Scalar,
          vars,
        );
        state.step += 1;
        const g = vars.map((v) => grads[v.name]);
        if (o.kernels === "custom") fusedAdamStep(vars, g, state.m, state.v, state.step, lr);
        else stockAdam(vars, g, state, lr);
        return value;
      });
    },
    grads(x: Tensor, oneHot: Tensor) {
      return tf.tidy(() => {
        const ctx = { training: true, rng, kernels: o.kernels };
        const { value, grads } = tf.variableGrads(
          () => smoothedCrossEntropy(model.apply(x, ctx), oneHot) as tf.Scalar,
          vars,
        );
        return { value, grads: vars.map((v) => grads[v.name]) };
      });
    },
    dispose() {
      model.params.dispose();
      state.m.dispose();
      state.v.dispose();
    },
  };
}

/** Imports models/zoo.ts (which registers every family), or, before it exists, every family file. */
export async function registerZoo(): Promise<void> {
  const dir = new URL("../models/", import.meta.url);
  try {
    await import(new URL("zoo.ts", dir).href);
    return;
  } catch (err) {
    if (!(err instanceof Error) || !/zoo\.ts/.test(err.message)) throw err;
  }
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".ts") || ["core.ts", "registry.ts", "blocks.ts"].includes(e.name)) continue;
    const mod = await import(new URL(e.name, dir).href) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      const spec = v as ModelSpec;
      if (
        spec && typeof spec === "object" && typeof spec.id === "string" && typeof spec.build === "function"
      ) {
        if (!MODELS[spec.id]) registerModel(spec);
      }
    }
  }
}

let dispatches = 0;
let counting = false;
/** Counts every compute dispatch from now on (tfjs programs and raw dispatches alike). */
function installDispatchCounter(): void {
  if (counting) return;
  counting = true;
  const proto = GPUComputePassEncoder.prototype;
  const orig = proto.dispatchWorkgroups;
  proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, x: number, y?: number, z?: number) {
    dispatches++;
    return orig.call(this, x, y, z);
  };
}

interface PoolInternals {
  freeBuffers: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
}
/** Destroys the pooled free buffers, so the next variant's pool growth is its own. */
function releaseFreeBuffers(): void {
  if (tf.getBackend() !== "webgpu") return;
  const bm = (tf.backend() as unknown as { bufferManager: PoolInternals }).bufferManager;
  for (const list of bm.freeBuffers.values()) {
    for (const b of list) {
      bm.numBytesAllocated -= b.size;
      b.destroy();
    }
    list.length = 0;
  }
  bm.numFreeBuffers = 0;
}

/** One variant's measurements. */
export interface StepResult {
  model: string;
  kernels: KernelChoice;
  imageSize: number;
  batch: number;
  msMedian: number;
  msMin: number;
  /** Mean ms/step of `steps` steps queued with a single sync at the end. */
  msQueued: number;
  dispatchesPerStep: number;
  liveMiB: number;
  poolMiB: number;
  topKernels: Array<{ name: string; ms: number; calls: number }>;
  loss: number;
  error?: string;
}

const MiB = 2 ** 20;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function makeBatch(
  batch: number,
  size: number,
  classes: number,
  seed: number,
): { x: Tensor; oneHot: Tensor } {
  const rng = new Rng(seed);
  const labels = Int32Array.from({ length: batch }, () => rng.int(0, classes));
  return {
    x: tf.randomNormal([batch, size, size, 3], 0, 1, "float32", seed),
    oneHot: tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat(),
  };
}

/**
 * Largest tensor a training step creates at `batch`, in bytes. The step's allocations are recorded
 * at batch 2 and batch 4 (same ops in the same order; batch 1 is avoided because tfjs skips work on
 * size-1 axes); each size is affine in the batch (activations scale, weights do not), so
 * size(B) = s2 + (s4 − s2)(B − 2)/2. Used to refuse shapes the adapter cannot bind before running.
 */
function largestTensorBytes(modelId: string, imageSize: number, batch: number, numClasses: number): number {
  const backend = tf.backend() as WebGPUBackend;
  const orig = backend.makeTensorInfo.bind(backend);
  const record = (b: number): number[] => {
    const sizes: number[] = [];
    backend.makeTensorInfo = (shape, dtype, values) => {
      sizes.push(shape.reduce((a: number, d: number) => a * d, 1) * 4);
      return orig(shape, dtype, values);
    };
    const t = makeTrainer(modelId, { imageSize, numClasses, seed: 0, kernels: "stock" });
    try {
      const { x, oneHot } = makeBatch(b, imageSize, numClasses, 1);
      tf.dispose([t.step(x, oneHot), x, oneHot]);
    } finally {
      backend.makeTensorInfo = orig;
      t.dispose();
    }
    return sizes;
  };
  const s2 = record(2), s4 = record(4);
  if (s2.length !== s4.length) return Math.max(...s4) * Math.max(1, batch / 4);
  return Math.max(...s2.map((a, i) => a + ((s4[i] - a) * (batch - 2)) / 2));
}

/** Measures `steps` training steps of one variant. */
export async function benchVariant(
  modelId: string,
  kernels: KernelChoice,
  o: { imageSize: number; batch: number; steps: number; numClasses: number; profile: boolean },
): Promise<StepResult> {
  releaseFreeBuffers();
  const mem0 = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
  const pool0 = mem0.numBytesAllocatedInGPU ?? 0;
  const live0 = mem0.numBytesInGPU ?? 0;
  const t = makeTrainer(modelId, { imageSize: o.imageSize, numClasses: o.numClasses, seed: 0, kernels });
  const { x, oneHot } = makeBatch(o.batch, o.imageSize, o.numClasses, 7);
  try {
    let loss = NaN;
    for (let i = 0; i < 2; i++) {
      const l = t.step(x, oneHot);
      loss = (await l.data())[0];
      l.dispose();
      assertGpuHealthy();
    }
    const times: number[] = [];
    let d = 0;
    for (let i = 0; i < o.steps; i++) {
      const d0 = dispatches;
      const t0 = performance.now();
      const l = t.step(x, oneHot);
      loss = (await l.data())[0];
      times.push(performance.now() - t0);
      d = dispatches - d0;
      l.dispose();
    }
    // The same steps queued back to back with one sync at the end: no ~11 ms readback floor per
    // step, which matters on a real GPU where a step takes tens of ms.
    const tq = performance.now();
    const queued: Tensor[] = [];
    for (let i = 0; i < o.steps; i++) queued.push(t.step(x, oneHot));
    await queued[queued.length - 1].data();
    const msQueued = (performance.now() - tq) / o.steps;
    tf.dispose(queued);
    assertGpuHealthy();
    const mem = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number; numBytesAllocatedInGPU?: number };
    const live = (mem.numBytesInGPU ?? 0) - live0;
    const pool = (mem.numBytesAllocatedInGPU ?? 0) - pool0;
    let top: StepResult["topKernels"] = [];
    if (o.profile) {
      const info = await tf.profile(async () => {
        const l = t.step(x, oneHot);
        await l.data();
        l.dispose();
      });
      const agg = new Map<string, { ms: number; calls: number }>();
      for (const k of info.kernels) {
        const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
        const e = agg.get(k.name) ?? { ms: 0, calls: 0 };
        e.ms += ms;
        e.calls += 1;
        agg.set(k.name, e);
      }
      top = [...agg.entries()].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms).slice(0, 6);
    }
    return {
      model: modelId,
      kernels,
      imageSize: o.imageSize,
      batch: o.batch,
      msMedian: median(times),
      msMin: Math.min(...times),
      msQueued,
      dispatchesPerStep: d,
      liveMiB: live / MiB,
      poolMiB: pool / MiB,
      topKernels: top,
      loss,
    };
  } finally {
    tf.dispose([x, oneHot]);
    t.dispose();
  }
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "—";
}

/** The markdown table of a set of results (custom rows carry ratios against the stock row). */
export function formatTable(results: StepResult[]): string {
  const lines = [
    "| model | size | batch | kernels | ms/step (median, synced) | ms/step (queued) | dispatches/step | " +
    "live MiB | pool MiB | speed-up vs stock (median / queued) | dispatches stock/custom | loss |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.model} | ${r.imageSize} | ${r.batch} | ${r.kernels} | ${r.error} | | | | | | | |`);
      continue;
    }
    const base = results.find((s) => s.model === r.model && s.kernels === "stock" && !s.error);
    const custom = r.kernels === "custom" && base;
    const ratio = custom
      ? `${fmt(base.msMedian / r.msMedian, 2)}× / ${fmt(base.msQueued / r.msQueued, 2)}×`
      : "";
    const dratio = custom ? `${fmt(base.dispatchesPerStep / r.dispatchesPerStep, 2)}×` : "";
    const cells = [
      r.model,
      r.imageSize,
      r.batch,
      r.kernels,
      fmt(r.msMedian),
      fmt(r.msQueued),
      r.dispatchesPerStep,
      fmt(r.liveMiB),
      fmt(r.poolMiB),
      ratio,
      dratio,
      fmt(r.loss, 4),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** A table row for a variant that did not run. */
function errorRow(
  model: string,
  kernels: KernelChoice,
  imageSize: number,
  batch: number,
  error: string,
): StepResult {
  return {
    model,
    kernels,
    imageSize,
    batch,
    msMedian: NaN,
    msMin: NaN,
    msQueued: NaN,
    dispatchesPerStep: 0,
    liveMiB: NaN,
    poolMiB: NaN,
    topKernels: [],
    loss: NaN,
    error,
  };
}

/** Top kernels per variant, as markdown. */
export function formatTopKernels(results: StepResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    if (r.error || r.topKernels.length === 0) continue;
    const ks = r.topKernels.map((k) => `${k.name} ${fmt(k.ms)} ms/${k.calls}`).join(", ");
    out.push(`- ${r.model} ${r.kernels}: ${ks}`);
  }
  return out.length ? `Top kernels by tf.profile time (ms/calls, one profiled step):\n${out.join("\n")}` : "";
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      "image-size": { type: "string", default: "32" },
      "batch-size": { type: "string", default: "32" },
      "num-classes": { type: "string", default: "10" },
      kernels: { type: "string" },
      steps: { type: "string", default: "5" },
      all: { type: "boolean", default: false },
      "no-compare": { type: "boolean", default: false },
      "no-profile": { type: "boolean", default: false },
    },
  });
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UserError(`--${name} ${v}: must be an integer >= ${min}`);
    return n;
  };
  const imageSize = int("image-size", values["image-size"], 8);
  const batch = int("batch-size", values["batch-size"], 1);
  const steps = int("steps", values.steps, 1);
  const numClasses = int("num-classes", values["num-classes"], 2);
  const k = values.kernels;
  if (k !== undefined && k !== "custom" && k !== "stock") {
    throw new UserError(`--kernels ${k}: must be "custom" or "stock"`);
  }
  const variants: KernelChoice[] = k ? [k] : values["no-compare"] ? ["custom"] : ["stock", "custom"];
  await registerZoo();
  const ids = values.all ? Object.keys(MODELS).sort() : values.model ? [values.model] : [];
  if (ids.length === 0) throw new UserError("give --model <id> or --all");
  for (const id of ids) {
    if (!MODELS[id]) {
      throw new UserError(`unknown model "${id}"; known: ${Object.keys(MODELS).sort().join(", ")}`);
    }
  }
  const facts = await initRuntime();
  installDispatchCounter();
  console.log(
    `adapter: ${facts.description}; maxStorageBufferBindingSize ${
      (facts.limits.maxStorageBufferBindingSize / MiB).toFixed(0)
    } MiB`,
  );
  const results: StepResult[] = [];
  for (const id of ids) {
    let fitError: string | undefined;
    try {
      const bytes = largestTensorBytes(id, imageSize, batch, numClasses);
      assertBindable(bytes, `${id} at ${imageSize}px batch ${batch}: its largest tensor`);
    } catch (err) {
      if (err instanceof GpuError) throw err;
      fitError = err instanceof UserError
        ? `does not fit: ${err.message}`
        : `failed: ${(err instanceof Error ? err.message : String(err)).split("\n")[0].replaceAll("|", "/")}`;
    }
    for (const kernels of variants) {
      if (fitError) {
        results.push(errorRow(id, kernels, imageSize, batch, fitError));
        continue;
      }
      try {
        const r = await benchVariant(id, kernels, {
          imageSize,
          batch,
          steps,
          numClasses,
          profile: !values["no-profile"],
        });
        results.push(r);
        console.error(
          `${id} ${kernels}: ${fmt(r.msMedian)} ms/step (queued ${fmt(r.msQueued)}), ` +
            `${r.dispatchesPerStep} dispatches, pool ${fmt(r.poolMiB)} MiB, loss ${fmt(r.loss, 4)}`,
        );
      } catch (err) {
        // One broken model must not hide the other rows (a GPU error still ends the run).
        if (err instanceof UserError || err instanceof GpuError) throw err;
        const msg = (err instanceof Error ? err.message : String(err)).split("\n")[0].replaceAll("|", "/");
        console.error(`${id} ${kernels}: failed: ${msg}`);
        results.push(errorRow(id, kernels, imageSize, batch, `failed: ${msg}`));
      }
    }
    tf.disposeVariables();
    releaseFreeBuffers();
  }
  console.log(formatTable(results));
  const top = formatTopKernels(results);
  if (top) console.log(`\n${top}`);
}

if (import.meta.main) await runMain(main);
