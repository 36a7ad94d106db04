/**
 * What the train task and the sweep share: the train command line (flags, usage, parsing), the
 * run folder a configuration trains in, and the lock a running training holds on that folder. A
 * library module, so that `tasks/sweep.ts` does not import another task.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "../runtime/errors.ts";
import { flockHeld, releaseFlock, tryFlock } from "../runtime/fs.ts";
import type { Ctx } from "../models/core.ts";
import { applyOverrides, buildPreset, type Preset, presetLabel, type PresetOverrides } from "./presets.ts";
import { getDataset } from "../data/datasets.ts";

/** Usage text of `deno task train` (also printed by errors of {@link parseTrainArgs}). */
export const TRAIN_USAGE = `usage: deno task train --model M [--dataset D] [options]

options:
  --model M          model id (deno task models lists them)
  --dataset D        dataset id (deno task prepare --list lists them; default fashion-mnist)
  --data DIR         dataset root for preparing the cache (default: the dataset's default root)
  --preset P         paper (default) | reference
  --epochs N         override the preset's epochs (100)
  --batch-size B     override the training batch size
  --image-size S     override the input size (paper: 224)
  --train-limit N    train on the first N training images only
  --test-limit N     evaluate on the first N test images only (smoke runs)
  --lr-max X         override lr_max
  --seed S           seed of init, data order, augmentation, CutMix and dropout (default 1)
  --kernels K        custom (default) | stock
  --step S           recorded (default: record the training step once, replay it; WebGPU + custom
                     kernels only, eager elsewhere) | eager (every step through tfjs)
  --out DIR          results directory (default runs; the ledger is DIR/results.csv)
  --resume           continue DIR/<run>/checkpoint.safetensors
  --force            train even if DIR/results.csv has a row of this model, dataset, preset and seed
  --log-every N      progress line every N steps (default 25; each one waits for the GPU)
  --tensorboard DIR  also write TensorBoard event files (scalars) to DIR/<run folder> (under runs/)
  --init-from FILE   start from these weights (safetensors with PyTorch state_dict names, e.g. a
                     weights.safetensors or best.safetensors of another run); names and shapes must
                     match the model exactly
  --help

LR schedule: runs of >= 20 epochs use the reference per-epoch schedule (5 warm-up epochs from
lr_max/5, cosine to exactly lr_min at the last epoch); shorter runs apply the same function per
step, with the warm-up scaled to 5% of the steps. Results: DIR/results.csv (one row per run),
DIR/<model>_<dataset>_<preset>_s<seed>/{epochs.csv,weights.safetensors,preset.json}.`;

/** Parsed command line of the train task. */
export interface TrainArgs {
  model: string;
  dataset: string;
  data?: string;
  preset: string;
  overrides: PresetOverrides;
  seed: number;
  kernels: Ctx["kernels"];
  /** Recorded (replayed) or eager training steps (train/step.ts). */
  step: "recorded" | "eager";
  out: string;
  resume: boolean;
  /** Train even if the ledger already has a row of this configuration and seed. */
  force?: boolean;
  logEvery: number;
  /** Initial weights (PyTorch-named safetensors) instead of the seeded initialisation. */
  initFrom?: string;
  /** Folder for TensorBoard event files (one subfolder per run). */
  tensorboard?: string;
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`--${name} ${v}: expected a positive integer`);
  return n;
}

/** Parses train flags (also used by the sweep to validate its pass-through flags). */
export function parseTrainArgs(args: string[]): TrainArgs | undefined {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      dataset: { type: "string", default: "fashion-mnist" },
      data: { type: "string" },
      preset: { type: "string", default: "paper" },
      epochs: { type: "string" },
      "batch-size": { type: "string" },
      "image-size": { type: "string" },
      "train-limit": { type: "string" },
      "test-limit": { type: "string" },
      "lr-max": { type: "string" },
      seed: { type: "string", default: "1" },
      kernels: { type: "string", default: "custom" },
      step: { type: "string", default: "recorded" },
      out: { type: "string", default: "runs" },
      resume: { type: "boolean", default: false },
      force: { type: "boolean", default: false },
      "log-every": { type: "string", default: "25" },
      "init-from": { type: "string" },
      tensorboard: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  if (!values.model) throw new UserError(`--model is required\n${TRAIN_USAGE}`);
  if (values.kernels !== "custom" && values.kernels !== "stock") {
    throw new UserError(`--kernels ${values.kernels}: use custom or stock`);
  }
  if (values.step !== "recorded" && values.step !== "eager") {
    throw new UserError(`--step ${values.step}: use recorded or eager`);
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    throw new UserError(`--seed ${values.seed}: expected an integer >= 0`);
  }
  const lrMax = values["lr-max"] === undefined ? undefined : Number(values["lr-max"]);
  if (lrMax !== undefined && !(lrMax > 0)) {
    throw new UserError(`--lr-max ${values["lr-max"]}: expected a number > 0`);
  }
  return {
    model: values.model,
    dataset: values.dataset!,
    data: values.data,
    preset: values.preset!,
    overrides: {
      epochs: positiveInt(values.epochs, "epochs"),
      batchSize: positiveInt(values["batch-size"], "batch-size"),
      imageSize: positiveInt(values["image-size"], "image-size"),
      trainLimit: positiveInt(values["train-limit"], "train-limit"),
      testLimit: positiveInt(values["test-limit"], "test-limit"),
      lrMax,
    },
    seed,
    kernels: values.kernels,
    step: values.step,
    out: values.out!,
    resume: values.resume!,
    force: values.force!,
    logEvery: positiveInt(values["log-every"], "log-every")!,
    initFrom: values["init-from"],
    tensorboard: values.tensorboard,
  };
}

