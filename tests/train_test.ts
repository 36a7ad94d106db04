/**
 * Fast training tests: LR schedule vs the reference values table, Adam vs hand-computed PyTorch
 * steps, the smoothed CutMix loss vs a hand-computed value, checkpoint and safetensors
 * round-trips, concurrent ledger appends, the NaN stop, and bitwise-exact resume after a kill.
 * The loop tests use a tiny in-test model (conv + BN + dropout + linear) and synthetic batches.
 */
import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { runTask } from "./cli.ts";
import { tinyModel as tinyNet } from "./model_hooks.ts";
import { UserError } from "../runtime/errors.ts";
import { tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { Rng } from "../runtime/rng.ts";
import { ops } from "../models/core.ts";
import type { EvalBatch, TrainBatch } from "../data/types.ts";
import { lrAt, PER_EPOCH_MIN_EPOCHS, shortRunWarmupSteps, upCosLr } from "../train/schedule.ts";
import { applyAdam, createAdamState } from "../train/optimizer.ts";
import { cutmixSmoothedCrossEntropy } from "../train/loss.ts";
import { loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors, transpose } from "../train/safetensors.ts";
import { appendLedgerRow, LEDGER_COLUMNS, type LedgerRecord, readLedgerRecords } from "../train/ledger.ts";
import { NonFiniteLossError, runPaths, train, type TrainSource } from "../train/loop.ts";
import { DIVERGED_EXIT_CODE } from "../train/health.ts";

/** Thrown from the loop's onStep callback: stands in for SIGKILL mid-epoch. */
class SimulatedKill extends Error {}
import { applyOverrides, buildPreset, describePreset, presetLabel } from "../train/presets.ts";
import { largestActivation } from "../models/inspect.ts";
import { parseSweepArgs, pendingCells, slurmScript } from "../tasks/sweep.ts";

// ---------------------------------------------------------------- schedule

Deno.test("LR schedule at 100 epochs equals the reference values table (lr_max 1e-3)", () => {
  const s = { epochs: 100, stepsPerEpoch: 1563, lrMax: 1e-3, lrMin: 1e-5 };
  // Linear warm-up over 5 epochs, then cosine from lr_max to lr_min (epoch → value).
  const warmup = { 0: 2.0e-4, 1: 4.0e-4, 2: 6.0e-4, 3: 8.0e-4, 4: 1.0e-3 };
  const cosineHead = { 5: 9.99729e-4, 10: 9.90288e-4, 25: 8.85359e-4, 50: 5.29544e-4 };
  const cosineTail = { 75: 1.57888e-4, 90: 3.17623e-5, 98: 1.02706e-5 };
  const table = Object.entries({ ...warmup, ...cosineHead, ...cosineTail }).map(([e, v]) => [Number(e), v]);
  for (const [e, want] of table) {
    for (const step of [0, 700, 1562]) {
      assertAlmostEquals(lrAt(s, e, step), want, want * 1e-5, `epoch ${e} step ${step}`);
    }
  }
  assertEquals(lrAt(s, 99, 0), 1e-5, "ends exactly at lr_min");
  assertEquals(lrAt(s, 0, 0), 1e-3 / 5, "starts at lr_max/5");
});

Deno.test("LR schedule at 100 epochs equals the reference values table (lr_max 1e-4)", () => {
  const s = { epochs: 100, stepsPerEpoch: 10, lrMax: 1e-4, lrMin: 1e-5 };
  const table: [number, number][] = [[0, 2e-5], [4, 1e-4], [5, 9.99754e-5], [50, 5.72313e-5]];
  for (const [e, want] of table) assertAlmostEquals(lrAt(s, e, 3), want, want * 1e-5, `epoch ${e}`);
  assertEquals(lrAt(s, 99, 9), 1e-5);
});

Deno.test("short runs: per-step warm-up over 5% of the run, cosine to exactly lr_min", () => {
  const s = { epochs: 2, stepsPerEpoch: 125, lrMax: 1e-3, lrMin: 1e-5 };
  const w = shortRunWarmupSteps(250);
  assertEquals(w, 13);
  assertAlmostEquals(lrAt(s, 0, 0), 1e-3 / 13, 1e-15);
  assertAlmostEquals(lrAt(s, 0, 12), 1e-3, 1e-15);
  assertEquals(lrAt(s, 1, 124), 1e-5);
  const mid = lrAt(s, 1, 0); // step 125 of 250: past the warm-up, on the cosine
  assertAlmostEquals(mid, upCosLr(250, 125, 1e-5, 1e-3, 13), 0);
  assert(mid > 4e-4 && mid < 6e-4, `${mid}`);
  // The threshold run length switches to the literal per-epoch function.
  const t = { ...s, epochs: PER_EPOCH_MIN_EPOCHS };
  assertEquals(lrAt(t, 0, 100), 2e-4);
  assertEquals(lrAt(t, PER_EPOCH_MIN_EPOCHS - 1, 0), 1e-5);
});

// ---------------------------------------------------------------- Adam

/** Hand-written PyTorch Adam in float64 (the reference formula, step by step). */
function torchAdamRef(p: number[], gs: number[][], lrs: number[]): number[] {
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  const m = p.map(() => 0), v = p.map(() => 0), q = [...p];
  gs.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < q.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mhat = m[i] / (1 - b1 ** t), vhat = v[i] / (1 - b2 ** t);
      q[i] -= lrs[k] * mhat / (Math.sqrt(vhat) + eps);
    }
  });
  return q;
}

