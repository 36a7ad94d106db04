/**
 * `deno task train --model M --dataset D [flags]`: trains one model on one dataset under a preset
 * (default `paper`), checkpointing every epoch, and appends one row to `OUT/results.csv`.
 *
 * @module
 */
import { runMain, UserError } from "../runtime/errors.ts";
import { adapterFacts, assertBindable, GpuError, initRuntime } from "../runtime/webgpu.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import { Rng } from "../runtime/rng.ts";
import { tf } from "../runtime/tf.ts";
import "../models/zoo.ts";
import { buildModel, modelSpec } from "../models/registry.ts";
import type { ModelOptions } from "../models/core.ts";
import { emptyActivation, largestActivation } from "../models/inspect.ts";
import { defaultCacheDir, ensurePrepared, getDataset } from "../data/datasets.ts";
import { assertWritableDir } from "../runtime/cli.ts";
import { assertNoDifferingRun } from "../train/identity.ts";
import { openCache, withPrepareLock } from "../data/cache/mod.ts";
import { describePreset, type Preset, presetLabel } from "../train/presets.ts";
import { runPaths, train, type TrainSource } from "../train/loop.ts";
import { appendLedgerRow, findLedgerRun, type LedgerRecord, readLedgerRecords } from "../train/ledger.ts";
import { evalBatchSize, openTrainSource } from "../train/source.ts";
import { loadStateDict, readInitWeights } from "../train/weights.ts";
import { argsPreset, lockRunFolder, parseTrainArgs, runDir, type TrainArgs } from "../train/run.ts";
import { gitVersion } from "../runtime/version.ts";

/**
 * Opens the dataset's cache, preparing it when missing and confirming it against its source
 * (`--data`, or the root recorded in the cache) otherwise: a changed source is rebuilt, never
 * silently replaced by the old cache (data/datasets.ts ensurePrepared).
 */
async function ensureCache(dataset: string, root: string | undefined, preset: string) {
  // The reference preset may read its own cache (Stanford Dogs re-encoded as JPEG 75).
  const dir = defaultCacheDir(dataset, preset);
  // Concurrent trainings (a Slurm array) prepare once: the others wait, then find the manifest.
  await withPrepareLock(dir, () => ensurePrepared(dataset, root, console.log, preset));
  return await openCache(dir);
}