/**
 * Run directory name: `<model>_<dataset>_<preset label>_s<seed>` with the label's overrides
 * spelled `-field<value>` (e.g. `mobilenet_fashion-mnist_paper-epochs2-imageSize32_s1`), so runs
 * with different flags never share a checkpoint.
 */
export function runName(model: string, dataset: string, label: string, seed: number): string {
  return `${model}_${dataset}_${label.replaceAll(";", "-").replaceAll("=", "")}_s${seed}`;
}

/**
 * The preset a parsed command line trains with (the named preset plus the flags' overrides); a
 * named dataset (`imagefolder:NAME`) follows the protocol of the entry it derives from.
 */
export function argsPreset(a: TrainArgs): Preset {
  const info = getDataset(a.dataset);
  return applyOverrides(buildPreset(a.preset, a.model, info.base ?? info.id), a.overrides);
}

/** The run folder of a parsed command line: `OUT/<runName>`, named by the dataset's ledger id. */
export function runDir(a: TrainArgs, preset: Preset = argsPreset(a)): string {
  return `${a.out}/${runName(a.model, getDataset(a.dataset).id, presetLabel(preset), a.seed)}`;
}

/** The lock file a training holds in its run folder while it runs. */
export const RUN_LOCK = ".running.lock";

/** Run-folder locks held by this process (released when it exits). */
const heldRunLocks = new Map<string, Deno.FsFile>();

/**
 * Locks run folder `dir` for this process until it exits (an flock on `dir/.running.lock`, which
 * the kernel drops if the process dies), so two processes never train one configuration at once
 * and the sweep can tell a running cell from a stopped one. A busy folder is a {@link UserError}
 * naming the holder's pid. Waits a few seconds first: a sweep probing the lock holds it for an
 * instant.
 */
export async function lockRunFolder(dir: string, waitMs = 5_000): Promise<void> {
  if (heldRunLocks.has(dir)) return;
  await Deno.mkdir(dir, { recursive: true });
  const lock = await tryFlock(`${dir}/${RUN_LOCK}`, { waitMs });
  if (!lock) {
    const holder = (await Deno.readTextFile(`${dir}/${RUN_LOCK}`).catch(() => "")).trim();
    throw new UserError(
      `${dir} is being trained by another process${holder ? ` (pid ${holder})` : ""}; ` +
        `wait for it to finish, or stop it and rerun with --resume`,
    );
  }
  heldRunLocks.set(dir, lock);
}

/** True if a live process is training in run folder `dir` (it holds the folder's lock). */
export function runFolderBusy(dir: string): Promise<boolean> {
  return flockHeld(`${dir}/${RUN_LOCK}`);
}

/** How long a training waits for another process's preparation of the same dataset (6 h). */
export const PREPARE_WAIT_MS = 6 * 3600_000;

/**
 * Runs `fn` (a dataset preparation into `cacheDir`) while holding an flock on `cacheDir + ".lock"`,
 * waiting up to `waitMs` for another process's preparation to end first. Concurrent trainings (the
 * tasks of a Slurm array) that need one unprepared dataset thus prepare it once: the first builds,
 * the others wait, then find it ready. A timeout is a {@link UserError}.
 */
export async function withPrepareLock<T>(
  cacheDir: string,
  fn: () => Promise<T>,
  waitMs = PREPARE_WAIT_MS,
): Promise<T> {
  const path = `${cacheDir.replace(/\/+$/, "")}.lock`;
  const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  let lock: Deno.FsFile | undefined;
  try {
    await Deno.mkdir(parent, { recursive: true });
    lock = await tryFlock(path, {
      waitMs,
      onWait: (holder) =>
        console.error(`waiting for ${holder ? `pid ${holder}` : "another process"} to prepare ${cacheDir}`),
    });
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `cannot create ${path}, the lock of ${cacheDir}'s preparation: use a cache folder inside .cache ` +
          `(e.g. .cache/NAME)`,
      );
    }
    throw err;
  }
  if (!lock) {
    throw new UserError(
      `${cacheDir} is still being prepared by another process after ${Math.round(waitMs / 1000)} s ` +
        `(lock ${path}); rerun when it has finished`,
    );
  }
  try {
    return await fn();
  } finally {
    await releaseFlock(lock, path);
  }
}