for (const impl of ["stock ops", "fused kernel"] as const) {
  Deno.test(`Adam (${impl}): three steps equal hand-computed PyTorch-semantics steps`, async () => {
    await initRuntime();
    const kernels = impl === "fused kernel" ? "custom" : "stock";
    const p0 = [0.5, -1.25, 2.0], w0 = [[0.1, -0.2], [0.3, 0.4]];
    const gp = [[0.1, -0.2, 3.0], [0.05, 0.0, -1.0], [-0.3, 1e-4, 0.5]];
    const gw = [[1, 2, 3, 4], [-4, 0.5, 0, 1], [2, 2, -2, 1e-6]];
    const lrs = [1e-3, 2e-3, 5e-4];
    const p = tf.variable(tf.tensor(p0)), w = tf.variable(tf.tensor(w0));
    const state = createAdamState([p, w]);
    try {
      for (let k = 0; k < 3; k++) {
        const g1 = tf.tensor(gp[k]), g2 = tf.tensor(gw[k], [2, 2]);
        applyAdam([p, w], [g1, g2], state, lrs[k], { kernels });
        tf.dispose([g1, g2]);
      }
      assertEquals(state.step, 3);
      const got = [...await p.data(), ...await w.data()];
      const want = [...torchAdamRef(p0, gp, lrs), ...torchAdamRef(w0.flat(), gw, lrs)];
      // Hand computation of the first element, step 1: m̂ = g, v̂ = g² → p − lr·g/(|g|+eps).
      assertAlmostEquals(torchAdamRef([0.5], [[0.1]], [1e-3])[0], 0.5 - 1e-3 * 0.1 / (0.1 + 1e-8), 1e-15);
      got.forEach((x, i) => assertAlmostEquals(x, want[i], 2e-7, `element ${i}: ${x} vs ${want[i]}`));
      // The first moment of element 0 by hand: 0.01 → 0.9·0.01 + 0.1·0.05 = 0.014 → 0.0126 − 0.03.
      assertAlmostEquals((await state.m.data())[0], -0.0174, 1e-8);
    } finally {
      tf.dispose([p, w, state.m, state.v]);
    }
  });
}

// ---------------------------------------------------------------- loss

