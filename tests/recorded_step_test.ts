/**
 * The recorded training step (train/step.ts, runtime/gpu.ts): N eager steps and 1 eager warm-up +
 * 1 recorded + N−2 replayed steps from the same state end with bitwise-identical weights, Adam
 * moments, BatchNorm running statistics and metric sums; a replayed step makes no bind group and
 * no buffer, writes at most two buffers, and runs one pass and one submit. MobileNetV2 in the
 * default suite (it has dropout, so the counter-based RNG is covered); the other ten models with
 * `XS_SLOW=1`.
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { tf, type WebGPUBackend } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { gpuBufferOf, gpuCallCounts, installGpuHooks, recordCommands } from "../runtime/gpu.ts";
import { fusedAdamStep } from "../kernels/adam.ts";
import { Rng } from "../runtime/rng.ts";
import "../models/zoo.ts";
import { buildModel, MODELS } from "../models/registry.ts";
import type { Model } from "../models/core.ts";
import { createAdamState, disposeAdamState } from "../train/optimizer.ts";
import { EvalForward, type StepMode, TrainStep } from "../train/step.ts";
import type { TrainBatch } from "../data/types.ts";
import { maskHash } from "../kernels/random.ts";

const SLOW = Deno.env.get("XS_SLOW") === "1";

interface BatchData {
  x: Float32Array;
  yA: Int32Array;
  yB: Int32Array;
  lambda: number;
}

function makeBatches(n: number, b: number, size: number, classes: number, seed: number): BatchData[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => ({
    x: Float32Array.from({ length: b * size * size * 3 }, () => rng.normal()),
    yA: Int32Array.from({ length: b }, () => Math.floor(rng.uniform() * classes)),
    yB: Int32Array.from({ length: b }, () => Math.floor(rng.uniform() * classes)),
    lambda: 0.3 + 0.4 * rng.uniform(),
  }));
}

function toBatch(d: BatchData, size: number): TrainBatch {
  const b = d.yA.length;
  return {
    x: tf.tensor4d(d.x, [b, size, size, 3]),
    yA: tf.tensor1d(d.yA, "int32"),
    yB: tf.tensor1d(d.yB, "int32"),
    lambda: d.lambda,
    valid: b,
  };
}

interface Snapshot {
  tensors: Map<string, Float32Array>;
  lossSum: number;
  correct: number;
  step: number;
}

/** Runs `batches` through a fresh model + optimizer with the given step mode; returns every state value. */
async function trainFrom(
  id: string,
  size: number,
  classes: number,
  batches: BatchData[],
  mode: StepMode,
  paths: string[],
): Promise<Snapshot> {
  const model: Model = buildModel(id, { numClasses: classes, imageSize: size, seed: 3 });
  const vars = model.params.trainableVariables();
  const adam = createAdamState(vars);
  const ctx = { training: true, rng: new Rng(5), kernels: "custom" as const };
  const step = new TrainStep(model, adam, ctx, { kernels: "custom", labelSmoothing: 0.05, mode });
  try {
    for (let i = 0; i < batches.length; i++) {
      step.run(toBatch(batches[i], size), 1e-3 * (1 + i / 10), { seed: 0x9e3779b9, counter: i });
      paths.push(step.path);
      // Read the metrics and a weight mid-run, as the trainer's progress lines and checkpoints do:
      // tfjs caches what it read, and later replays must not be hidden behind that cache.
      if (i === 2) {
        await step.readMetrics();
        await vars[0].data();
        await adam.m.data();
      }
    }
    const m = await step.readMetrics();
    const tensors = new Map<string, Float32Array>();
    for (const e of model.params.entries) {
      if (e.variable) tensors.set(e.name, new Float32Array(await e.variable.data()));
    }
    tensors.set("adam.m", new Float32Array(await adam.m.data()));
    tensors.set("adam.v", new Float32Array(await adam.v.data()));
    return { tensors, ...m, step: adam.step };
  } finally {
    step.dispose();
    disposeAdamState(adam);
    model.params.dispose();
  }
}

