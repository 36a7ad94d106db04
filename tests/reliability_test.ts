/**
 * Reliability (RELIABILITY.md): faults and bad inputs end in one line and a documented
 * exit code, never in a wrong result with exit 0. Divergence that leaves the loss finite is caught
 * before any checkpoint is written; corrupt or non-finite checkpoints are refused on resume; the CLI
 * convention (runtime/cli.ts) holds for every task; caches know their source; runs know their
 * configuration; writes are durable.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { runTask } from "./cli.ts";
import { tinyModel as tinyNet } from "./model_hooks.ts";
import { tf } from "../runtime/tf.ts";
import { initRuntime } from "../runtime/webgpu.ts";
import { UserError } from "../runtime/errors.ts";
import { Rng } from "../runtime/rng.ts";
import type { EvalBatch, TrainBatch } from "../data/types.ts";
import { runPaths, train, type TrainSource } from "../train/loop.ts";
import { loadCheckpoint, saveCheckpoint } from "../train/checkpoint.ts";
import { createAdamState, disposeAdamState } from "../train/optimizer.ts";
import { firstNonFiniteTensor } from "../train/health.ts";
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";

// ---------------------------------------------------------------- tiny training fixture

const S = 6, C = 3, B = 4, N_TRAIN = 12, N_TEST = 8;

/** conv3x3 → BN → ReLU → global pool → linear. */
const tinyModel = (seed: number) => tinyNet(seed, { classes: C, size: S, width: 4 });

/**
 * Synthetic batches; with `blowUpEpoch`, the last batch of that epoch holds ±1e20 pixels: BN's batch
 * variance overflows to Inf, the normalised activations (x / sqrt(Inf) = 0) and so the loss stay
 * finite, but the running variance (and then the weights) become non-finite.
 */
function source(blowUpEpoch?: number): TrainSource {
  const data = new Rng(99);
  const steps = N_TRAIN / B;
  const img = () => Float32Array.from({ length: B * S * S * 3 }, () => data.normal());
  const train = Array.from({ length: steps }, img), test = Array.from({ length: N_TEST / B }, img);
  const labels = Int32Array.from({ length: B }, (_, i) => i % C);
  return {
    stepsPerEpoch: steps,
    trainImages: N_TRAIN,
    testImages: N_TEST,
    *trainBatches(epoch: number): Iterable<TrainBatch> {
      for (let s = 0; s < steps; s++) {
        let x = train[s];
        if (epoch === blowUpEpoch && s === steps - 1) x = x.map((_, i) => (i % 2 ? 1e20 : -1e20));
        yield {
          x: tf.tensor(x, [B, S, S, 3]),
          yA: tf.tensor(labels, [B], "int32"),
          yB: tf.tensor(labels, [B], "int32"),
          lambda: 1,
          valid: B,
        };
      }
    },
    *evalBatches(): Iterable<EvalBatch> {
      for (const x of test) yield { x: tf.tensor(x, [B, S, S, 3]), labels, valid: B };
    },
    rngState: () => [1, 2, 3, 4],
    setRngState: () => {},
  };
}

async function runTiny(dir: string, o: { epochs: number; blowUpEpoch?: number; resume?: boolean }) {
  const model = tinyModel(3);
  try {
    return await train(model, source(o.blowUpEpoch), {
      schedule: { epochs: o.epochs, stepsPerEpoch: N_TRAIN / B, lrMax: 1e-3, lrMin: 1e-4 },
      dir,
      rng: new Rng(5),
      kernels: "stock",
      resume: o.resume ?? false,
      fingerprint: { model: "tiny" },
      readEvery: 100,
      log: () => {},
    });
  } finally {
    model.params.dispose();
  }
}

// ---------------------------------------------------------------- item 2: divergence