Deno.test("CutMix smoothed CE equals the hand-computed λ·CE_ls(y_a) + (1−λ)·CE_ls(y_b)", async () => {
  await initRuntime();
  const logits = [[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]];
  const yA = [0, 2], yB = [1, 2], lam = 0.3, eps = 0.05, C = 3;
  const ceLs = (z: number[], y: number) => {
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    return z.reduce((s, v, c) => s - ((c === y ? 1 - eps : 0) + eps / C) * (v - lse), 0);
  };
  const want = logits.reduce((s, z, i) => s + lam * ceLs(z, yA[i]) + (1 - lam) * ceLs(z, yB[i]), 0) / 2;
  // By hand: q = 0.9667 on the label, 0.01667 elsewhere. Row 0: log-softmax (−0.24128, −1.74128,
  // −3.24128); CE_ls(y=0) = 0.31628, CE_ls(y=1) = 1.74128 → 0.3·0.31628 + 0.7·1.74128 = 1.31378.
  // Row 1: log-softmax (−3.16985, −2.16985, −0.16985); CE_ls(y=2) = 0.25318 for both labels.
  // Mean: (1.31378 + 0.25318) / 2 = 0.78348 (0.78350 unrounded).
  assertAlmostEquals(want, 0.7835, 5e-5);
  const loss = cutmixSmoothedCrossEntropy(
    tf.tensor(logits),
    tf.tensor(yA, [2], "int32"),
    tf.tensor(yB, [2], "int32"),
    lam,
  );
  assertAlmostEquals((await loss.data())[0], want, 1e-6);
});

// ---------------------------------------------------------------- files