/** Runs one training job from parsed flags; returns the ledger row written. */
async function runTraining(a: TrainArgs): Promise<Record<string, string | number> | undefined> {
  const info = getDataset(a.dataset);
  modelSpec(a.model);
  // imagefolder:NAME: the protocol of "imagefolder", the identity (ledger, run folder) NAME.
  const preset: Preset = argsPreset(a);
  await assertWritableDir(a.out, "--out", "train", ["runs"]);
  if (a.tensorboard) await assertWritableDir(a.tensorboard, "--tensorboard", "train", ["runs"]);
  // A malformed ledger is found now, not after training (and before the run folder is made).
  const ledgerRows = await readLedgerRecords(`${a.out}/results.csv`);
  const dir = runDir(a, preset);
  await lockRunFolder(dir);
  const paths = runPaths(dir);
  const done = `${dir}/done.json`;
  if (!a.resume && (await exists(paths.checkpoint)) && !(await exists(done))) {
    throw new UserError(
      `${paths.checkpoint} exists (an unfinished run): pass --resume to continue it, or remove ${dir}`,
    );
  }
  const ledger = `${a.out}/results.csv`;
  if (a.resume && !(await exists(paths.checkpoint)) && !(await exists(done))) {
    await assertNoDifferingRun(a.out, dir, `${a.model}_${info.id}_`, `_s${a.seed}`, {
      ...preset,
      seed: a.seed,
    });
  }
  const inLedger = findLedgerRun(ledgerRows, {
    model: a.model,
    dataset: info.id,
    preset: presetLabel(preset),
    seed: a.seed,
  });
  if (!a.resume && !a.force && inLedger !== undefined) {
    console.log(
      `${ledger}, line ${inLedger} already has ${a.model} on ${info.id} (${
        presetLabel(preset)
      }, seed ${a.seed}); ` +
        `nothing to do. Pass --force to train it again (a second row), or use another --seed or --out`,
    );
    return undefined;
  }
  if (a.resume && (await exists(done))) {
    // done.json is written before the ledger row: a kill between the two is repaired here.
    const row = JSON.parse(await Deno.readTextFile(done)) as LedgerRecord;
    const appended = await appendLedgerRow(ledger, row, { unlessPresent: true });
    console.log(
      `${dir} already finished (${done}); ${appended ? `its row was added to ${ledger}` : "nothing to do"}`,
    );
    return undefined;
  }
  if (!a.resume) {
    // A new run over a finished one: start from scratch (the ledger keeps the old row).
    for (const f of [done, paths.checkpoint, paths.epochs]) await Deno.remove(f).catch(() => {});
  }
  const facts = await initRuntime();
  console.log(describePreset(preset));
  console.log(`seed ${a.seed}, kernels ${a.kernels}, adapter ${facts.description}, run dir ${dir}`);

  const cache = await ensureCache(a.dataset, a.data, preset.name);
  const numClasses = info.numClasses ?? cache.manifest.numClasses;
  if (!numClasses) {
    throw new UserError(`${info.id}: cannot tell the number of classes from the cache manifest`);
  }
  const modelOptions: ModelOptions = {
    ...preset.modelOptions,
    numClasses,
    imageSize: preset.imageSize,
    seed: a.seed,
  };
  // --init-from is checked (names, shapes) before any training.
  const init = a.initFrom ? await readInitWeights(a.initFrom, a.model, modelOptions) : undefined;
  const empty = emptyActivation(a.model, modelOptions);
  if (empty) {
    throw new UserError(
      `${a.model} does not run at --image-size ${preset.imageSize}: ${empty} is empty; use a larger --image-size`,
    );
  }
  // One image's largest activation, from meta-mode shapes; a batch's is B times as large.
  const big = largestActivation(a.model, modelOptions, 1);
  const limit = facts.limits.maxStorageBufferBindingSize;
  assertBindable(
    big.elements * 4 * preset.batchSize,
    `${a.model}'s largest activation at batch ${preset.batchSize}, ${preset.imageSize} px (${big.where} per image)`,
  );
  const evalBatch = evalBatchSize(preset, big.elements * 4, limit);

  const root = new Rng(a.seed);
  const source: TrainSource = await openTrainSource(cache, preset, root.nextUint32(), evalBatch);
  const model = buildModel(a.model, modelOptions);
  if (init) {
    loadStateDict(model.params, init, a.initFrom!);
    console.log(`initial weights: ${a.initFrom} (sha256 ${preset.initFrom}…)`);
  }
  const params = model.params.countTrainable();
  console.log(
    `${a.model}: ${params.toLocaleString("en")} trainable parameters; ${source.trainImages} train / ` +
      `${source.testImages} test images, ${source.stepsPerEpoch} steps per epoch`,
  );
  await writeFileAtomic(`${dir}/preset.json`, JSON.stringify({ ...preset, seed: a.seed }, null, 1) + "\n");
  const result = await train(model, source, {
    schedule: {
      epochs: preset.epochs,
      stepsPerEpoch: source.stepsPerEpoch,
      lrMax: preset.lrMax,
      lrMin: preset.lrMin,
    },
    dir,
    rng: root.fork(),
    kernels: a.kernels,
    step: a.step,
    labelSmoothing: preset.labelSmoothing,
    resume: a.resume,
    readEvery: a.logEvery,
    fingerprint: { ...preset, seed: a.seed },
    tensorboard: a.tensorboard ? `${a.tensorboard}/${dir.split("/").pop()}` : undefined,
  });
  const row = {
    model: a.model,
    dataset: info.id,
    accuracy: result.accuracy.toFixed(2),
    best_accuracy: result.bestAccuracy.toFixed(2),
    best_epoch: result.bestEpoch,
    epochs: preset.epochs,
    preset: presetLabel(preset),
    seed: a.seed,
    params,
    image_size: preset.imageSize,
    batch_size: preset.batchSize,
    train_seconds: result.trainSeconds.toFixed(1),
    images_per_second: result.imagesPerSecond.toFixed(2),
    adapter: adapterFacts().description,
    version: `${await gitVersion()} tfjs ${tf.version_core}`,
    finished_at: new Date().toISOString(),
  };
  // done.json first: a resume after a kill between the two adds a missing row, never a second one.
  await writeFileAtomic(done, JSON.stringify(row, null, 1) + "\n");
  await appendLedgerRow(ledger, row, { unlessPresent: true });
  console.log(
    `done: ${a.model} on ${info.id}: test accuracy ${row.accuracy}% (last epoch), best ${row.best_accuracy}% ` +
      `(epoch ${row.best_epoch}); ${row.images_per_second} img/s; ${row.train_seconds} s training. ` +
      `Row appended to ${ledger}; weights ${result.weightsPath}`,
  );
  model.params.dispose();
  cache.close();
  return row;
}

async function main(): Promise<void> {
  // --help: HelpRequested, printed by runMain (exit 0).
  const a = parseTrainArgs(Deno.args);
  try {
    await runTraining(a);
  } catch (err) {
    // A diverged run is already a UserError with DIVERGED_EXIT_CODE (train/loop.ts, train/health.ts).
    if (err instanceof GpuError) throw new UserError(`${err.message}; rerun with --resume`, 4);
    throw err;
  }
}

if (import.meta.main) await runMain(main);