Deno.test("divergence with a finite loss: exit 3 naming the tensor, last good checkpoint and weights kept", async () => {
  await initRuntime();
  const dir = await Deno.makeTempDir();
  try {
    await runTiny(dir, { epochs: 1 });
    const good = await Deno.readFile(runPaths(dir).checkpoint);
    const weights = await Deno.readFile(runPaths(dir).weights);
    const err = await assertRejects(
      () => runTiny(dir, { epochs: 3, blowUpEpoch: 1, resume: true }),
      UserError,
    );
    assertEquals(err.exitCode, 3, err.message);
    assert(/^training diverged: \S+ holds \d+ NaN\/Inf value/.test(err.message), err.message);
    assert(err.message.includes("after epoch 2") && err.message.includes("end of epoch 1"), err.message);
    // Nothing written after the bad epoch: same checkpoint and weights, epochs.csv still one row.
    assertEquals(await Deno.readFile(runPaths(dir).checkpoint), good);
    assertEquals(await Deno.readFile(runPaths(dir).weights), weights);
    assertEquals((await Deno.readTextFile(runPaths(dir).epochs)).trim().split("\n").length, 2);
    // Nor does the diverged epoch reach metrics.jsonl (or TensorBoard): epoch 1's record only.
    const epochs = (await Deno.readTextFile(runPaths(dir).metrics)).trim().split("\n").map((l) =>
      JSON.parse(l)
    )
      .filter((r) => r.kind === "epoch").map((r) => r.epoch);
    assertEquals(epochs, [1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("firstNonFiniteTensor: names the first NaN/Inf tensor with its count (GPU and CPU)", async () => {
  for (const backend of ["webgpu", "cpu"] as const) {
    await initRuntime({ backend });
    const ts = [
      { name: "a", tensor: tf.tensor([1, 2, 3e38]) },
      { name: "b", tensor: tf.tensor([0, -Infinity, NaN, 1]) },
      { name: "c", tensor: tf.tensor([NaN]) },
    ];
    try {
      assertEquals(await firstNonFiniteTensor(ts), { name: "b", count: 2 }, backend);
      assertEquals(await firstNonFiniteTensor(ts.slice(0, 1)), undefined, backend);
    } finally {
      tf.dispose(ts.map((t) => t.tensor));
    }
  }
  await initRuntime();
});

Deno.test("resume refuses a checkpoint holding NaN (naming the tensor) and a truncated or tampered one", async () => {
  await initRuntime({ backend: "cpu" });
  const dir = await Deno.makeTempDir();
  const model = tinyModel(1);
  const adam = createAdamState(model.params.trainableVariables());
  try {
    const path = `${dir}/c.safetensors`;
    await saveCheckpoint(path, model.params, adam, { epochsDone: 1, rngs: {}, run: {} });
    const bytes = await Deno.readFile(path);
    assertEquals((await loadCheckpoint(path, model.params, adam)).epochsDone, 1);
    // NaN in a BN running statistic.
    const { tensors, metadata } = decodeSafetensors(bytes);
    (tensors.get("param/bn.running_var")!.data as Float32Array)[2] = NaN;
    await Deno.writeFile(path, encodeSafetensors(tensors, metadata));
    let err = await assertRejects(() => loadCheckpoint(path, model.params, adam), UserError);
    assert(err.message.startsWith(`${path}: param/bn.running_var holds NaN (element 2)`), err.message);
    // Truncated.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 9));
    err = await assertRejects(() => loadCheckpoint(path, model.params, adam), UserError);
    assert(err.message.startsWith(`${path}: corrupt checkpoint`), err.message);
    // Junk header.
    await Deno.writeFile(path, new TextEncoder().encode("\x10\0\0\0\0\0\0\0{not json at all"));
    err = await assertRejects(() => loadCheckpoint(path, model.params, adam), UserError);
    assert(err.message.startsWith(`${path}: corrupt checkpoint`), err.message);
  } finally {
    disposeAdamState(adam);
    model.params.dispose();
    await Deno.remove(dir, { recursive: true });
    await initRuntime();
  }
});

Deno.test("safetensors: a header entry without a shape, or data not matching its shape, is one line naming the file (checkpoint, --init-from, eval)", async () => {
  /** A safetensors file with this header (JSON) and data, as a tampered or foreign writer leaves it. */
  const raw = (header: Record<string, unknown>, data: number) => {
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + data);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  const cases = [
    { bytes: raw({ w: { dtype: "F32", data_offsets: [0, 8] } }, 8), why: "w has no valid shape" },
    {
      bytes: raw({ w: { dtype: "F32", shape: null, data_offsets: [0, 8] } }, 8),
      why: "w has no valid shape",
    },
    {
      bytes: raw({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, 8),
      why: "w has no valid shape",
    },
    {
      bytes: raw({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8),
      why: "w holds 8 bytes for shape [3]",
    },
    {
      bytes: raw({ w: { dtype: "F32", shape: [1], data_offsets: [0, 8] } }, 8),
      why: "w holds 8 bytes for shape [1]",
    },
    { bytes: raw({ w: { dtype: "F32", shape: [2] } }, 8), why: "w has no valid data_offsets" },
    {
      bytes: raw({ w: { dtype: "toString", shape: [2], data_offsets: [0, 8] } }, 8),
      why: "w has unsupported dtype",
    },
    { bytes: raw({ w: 7 }, 8), why: "w has no tensor description" },
  ];
  await initRuntime({ backend: "cpu" });
  const { readInitWeights } = await import("../train/weights.ts");
  const dir = await Deno.makeTempDir();
  const model = tinyModel(1);
  const adam = createAdamState(model.params.trainableVariables());
  try {
    for (const { bytes, why } of cases) {
      const e = assertThrows(() => decodeSafetensors(bytes));
      assert(e.message.startsWith(`safetensors: ${why}`), e.message);
      const path = `${dir}/bad.safetensors`;
      await Deno.writeFile(path, bytes);
      let err = await assertRejects(() => loadCheckpoint(path, model.params, adam), UserError);
      assert(err.message.startsWith(`${path}: corrupt checkpoint (${why}`), err.message);
      assertEquals(err.exitCode, 2);
      err = await assertRejects(
        () => readInitWeights(path, "tinynet", { numClasses: 10, imageSize: 32 }),
        UserError,
      );
      assert(err.message.startsWith(`${path}: not a valid safetensors file (${why}`), err.message);
      assertEquals(err.exitCode, 2);
      assert(!err.message.includes("\n"), err.message);
    }
    // The eval task: one line naming the file, exit 2, no stack trace.
    const path = `${dir}/noshape.safetensors`;
    await Deno.writeFile(path, cases[0].bytes);
    const r = await runTask("eval", "--weights", path, "--model", "tinynet", "--dataset", "fashion-mnist");
    assertOneLine(r, 2, `${path}: not a valid safetensors file (w has no valid shape`);
  } finally {
    disposeAdamState(adam);
    model.params.dispose();
    await Deno.remove(dir, { recursive: true });
    await initRuntime();
  }
});

// ---------------------------------------------------------------- item 4: one CLI convention

/** stderr is `error: <one line>` (then, for usage errors, the usage) and holds no stack frame. */
function assertOneLine(r: { code: number; err: string }, code: number, ...needles: string[]) {
  const first = r.err.split("\n")[0];
  assertEquals(r.code, code, r.err);
  assert(first.startsWith("error: "), r.err);
  for (const n of needles) assert(first.includes(n), `"${n}" not in: ${first}`);
  assert(!/\n\s+at .*:\d+:\d+/.test(r.err) && !r.err.includes("Uncaught"), `stack trace:\n${r.err}`);
}

/** Every task that runs a script of tasks/ (vendor builds the bundle and takes no flags). */
const TASKS = Object.entries(
  JSON.parse(Deno.readTextFileSync("deno.json")).tasks as Record<string, { command: string }>,
).filter(([name, t]) => name !== "vendor" && /^deno run .* tasks\/\w+\.ts$/.test(t.command)).map(([name]) =>
  name
);

Deno.test("CLI: the task list is read from deno.json", () => {
  for (
    const t of [
      "doctor",
      "score",
      "models",
      "prepare",
      "train",
      "sweep",
      "bench:kernels",
      "bench:step",
      "bench:data",
    ]
  ) {
    assert(TASKS.includes(t), `${t} not in ${TASKS}`);
  }
});

Deno.test("CLI: every task answers --help with its usage (exit 0) and an unknown flag with one line (exit 2)", async () => {
  for (const task of TASKS) {
    const help = await runTask(task, "--help");
    assertEquals(help.code, 0, `${task} --help: ${help.err}`);
    assert(/usage|deno task/i.test(help.out), `${task} --help printed no usage: ${help.out}`);
    // The sweep checks its required flags first.
    const required = task === "sweep" ? ["--models", "mobilenet", "--datasets", "cifar10"] : [];
    const bad = await runTask(task, ...required, "--frobnicate");
    assertOneLine(bad, 2, "--frobnicate");
  }
});

Deno.test("CLI: bad values are one line naming the flag (exit 2)", async () => {
  assertOneLine(await runTask("prepare", "--dataset", "fashion-mnist", "--size", "abc"), 2, "--size");
  assertOneLine(await runTask("prepare", "--dataset", "fashion-mnist", "--fit", "crop"), 2, "--fit");
  assertOneLine(await runTask("prepare", "--dataset"), 2, "--dataset");
  assertOneLine(await runTask("bench:data", "--reps", "0"), 2, "--reps");
  assertOneLine(await runTask("bench:kernels", "--only", "xx"), 2, "--only");
  assertOneLine(await runTask("models", "--classes", "-3"), 2, "--classes");
  assertOneLine(await runTask("train", "--model", "mobilenet", "--epochs", "0"), 2, "--epochs");
});

Deno.test("bounded reads: a device file and a gzip bomb are refused in one line, truncated or junk gzip too", async () => {
  const { readFileBounded, gunzipBounded } = await import("../runtime/cli.ts");
  let err = await assertRejects(() => readFileBounded("/dev/zero", 1 << 20), UserError);
  assert(err.message.startsWith("/dev/zero: not a regular file"), err.message);
  const zeros = new Uint8Array(8 << 20);
  const gz = new Uint8Array(
    await new Response(new Blob([zeros]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  assert(gz.length < 64 << 10, `${gz.length}`);
  err = await assertRejects(() => gunzipBounded(gz, 1 << 20, "bomb.gz"), UserError);
  assert(err.message.startsWith("bomb.gz: decompresses to more than 1048576 bytes"), err.message);
  assertEquals((await gunzipBounded(gz, 8 << 20, "ok.gz")).length, 8 << 20);
  err = await assertRejects(
    () => gunzipBounded(gz.subarray(0, gz.length - 20), 8 << 20, "cut.gz"),
    UserError,
  );
  assert(err.message.startsWith("cut.gz: not a valid gzip file"), err.message);
  const junk = Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
  err = await assertRejects(() => gunzipBounded(junk, 8 << 20, "junk.gz"), UserError);
  assert(err.message.startsWith("junk.gz: not a valid gzip file"), err.message);
});

Deno.test("prepare: a truncated .gz is one line naming the file (exit 2) and leaves no cache", async () => {
  const root = await Deno.makeTempDir({ prefix: "xs-r12-fm-" });
  const name = `r12gz${Date.now()}`;
  try {
    const { writeFashionMnist } = await import("./fixtures.ts");
    await writeFashionMnist(root);
    const f = `${root}/train-labels-idx1-ubyte.gz`;
    const bytes = await Deno.readFile(f);
    await Deno.writeFile(f, bytes.subarray(0, bytes.length - 6));
    // fashion-mnist's own cache is shared: a named cache directory under .cache keeps this test apart.
    const cache = `.cache/${name}`;
    const r = await runTask("prepare", "--dataset", "fashion-mnist", "--root", root, "--cache", cache);
    assertOneLine(r, 2, f, "gzip");
    await assertRejects(() => Deno.stat(cache), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(`.cache/${name}`, { recursive: true }).catch(() => {});
    // prepare waits on `<cache>.lock` for a concurrent preparation of the same cache (train/run.ts).
    await Deno.remove(`.cache/${name}.lock`).catch(() => {});
  }
});

Deno.test("prepare: a symbolic link loop in an image folder is one line (exit 2), no cache left", async () => {
  const root = await Deno.makeTempDir({ prefix: "xs-r12-loop-" });
  const name = `r12loop${Date.now()}`;
  try {
    for (const d of ["train/a", "test/a"]) await Deno.mkdir(`${root}/${d}`, { recursive: true });
    await Deno.symlink("..", `${root}/train/a/back`);
    const r = await runTask("prepare", "--dataset", `imagefolder:${name}`, "--root", root);
    assertOneLine(r, 2, "symbolic link loop");
    await assertRejects(() => Deno.stat(`.cache/imagefolder-${name}`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(`.cache/imagefolder-${name}.lock`).catch(() => {});
  }
});

Deno.test("train: --out outside its permission, or through a file, is refused before any work (exit 2)", async () => {
  const r = await runTask("train", "--model", "mobilenet", "--out", "/tmp/xs-r12-elsewhere");
  assertOneLine(r, 2, "--out /tmp/xs-r12-elsewhere", "deno task train may write only under runs/");
  const base = `runs/xs-r12-${Date.now()}`;
  try {
    await Deno.mkdir("runs", { recursive: true });
    await Deno.writeTextFile(base, "a file\n");
    assertOneLine(await runTask("train", "--model", "mobilenet", "--out", `${base}/sub`), 2, "is a file");
  } finally {
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
});

Deno.test("train: a malformed existing ledger is refused before training starts (exit 2)", async () => {
  const out = `runs/xs-r12-ledger-${Date.now()}`;
  try {
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeTextFile(`${out}/results.csv`, "model,acc\nx,1\n");
    const r = await runTask("train", "--model", "mobilenet", "--out", out, "--epochs", "1");
    assertOneLine(r, 2, `${out}/results.csv, line 1: header "model,acc"`);
    // Refused before anything ran: no run folder, no adapter line, the ledger untouched.
    assert(!r.out.includes("adapter"), r.out);
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), ["results.csv"]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("score: an output path that is a directory writes no output at all (exit 2)", async () => {
  const out = `results/xs-r12-${Date.now()}`;
  try {
    // xscore.csv is written first, normalized.csv second: the second target blocks the whole set.
    await Deno.mkdir(`${out}/normalized.csv`, { recursive: true });
    const r = await runTask("score", "--out", out);
    assertOneLine(r, 2, "normalized.csv", "is a directory");
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), ["normalized.csv"]);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

// ---------------------------------------------------------------- item 1: data identity

Deno.test("imagefolder:NAME has its own id, cache folder and protocol; bad names are refused", async () => {
  const { defaultCacheDir, getDataset } = await import("../data/datasets.ts");
  const pets = getDataset("imagefolder:pets");
  assertEquals([pets.id, pets.base, defaultCacheDir("imagefolder:pets")], [
    "pets",
    "imagefolder",
    ".cache/imagefolder-pets",
  ]);
  assertEquals(defaultCacheDir("cifar10"), ".cache/cifar10");
  assertThrows(() => getDataset("imagefolder:../x"), UserError);
  assertThrows(() => getDataset("imagefolder:cifar10"), UserError);
});

Deno.test("train's cache follows its source: a changed folder or another --data is rebuilt; an empty one leaves nothing", async () => {
  const { ensurePrepared } = await import("../data/datasets.ts");
  const { writeImageFolder, encode, randomBytes } = await import("./fixtures.ts");
  const name = `r12id${Date.now()}`, spec = `imagefolder:${name}`, cache = `.cache/imagefolder-${name}`;
  const a = await Deno.makeTempDir({ prefix: "xs-r12-a-" }),
    b = await Deno.makeTempDir({ prefix: "xs-r12-b-" });
  const manifest = async () => JSON.parse(await Deno.readTextFile(`${cache}/manifest.json`));
  const log: string[] = [];
  try {
    await writeImageFolder(a);
    await ensurePrepared(spec, a, (l) => log.push(l));
    let m = await manifest();
    assertEquals([m.dataset, m.splits.train.count, m.splits.test.count], [name, 6, 4]);
    // The same source again: nothing rebuilt.
    const created = m.createdAt;
    await ensurePrepared(spec, undefined, (l) => log.push(l));
    assertEquals((await manifest()).createdAt, created);
    // One more training image in the recorded source, no --data: rebuilt from it.
    await Deno.writeFile(`${a}/train/cat/9.png`, await encode(randomBytes(7, 16 * 16 * 3), 16, 16, "png"));
    await ensurePrepared(spec, undefined, (l) => log.push(l));
    m = await manifest();
    assertEquals(m.splits.train.count, 7);
    // Another --data: its images, not the old cache's.
    for (const d of ["train/x", "train/y", "test/x", "test/y"]) {
      await Deno.mkdir(`${b}/${d}`, { recursive: true });
      await Deno.writeFile(
        `${b}/${d}/0.png`,
        await encode(randomBytes(d.length, 16 * 16 * 3), 16, 16, "png"),
      );
    }
    await ensurePrepared(spec, b, (l) => log.push(l));
    m = await manifest();
    assertEquals([m.classNames, m.splits.train.count, m.sourceRoot], [["x", "y"], 2, await Deno.realPath(b)]);
    assert(log.some((l) => l.includes("rebuilt from")), log.join("\n"));
  } finally {
    for (const d of [a, b, cache]) await Deno.remove(d, { recursive: true }).catch(() => {});
    await Deno.remove(`${cache}.lock`).catch(() => {});
  }
  // A source without a readable image: an error, and no cache folder left behind.
  const empty = await Deno.makeTempDir({ prefix: "xs-r12-e-" });
  try {
    for (const d of ["train/x", "test/x"]) await Deno.mkdir(`${empty}/${d}`, { recursive: true });
    await Deno.writeTextFile(`${empty}/train/x/bad.jpg`, "not an image");
    await Deno.writeTextFile(`${empty}/test/x/bad.jpg`, "not an image");
    const err = await assertRejects(() => ensurePrepared(spec, empty, () => {}), UserError);
    assert(err.message.includes("no readable image"), err.message);
    await assertRejects(() => Deno.stat(cache), Deno.errors.NotFound);
  } finally {
    await Deno.remove(empty, { recursive: true });
    await Deno.remove(cache, { recursive: true }).catch(() => {});
  }
});

// ---------------------------------------------------------------- item 3: run identity

Deno.test("train --resume after changing a flag names the differing fields (exit 2); a finished configuration is skipped", async () => {
  const { applyOverrides, buildPreset, presetLabel } = await import("../train/presets.ts");
  const { runName } = await import("../train/run.ts");
  const { LEDGER_COLUMNS } = await import("../train/ledger.ts");
  const out = `runs/xs-r12-id-${Date.now()}`;
  try {
    // An unfinished run of mobilenet on fashion-mnist, seed 1, at 2 epochs.
    const old = applyOverrides(buildPreset("paper", "mobilenet", "fashion-mnist"), { epochs: 2 });
    const dir = `${out}/${runName("mobilenet", "fashion-mnist", presetLabel(old), 1)}`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/checkpoint.safetensors`, "x");
    await Deno.writeTextFile(`${dir}/preset.json`, JSON.stringify({ ...old, seed: 1 }));
    const r = await runTask("train", "--model", "mobilenet", "--epochs", "3", "--resume", "--out", out);
    assertOneLine(r, 2, "--resume", "epochs 2 → 3", dir);
    // A finished configuration (its row in the ledger) is not trained again without --force.
    const now = applyOverrides(buildPreset("paper", "mobilenet", "fashion-mnist"), { epochs: 3 });
    const row = LEDGER_COLUMNS.map((c) =>
      ({ model: "mobilenet", dataset: "fashion-mnist", preset: presetLabel(now), seed: "1" } as Record<
        string,
        string
      >)[c] ??
        "0"
    );
    await Deno.writeTextFile(`${out}/results.csv`, `${LEDGER_COLUMNS.join(",")}\n${row.join(",")}\n`);
    const skip = await runTask("train", "--model", "mobilenet", "--epochs", "3", "--out", out);
    assertEquals(skip.code, 0, skip.err);
    assert(
      skip.out.includes("line 2 already has mobilenet on fashion-mnist") && skip.out.includes("--force"),
      skip.out,
    );
    assert(!skip.out.includes("adapter"), skip.out);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train --init-from is part of the run's identity: its own label, run folder and ledger row; --resume never drops it", async () => {
  const { argsPreset, parseTrainArgs, runDir } = await import("../train/run.ts");
  const { presetLabel } = await import("../train/presets.ts");
  const { LEDGER_COLUMNS } = await import("../train/ledger.ts");
  const out = `runs/xs-r12-init-${Date.now()}`;
  try {
    await Deno.mkdir(out, { recursive: true });
    const [a, a2, b] = [`${out}/a.safetensors`, `${out}/a2.safetensors`, `${out}/b.safetensors`];
    await Deno.writeTextFile(a, "weights A");
    await Deno.writeTextFile(a2, "weights A");
    await Deno.writeTextFile(b, "weights B");
    const args = (...extra: string[]) =>
      parseTrainArgs(["--model", "mobilenet", "--epochs", "3", "--out", out, ...extra]);
    const scratch = argsPreset(args()), fromA = argsPreset(args("--init-from", a));
    assertEquals(presetLabel(scratch), "paper;epochs=3");
    assert(/^paper;epochs=3;initFrom=[0-9a-f]{12}$/.test(presetLabel(fromA)), presetLabel(fromA));
    assert(runDir(args()) !== runDir(args("--init-from", a)));
    // The content names the weights, not the path: a copy is the same run, other weights another.
    assertEquals(presetLabel(argsPreset(args("--init-from", a2))), presetLabel(fromA));
    assert(presetLabel(argsPreset(args("--init-from", b))) !== presetLabel(fromA));
    const missing = assertThrows(() => argsPreset(args("--init-from", `${out}/none`)), UserError);
    assertEquals(missing.message, `--init-from ${out}/none: file not found`);

    // An unfinished from-scratch run: --resume --init-from does not continue it with the file ignored.
    const scratchDir = runDir(args());
    await Deno.mkdir(scratchDir, { recursive: true });
    await Deno.writeTextFile(`${scratchDir}/checkpoint.safetensors`, "x");
    await Deno.writeTextFile(`${scratchDir}/preset.json`, JSON.stringify({ ...scratch, seed: 1 }));
    const r = await runTask(
      "train",
      ...["--model", "mobilenet", "--epochs", "3", "--resume", "--init-from", a, "--out", out],
    );
    assertOneLine(r, 2, "--resume", "initFrom (unset) →", scratchDir);

    // The ledger keeps the two apart: a from-scratch row does not stand for a run from weights.
    const row = (preset: string) =>
      LEDGER_COLUMNS.map((c) =>
        ({ model: "mobilenet", dataset: "fashion-mnist", preset, seed: "1" } as Record<string, string>)[c] ??
          "0"
      ).join(",");
    await Deno.writeTextFile(
      `${out}/results.csv`,
      `${LEDGER_COLUMNS.join(",")}\n${row(presetLabel(scratch))}\n${row(presetLabel(fromA))}\n`,
    );
    const skip = await runTask(
      "train",
      "--model",
      "mobilenet",
      "--epochs",
      "3",
      "--init-from",
      a2,
      "--out",
      out,
    );
    assertEquals(skip.code, 0, skip.err);
    assert(
      skip.out.includes(`line 3 already has mobilenet on fashion-mnist (${presetLabel(fromA)}`),
      skip.out,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("scorer: rows of one cell with different preset/epochs/size/batch are not averaged; mixed scales warn", async () => {
  const { aggregateSeeds, mixedScaleWarnings, parseLedger } = await import("../score/ledger.ts");
  const head = "model,dataset,accuracy,preset,epochs,seed,image_size,batch_size\n";
  const same = parseLedger(
    head + "m,cifar10,90,paper,100,1,224,32\nm,cifar10,92,paper,100,2,224,32\n",
    "a.csv",
  );
  assertEquals(aggregateSeeds(same)[0].accuracy, 91);
  const mixed = parseLedger(
    head + "m,cifar10,90,paper,100,1,224,32\nm,cifar10,70,paper,5,2,224,32\n",
    "b.csv",
  );
  const err = assertThrows(() => aggregateSeeds(mixed), UserError);
  assert(
    err.message.startsWith("b.csv, line 3 and b.csv, line 2: m on cifar10 with different epochs (100 vs 5)"),
    err.message,
  );
  // Ledgers without configuration columns (the paper's Table 3) average as before.
  assertEquals(aggregateSeeds(parseLedger("model,dataset,accuracy\nm,d,1\nm,d,3\n", "c.csv"))[0].accuracy, 2);
  const scales = parseLedger(
    "model,dataset,accuracy\na,cifar10,0.91\nb,cifar10,88\nc,ham10000,80\n",
    "d.csv",
  );
  const w = mixedScaleWarnings(scales);
  assertEquals(w.length, 1);
  assert(
    w[0].startsWith("dataset cifar10 mixes fractions (0.91 at d.csv, line 2) and percentages (88"),
    w[0],
  );
});

// ---------------------------------------------------------------- item 6: durable writes

Deno.test("writeFileAtomic removes stale temp files of its target only, keeps fresh ones", async () => {
  const { writeFileAtomic, STALE_TEMP_MS } = await import("../runtime/fs.ts");
  const dir = await Deno.makeTempDir();
  try {
    const stale = `${dir}/x.csv.4242.0a1b2c3d.tmp`, fresh = `${dir}/x.csv.4243.0a1b2c3e.tmp`;
    const other = `${dir}/y.csv.4242.0a1b2c3d.tmp`;
    for (const f of [stale, fresh, other]) await Deno.writeTextFile(f, "partial");
    const old = new Date(Date.now() - STALE_TEMP_MS - 60_000);
    await Deno.utime(stale, old, old);
    await Deno.utime(other, old, old);
    await writeFileAtomic(`${dir}/x.csv`, "a,b\n");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["x.csv", "x.csv.4243.0a1b2c3e.tmp", "y.csv.4242.0a1b2c3d.tmp"]);
    assertEquals(await Deno.readTextFile(`${dir}/x.csv`), "a,b\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const strace = await Deno.stat("/usr/bin/strace").then(() => true, () => false);

Deno.test({
  name: "writeFileAtomic fsyncs the file before the rename and the directory after it (strace)",
  ignore: !strace,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const script = `${dir}/w.ts`;
      await Deno.writeTextFile(
        script,
        `import { writeFileAtomic } from "${new URL("../runtime/fs.ts", import.meta.url).href}";\n` +
          `await writeFileAtomic("${dir}/out/x.bin", new Uint8Array(1000));\n`,
      );
      const trace = `${dir}/trace.txt`;
      const r = await new Deno.Command("strace", {
        args: [
          "-f",
          "-qq",
          "-e",
          "trace=fsync,fdatasync,rename,renameat,renameat2",
          "-o",
          trace,
          "deno",
          "run",
          "--allow-read",
          `--allow-write=${dir}`,
          script,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      const calls = (await Deno.readTextFile(trace)).split("\n").map((l) => l.replace(/^\d+\s+/, ""));
      const rename = calls.findIndex((l) => /^rename\w*\(.*x\.bin\.\d+\.[0-9a-f]{8}\.tmp".*x\.bin"/.test(l));
      assert(rename > 0, calls.join("\n"));
      assert(
        calls.slice(0, rename).some((l) => /^f(data)?sync\(\d+\)\s+= 0/.test(l)),
        "no fsync before the rename",
      );
      assert(
        calls.slice(rename + 1).some((l) => /^f(data)?sync\(\d+\)\s+= 0/.test(l)),
        "no fsync after the rename",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------- item 7: narrowest permissions

Deno.test("deno.json: no task has blanket --allow-ffi, --allow-run or -A; env access is a list where no child needs it all", async () => {
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks as Record<string, { command: string }>;
  for (const [name, { command }] of Object.entries(tasks)) {
    if (name === "test") continue;
    const flags = command.split(/\s+/).filter((w) => w.startsWith("-"));
    assert(!flags.includes("-A") && !flags.includes("--allow-all"), `${name}: ${command}`);
    assert(!flags.includes("--allow-ffi"), `${name}: blanket --allow-ffi`);
    assert(!flags.includes("--allow-run"), `${name}: blanket --allow-run`);
    // vendor's esbuild child gets a copy of the whole environment (child_process.spawn): it needs it all.
    if (name !== "vendor") assert(!flags.includes("--allow-env"), `${name}: blanket --allow-env`);
  }
  // The narrowed prepare task still loads sharp and decodes (a tiny ImageFolder, as deno task prepare runs it).
  const { writeImageFolder } = await import("./fixtures.ts");
  const root = await Deno.makeTempDir({ prefix: "xs-r12-perm-" });
  const name = `r12perm${Date.now()}`;
  try {
    await writeImageFolder(root);
    const r = await runTask("prepare", "--name", name, "--root", root, "--size", "16");
    assertEquals(r.code, 0, r.err);
    assert(
      r.out.startsWith(`${name}: built — .cache/imagefolder-${name}: train 6, test 4; 2 classes`),
      r.out,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(`.cache/imagefolder-${name}`, { recursive: true }).catch(() => {});
    await Deno.remove(`.cache/imagefolder-${name}.lock`).catch(() => {});
  }
});

Deno.test("score: --results /dev/zero is refused in one line (exit 2) instead of read forever", async () => {
  assertOneLine(await runTask("score", "--results", "/dev/zero"), 2, "/dev/zero: not a regular file");
  const dir = await Deno.makeTempDir();
  try {
    assertOneLine(await runTask("score", "--results", dir), 2, `${dir}: is a directory`);
  } finally {
    await Deno.remove(dir);
  }
});