Deno.test("safetensors round-trip and PyTorch layouts", () => {
  const t = new Map([
    ["a", { dtype: "F32" as const, shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ["n", { dtype: "I64" as const, shape: [], data: BigInt64Array.of(7n) }],
  ]);
  const bytes = encodeSafetensors(t, { k: "v" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + headerLen) % 8, 0);
  const back = decodeSafetensors(bytes);
  assertEquals(back.metadata, { k: "v" });
  assertEquals(Array.from(back.tensors.get("a")!.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  assertEquals(back.tensors.get("n")!.data[0], 7n);
  // linear [in=2, out=3] -> [out, in]
  assertEquals(Array.from(transpose(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], [1, 0]).data), [
    1,
    4,
    2,
    5,
    3,
    6,
  ]);
  // conv [kh=1, kw=2, cin=2, cout=3] -> [cout, cin, kh, kw]: element (0, kw, ci, co) = 100·kw + 10·ci + co
  const conv = new Float32Array(12);
  for (let kw = 0; kw < 2; kw++) {
    for (let ci = 0; ci < 2; ci++) {
      for (let co = 0; co < 3; co++) conv[kw * 6 + ci * 3 + co] = 100 * kw + 10 * ci + co;
    }
  }
  const tc = transpose(conv, [1, 2, 2, 3], [3, 2, 0, 1]);
  assertEquals(tc.shape, [3, 2, 1, 2]);
  // torch index [co=2, ci=1, 0, kw=1] = ((2·2 + 1)·1 + 0)·2 + 1 = 11
  assertEquals(tc.data[11], 112);
});

const ROW = (i: number): LedgerRecord =>
  Object.fromEntries(
    LEDGER_COLUMNS.map((c) => [c, c === "model" ? `m${i}` : c === "adapter" ? 'llvmpipe, "x"' : i]),
  ) as LedgerRecord;

Deno.test("ledger: two concurrent writers keep every row", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/results.csv`;
  const writer = async (base: number) => {
    for (let i = 0; i < 15; i++) await appendLedgerRow(path, ROW(base + i));
  };
  await Promise.all([writer(0), writer(100)]);
  // And one from another process, to exercise the file lock across processes.
  const code = `import { appendLedgerRow, LEDGER_COLUMNS } from "${new URL(
    "../train/ledger.ts",
    import.meta.url,
  )}";
    for (let i = 0; i < 5; i++) await appendLedgerRow(${
    JSON.stringify(path)
  }, Object.fromEntries(LEDGER_COLUMNS.map((c) => [c, 500 + i])));`;
  const child = new Deno.Command("deno", { args: ["eval", code], stdout: "null", stderr: "inherit" }).spawn();
  for (let i = 0; i < 5; i++) await appendLedgerRow(path, ROW(200 + i));
  assert((await child.status).success);
  const rows = await readLedgerRecords(path);
  assertEquals(rows.length, 40);
  assertEquals(new Set(rows.map((r) => r.seed)).size, 40);
  assertEquals(rows[0].adapter, 'llvmpipe, "x"');
  assertEquals((await Deno.readTextFile(path)).split("\n")[0], LEDGER_COLUMNS.join(","));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ledger: unlessPresent skips a row equal in every column, appends any other", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/results.csv`;
  assertEquals(await appendLedgerRow(path, ROW(1), { unlessPresent: true }), true);
  assertEquals(await appendLedgerRow(path, ROW(1), { unlessPresent: true }), false);
  assertEquals(
    await appendLedgerRow(path, { ...ROW(1), finished_at: "later" }, { unlessPresent: true }),
    true,
  );
  assertEquals(await appendLedgerRow(path, ROW(1)), true);
  assertEquals((await readLedgerRecords(path)).map((r) => r.finished_at), ["1", "later", "1"]);
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------- loop fixtures

const S = 8, C = 4, B = 8, N_TRAIN = 40, N_TEST = 20;

/** conv3x3 → BN → ReLU → depthwise 3x3 → global pool → dropout → linear; `poison` makes the logits NaN. */
const tinyModel = (seed: number, control: { poison?: boolean } = {}) =>
  tinyNet(seed, { classes: C, size: S, width: 6, depthwise: true, dropout: 0.2, ...control });

/** Synthetic class-dependent images; order, CutMix λ and pairing drawn from the source's Rng. */
function syntheticSource(seed: number): TrainSource {
  const data = new Rng(1234);
  const make = (n: number) => {
    const labels = Int32Array.from({ length: n }, () => data.int(0, C - 1));
    const x = Float32Array.from(
      { length: n * S * S * 3 },
      (_, i) => data.normal() * 0.5 + labels[Math.floor(i / (S * S * 3))] - 1.5,
    );
    return { labels, x };
  };
  const tr = make(N_TRAIN), te = make(N_TEST);
  let rng = new Rng(seed);
  const steps = Math.ceil(N_TRAIN / B);
  return {
    stepsPerEpoch: steps,
    trainImages: N_TRAIN,
    testImages: N_TEST,
    *trainBatches(): Iterable<TrainBatch> {
      const order = rng.permutation(N_TRAIN);
      for (let s = 0; s < steps; s++) {
        const idx = Array.from({ length: B }, (_, i) => order[Math.min(s * B + i, N_TRAIN - 1)]);
        const valid = Math.min(B, N_TRAIN - s * B);
        const perm = rng.permutation(B);
        const lambda = rng.uniform();
        const x = new Float32Array(B * S * S * 3);
        idx.forEach((j, i) => x.set(tr.x.subarray(j * S * S * 3, (j + 1) * S * S * 3), i * S * S * 3));
        const yA = Int32Array.from(idx, (j) => tr.labels[j]);
        yield {
          x: tf.tensor(x, [B, S, S, 3]),
          yA: tf.tensor(yA, [B], "int32"),
          yB: tf.tensor(Int32Array.from(perm, (p) => yA[p]), [B], "int32"),
          lambda,
          valid,
        };
      }
    },
    *evalBatches(): Iterable<EvalBatch> {
      for (let s = 0; s < N_TEST; s += B) {
        const valid = Math.min(B, N_TEST - s);
        const x = new Float32Array(B * S * S * 3);
        x.set(te.x.subarray(s * S * S * 3, (s + valid) * S * S * 3));
        const labels = new Int32Array(B);
        labels.set(te.labels.subarray(s, s + valid));
        yield { x: tf.tensor(x, [B, S, S, 3]), labels, valid };
      }
    },
    rngState: () => rng.state(),
    setRngState: (st) => {
      rng = Rng.fromState(st);
    },
  };
}

const SCHEDULE = { epochs: 3, stepsPerEpoch: Math.ceil(N_TRAIN / B), lrMax: 1e-2, lrMin: 1e-4 };

async function runTiny(
  dir: string,
  opts: { resume?: boolean; killAfterSteps?: number; poison?: boolean; kernels?: "custom" | "stock" } = {},
) {
  const model = tinyModel(7, { poison: opts.poison });
  const kernels = opts.kernels ?? "stock";
  try {
    const result = await train(model, syntheticSource(11), {
      schedule: SCHEDULE,
      dir,
      rng: new Rng(5),
      kernels,
      resume: opts.resume ?? false,
      fingerprint: { model: "tiny", seed: 5 },
      readEvery: 2,
      log: () => {},
      onStep: (n) => {
        if (opts.killAfterSteps !== undefined && n >= opts.killAfterSteps) throw new SimulatedKill("killed");
      },
    });
    const weights = await Promise.all(
      model.params.entries.map(async (e) => Array.from(await e.variable!.data())),
    );
    return { result, weights };
  } finally {
    model.params.dispose();
  }
}

Deno.test("checkpoint round-trip restores parameters, BN buffers, Adam state and metadata", async () => {
  await initRuntime();
  const dir = await Deno.makeTempDir();
  // Parameter names are global tfjs variable names, so the two models live one after the other.
  const a = tinyModel(1);
  const sa = createAdamState(a.params.trainableVariables());
  const grads = a.params.trainableVariables().map((v) => tf.onesLike(v));
  applyAdam(a.params.trainableVariables(), grads, sa, 0.1);
  a.params.entries.find((e) => e.name === "bn.running_mean")!.variable!.assign(tf.tensor([1, 2, 3, 4, 5, 6]));
  const meta = { epochsDone: 3, rngs: { model: [1, 2, 3, 4] }, run: { x: "y" } };
  await saveCheckpoint(`${dir}/c.safetensors`, a.params, sa, meta);
  const values = await Promise.all(a.params.entries.map(async (e) => Array.from(await e.variable!.data())));
  const v = Array.from(await sa.v.data());
  tf.dispose([...grads, sa.m, sa.v]);
  a.params.dispose();
  const b = tinyModel(2);
  const sb = createAdamState(b.params.trainableVariables());
  try {
    assert(Array.from(await b.params.entries[0].variable!.data())[0] !== values[0][0]);
    assertEquals(await loadCheckpoint(`${dir}/c.safetensors`, b.params, sb), meta);
    assertEquals(sb.step, 1);
    assertEquals(
      await Promise.all(b.params.entries.map(async (e) => Array.from(await e.variable!.data()))),
      values,
    );
    assertEquals(values[a.params.entries.findIndex((e) => e.name === "bn.running_mean")], [1, 2, 3, 4, 5, 6]);
    assertEquals(Array.from(await sb.v.data()), v);
  } finally {
    tf.dispose([sb.m, sb.v]);
    b.params.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const kernels of ["stock", "custom"] as const) {
  Deno.test(`resume after a kill during epoch 2 ends with bitwise the same weights (${kernels} kernels)`, async () => {
    await initRuntime();
    const full = await Deno.makeTempDir(), cut = await Deno.makeTempDir();
    const ref = await runTiny(full, { kernels });
    // Killed after 7 steps: epoch 1 (5 steps) is checkpointed, epoch 2 dies at step 2.
    await assertRejects(() => runTiny(cut, { killAfterSteps: 7, kernels }), SimulatedKill);
    const resumed = await runTiny(cut, { resume: true, kernels });
    assertEquals(resumed.weights, ref.weights);
    assertEquals(
      resumed.result.history.map((r) => r.test_accuracy),
      ref.result.history.map((r) => r.test_accuracy),
    );
    assertEquals(resumed.result.steps, 15);
    // The run learned something (the classes are separable).
    assert(ref.result.bestAccuracy > 40, `best accuracy ${ref.result.bestAccuracy}`);
    const w = decodeSafetensors(await Deno.readFile(runPaths(full).weights)).tensors;
    assertEquals(w.get("conv.weight")!.shape, [6, 3, 3, 3]);
    assertEquals(w.get("fc.weight")!.shape, [C, 6]);
    assertEquals(w.get("bn.num_batches_tracked")!.data[0], 15n);
    await Deno.remove(full, { recursive: true });
    await Deno.remove(cut, { recursive: true });
  });
}

Deno.test("NaN loss: clear error, non-finite weights never checkpointed, last good checkpoint kept", async () => {
  await initRuntime();
  const dir = await Deno.makeTempDir();
  await runTiny(dir, { killAfterSteps: 6 }).catch((e) => assert(e instanceof SimulatedKill));
  const before = await Deno.readFile(runPaths(dir).checkpoint);
  const err = await assertRejects(() => runTiny(dir, { resume: true, poison: true }), NonFiniteLossError);
  // One divergence path: a UserError with the exit code of train/health.ts.
  assert(err instanceof UserError && err.exitCode === DIVERGED_EXIT_CODE, `${err.name} ${err}`);
  assert(err.message.includes("NaN") && err.message.includes("epoch 2"), err.message);
  assert(err.message.includes("checkpoint"), err.message);
  assertEquals(await Deno.readFile(runPaths(dir).checkpoint), before);
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------- presets, sweep, binding check

Deno.test("presets: paper is uniform; reference carries the per-run exceptions; flags override single fields", () => {
  const paper = buildPreset("paper", "mobilenet", "imagenette160");
  assertEquals([paper.imageSize, paper.batchSize, paper.epochs, paper.lrMax, paper.lrMin], [
    224,
    32,
    100,
    1e-3,
    1e-5,
  ]);
  assertEquals(buildPreset("paper", "mobilevit", "ham10000").lrMax, 1e-4);
  const ref = (m: string, d: string) => buildPreset("reference", m, d);
  assertEquals(ref("mobilenet", "imagenette160").imageSize, 160);
  assertEquals(ref("shufflenet", "cifar10").batchSize, 64);
  assertEquals(ref("mobilenet", "cifar10").batchSize, 32);
  assertEquals(ref("mobilevit", "ham10000").lrMax, 1e-3);
  assertEquals(ref("mobilevit", "cifar100").lrMax, 1e-4);
  assertEquals(ref("tinynet", "stanford-dogs").lrMax, 1e-4);
  assertEquals(ref("convmixer", "cifar10").modelOptions, { patchSize: 14 });
  assertEquals(ref("efficientnet", "cifar100").modelOptions, { variant: "tv-b0" });
  assertEquals(ref("mobilenet", "ham10000").data.train.map((t) => t.op), ["resize", "hflip"]);
  const o = applyOverrides(paper, { epochs: 2, imageSize: 32, batchSize: 32 });
  assertEquals([o.epochs, o.imageSize, o.batchSize, o.overrides], [2, 32, 32, ["epochs", "imageSize"]]);
  assertEquals(presetLabel(o), "paper;epochs=2;imageSize=32");
  assert(describePreset(o).includes("overridden by flags: epochs, imageSize"));
});

Deno.test("largest activation from meta shapes: MobileNetV2 at 224 px, batch 32 exceeds llvmpipe's 128 MiB binding", async () => {
  await initRuntime();
  const one = largestActivation("mobilenet", { numClasses: 10, imageSize: 224 }, 1);
  // features.1's 3x3 depthwise over [112,112,32] and features.2's expanded [112,112,96], padded by 1.
  assertEquals(one.elements, 114 * 114 * 96);
  assert(one.elements * 4 * 32 > 128 * 2 ** 20);
  assert(one.elements * 4 * 16 < 128 * 2 ** 20);
  assertEquals(ops.conv2d.name, "conv2d", "ops restored after the meta run");
});

Deno.test("sweep: matrix from flags, skips cells already in the ledger, emits a Slurm array", async () => {
  const out = await Deno.makeTempDir();
  const s = parseSweepArgs([
    "--models",
    "mobilenet,shufflenet",
    "--datasets=fashion-mnist",
    "--seeds",
    "1,2",
    "--epochs",
    "2",
    "--out",
    out,
  ])!;
  assertEquals(s.cells.length, 4);
  assertEquals(s.pass, ["--epochs", "2", "--out", out]);
  const done = Object.fromEntries(LEDGER_COLUMNS.map((c) => [c, 0])) as LedgerRecord;
  await appendLedgerRow(`${out}/results.csv`, {
    ...done,
    model: "shufflenet",
    dataset: "fashion-mnist",
    seed: 2,
    preset: "paper;epochs=2",
  });
  await appendLedgerRow(`${out}/results.csv`, {
    ...done,
    model: "mobilenet",
    dataset: "fashion-mnist",
    seed: 1,
    preset: "paper",
  });
  const todo = await pendingCells(s);
  assertEquals(todo.map((c) => `${c.model}/${c.seed}`), ["mobilenet/1", "mobilenet/2", "shufflenet/1"]);
  const script = slurmScript(todo, s, "/repo");
  assert(script.includes("#SBATCH --array=0-2"), script);
  assert(
    script.includes("tasks/train.ts --model shufflenet --dataset fashion-mnist --seed 1 --resume --epochs 2"),
    script,
  );
  assertThrows(() => parseSweepArgs(["--models", "a", "--datasets", "b", "--seed", "3"]), UserError);
  await Deno.remove(out, { recursive: true });
});

Deno.test("train flags: parsed by the CLI convention; bad values are one line naming the flag", async () => {
  const { parseTrainArgs } = await import("../train/run.ts");
  const { cellArgs } = await import("../train/sweep.ts");
  const { HelpRequested, UsageError } = await import("../runtime/errors.ts");
  const parse = (...args: string[]) => parseTrainArgs(["--model", "mobilenet", ...args]);
  const a = parse();
  assertEquals([a.dataset, a.preset, a.seed, a.kernels, a.step, a.out, a.resume, a.logEvery], [
    "fashion-mnist",
    "paper",
    1,
    "custom",
    "recorded",
    "runs",
    false,
    25,
  ]);
  const b = parse("--seed=0", "--epochs", "7", "--lr-max", "2e-4", "--step", "eager", "--resume");
  assertEquals([b.seed, b.overrides.epochs, b.overrides.lrMax, b.step, b.resume], [
    0,
    7,
    2e-4,
    "eager",
    true,
  ]);
  const bad: [string[], string][] = [
    [["--lr-max", "Infinity"], "--lr-max"],
    [["--lr-max", "0"], "--lr-max"],
    [["--seed="], "--seed"],
    [["--seed", "-1"], "--seed"],
    [["--epochs", "1e2"], "--epochs"],
    [["--epochs", "0"], "--epochs"],
    [["--batch-size", "2.5"], "--batch-size"],
    [["--log-every", ""], "--log-every"],
    [["--kernels", "fast"], "--kernels"],
    [["--step", "replay"], "--step"],
  ];
  for (const [args, flag] of bad) {
    const err = assertThrows(() => parse(...args), UserError);
    assert(err.message.startsWith(`${flag} `) && !err.message.includes("\n"), `${args}: ${err.message}`);
    assertEquals(err.exitCode, 2);
  }
  assertEquals(assertThrows(() => parse("--epochs", "0")).message, "--epochs 0: expected an integer >= 1");
  assertEquals(assertThrows(() => parse("--seed=")).message, '--seed "": expected an integer >= 0');
  assert(assertThrows(() => parse("--frobnicate"), UsageError).message.includes("--frobnicate"));
  assertThrows(() => parseTrainArgs(["--epochs", "2"]), UsageError);
  assertThrows(() => parse("--help"), HelpRequested);
  // The sweep names a bad pass-through flag as its own.
  const cell = { model: "mobilenet", dataset: "fashion-mnist", seed: 1 };
  const err = assertThrows(() => cellArgs(cell, ["--frobnicate"]), UserError);
  assert(!(err instanceof UsageError), err.name);
  assertEquals(err.message, "unknown flag --frobnicate (a train flag of the sweep)");
  assertEquals(cellArgs(cell, ["--epochs", "2"]).overrides.epochs, 2);
});

Deno.test("train CLI: bad input is one line and exit 2", async () => {
  const run = (...args: string[]) => runTask("train", ...args);
  const bad = [
    [["--model", "nope"], "unknown model"],
    [["--model", "mobilenet", "--dataset", "nope"], "unknown dataset"],
    [["--model", "mobilenet", "--preset", "nope"], "unknown preset"],
    [["--model", "mobilenet", "--epochs", "0"], "--epochs 0"],
  ] as const;
  for (const [args, what] of bad) {
    const r = await run(...args);
    assertEquals(r.code, 2, r.err);
    assert(r.err.startsWith("error: ") && r.err.includes(what) && !r.err.includes("\n"), r.err);
  }
});