function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

async function assertRecordedEqualsEager(id: string, size: number, batchSize: number, steps: number) {
  await initRuntime();
  const batches = makeBatches(steps, batchSize, size, 10, 11);
  const eagerPaths: string[] = [], recordedPaths: string[] = [];
  const eager = await trainFrom(id, size, 10, batches, "eager", eagerPaths);
  const recorded = await trainFrom(id, size, 10, batches, "recorded", recordedPaths);
  assertEquals(eagerPaths, Array(steps).fill("eager"));
  assertEquals(recordedPaths, ["eager", "recorded", ...Array(steps - 2).fill("replayed")]);
  assertEquals(recorded.step, steps, "Adam step count");
  assertEquals(recorded.tensors.size, eager.tensors.size);
  let compared = 0;
  for (const [name, e] of eager.tensors) {
    const r = recorded.tensors.get(name)!;
    const at = firstBitDifference(e, r);
    assert(at < 0, `${id}: ${name} differs at ${at}: eager ${e[at]} vs recorded ${r[at]}`);
    compared += e.length;
  }
  assert(compared > 1000, "compared the whole state");
  assert(Number.isFinite(eager.lossSum) && eager.lossSum > 0, `loss sum ${eager.lossSum}`);
  assertEquals(recorded.lossSum, eager.lossSum, "loss sum");
  assertEquals(recorded.correct, eager.correct, "correct count");
  // Weights really moved over the steps (a replay that did nothing would leave them at step 2's values).
  const firstOnly = await trainFrom(id, size, 10, batches.slice(0, 2), "eager", []);
  let moved = 0;
  for (const [name, e] of eager.tensors) {
    if (firstBitDifference(e, firstOnly.tensors.get(name)!) >= 0) moved++;
  }
  assert(moved > eager.tensors.size / 2, `${id}: only ${moved} tensors changed after step 2`);
}

Deno.test("recorded step: MobileNetV2 eager and replayed steps give bit-identical state", async () => {
  await assertRecordedEqualsEager("mobilenet", 16, 2, 5);
});

Deno.test("recorded step: a replay makes no bind group or buffer, ≤ 2 writes, 1 pass, 1 submit", async () => {
  await initRuntime();
  const size = 8;
  const model = buildModel("mobilenet", { numClasses: 10, imageSize: size, seed: 1 });
  const adam = createAdamState(model.params.trainableVariables());
  const ctx = { training: true, rng: new Rng(1), kernels: "custom" as const };
  const step = new TrainStep(model, adam, ctx, { kernels: "custom", labelSmoothing: 0.05 });
  const backend = tf.backend() as tf.webgpu.WebGPUBackend;
  installGpuHooks(backend);
  const batches = makeBatches(4, 1, size, 10, 2);
  try {
    for (let i = 0; i < batches.length; i++) {
      const batch = toBatch(batches[i], size);
      // The batch is on the GPU before the step, as the augmentation leaves it.
      for (const t of [batch.x, batch.yA, batch.yB]) gpuBufferOf(backend, t);
      await tf.ready();
      const before = gpuCallCounts();
      step.run(batch, 1e-3, { seed: 1, counter: i });
      const after = gpuCallCounts();
      if (i < 3) continue;
      assertEquals(step.path, "replayed");
      const d = (k: keyof typeof before) => after[k] - before[k];
      assertEquals(d("createBindGroup"), 0, "createBindGroup");
      assertEquals(d("createBuffer"), 0, "createBuffer");
      assert(d("writeBuffer") <= 2, `writeBuffer ${d("writeBuffer")}`);
      assertEquals(d("passes"), 1, "passes");
      assert(d("submits") <= 2 && d("submits") >= 1, `submits ${d("submits")}`);
      assertEquals(d("dispatches"), step.plan!.dispatches, "dispatches = the plan's");
    }
  } finally {
    step.dispose();
    disposeAdamState(adam);
    model.params.dispose();
  }
});

Deno.test("recorded eval forward: replayed logits equal eager logits bit for bit", async () => {
  await initRuntime();
  const size = 16;
  const model = buildModel("mobilenet", { numClasses: 10, imageSize: size, seed: 4 });
  // Non-trivial running statistics, so eval-mode BN does something.
  for (const e of model.params.entries) {
    if (e.name.endsWith("running_var")) e.variable!.assign(tf.fill(e.variable!.shape, 1.7));
    if (e.name.endsWith("running_mean")) e.variable!.assign(tf.fill(e.variable!.shape, 0.1));
  }
  const eager = new EvalForward(model, "custom", "eager"), recorded = new EvalForward(model, "custom");
  const rng = new Rng(9);
  const paths: string[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const x = tf.tensor4d(Float32Array.from({ length: 2 * size * size * 3 }, () => rng.normal()), [
        2,
        size,
        size,
        3,
      ]);
      const a = eager.run(x), b = recorded.run(x);
      paths.push(recorded.path);
      const va = new Float32Array(await a.data()), vb = new Float32Array(await b.data());
      assertEquals(firstBitDifference(va, vb), -1, `batch ${i}: ${va} vs ${vb}`);
      assert(va.some((v) => v !== 0), "logits are not all zero");
      tf.dispose([a, b, x]);
    }
    assertEquals(paths, ["eager", "recorded", "replayed", "replayed"]);
  } finally {
    eager.dispose();
    recorded.dispose();
    model.params.dispose();
  }
});

Deno.test("random mask: the WGSL hash equals the CPU hash, and keeps ≈ keep of the elements", async () => {
  await initRuntime();
  const { randomMask } = await import("../kernels/mod.ts");
  const block = new Float32Array(8);
  const bits = new Uint32Array(block.buffer);
  bits[3] = 0xdeadbeef;
  bits[4] = 7;
  const scalars = tf.tensor1d(block);
  const n = 4096, keep = 0.8, site = 3;
  const gpu = randomMask(scalars, [n], keep, site);
  const got = await gpu.data();
  tf.dispose([gpu, scalars]);
  let kept = 0;
  const scale = Math.fround(1 / Math.fround(keep));
  for (let i = 0; i < n; i++) {
    const want = ((maskHash(0xdeadbeef, 7, site, i) >>> 8) / 16777216) < Math.fround(keep) ? scale : 0;
    assertEquals(got[i], want, `element ${i}`);
    if (got[i] !== 0) kept++;
  }
  // Binomial(4096, 0.8): sd ≈ 25.6, so ±5 sd is [3149, 3405].
  assert(Math.abs(kept - n * keep) < 5 * Math.sqrt(n * keep * (1 - keep)), `kept ${kept} of ${n}`);
});

Deno.test("recording: fused Adam without the step-scalar block refuses to be recorded (its lr would be frozen)", async () => {
  await initRuntime();
  const backend = tf.backend() as WebGPUBackend;
  const p = tf.variable(tf.tensor1d([1, 2, 3, 4])),
    m = tf.variable(tf.zeros([4])),
    v = tf.variable(tf.zeros([4]));
  const g = tf.tensor1d([0.5, -0.5, 1, -1]);
  try {
    const err = assertThrows(() => recordCommands(backend, () => fusedAdamStep([p], [g], m, v, 1, 1e-3)));
    assert(err.message.includes("step-scalar block"), err.message);
    // Outside a recording the same call runs (a block is made for it) and moves the weights.
    fusedAdamStep([p], [g], m, v, 1, 1e-3);
    const after = await p.data();
    assert(after[0] < 1 && after[1] > 2, `weights ${after}`);
  } finally {
    tf.dispose([p, m, v, g]);
  }
});

// Opt-in (registered only with XS_SLOW=1, so a default run has nothing ignored).
for (const id of SLOW ? Object.keys(MODELS).sort() : []) {
  if (id === "mobilenet") continue;
  Deno.test(`recorded step: ${id} eager and replayed steps give bit-identical state (XS_SLOW)`, async () => {
    await assertRecordedEqualsEager(id, 32, 2, 4);
  });
}
