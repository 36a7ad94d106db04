/**
 * What the train task and the sweep share: the train command line (flags, usage, parsing), the
 * run folder a configuration trains in, and the lock a running training holds on that folder. A
 * library module, so that `tasks/sweep.ts` does not import another task.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { UsageError, UserError } from "../runtime/errors.ts";
import { choiceFlag, intFlag, numberFlag, parseCli, valueFlags } from "../runtime/cli.ts";
import { flockHeld, tryFlock } from "../runtime/fs.ts";
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
                     match the model exactly. The file's content hash joins the run's identity
                     (preset label initFrom=<sha256 prefix>, run folder, ledger row)
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

/**
 * Flag `name`'s `value` parsed by `parse` (runtime/cli.ts intFlag, numberFlag, choiceFlag). A bad
 * value is one line naming the flag and the value as typed (`--epochs 0: expected an integer >= 1`),
 * exit 2, without the usage after it: the value is what is wrong, not the command line's shape.
 */
function flagValue<T>(name: string, value: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError) || value === undefined) throw err;
    const quoted = `--${name} ${JSON.stringify(value)}: `;
    const want = err.message.startsWith(quoted) ? err.message.slice(quoted.length) : err.message;
    const shown = /^[^\s"]+$/.test(value) ? value : JSON.stringify(value);
    throw new UserError(`--${name} ${shown}: ${want}`);
  }
}

/**
 * Parses train flags (also used by the sweep to validate its pass-through flags). `--help` throws
 * HelpRequested, an unknown flag or a missing value {@link UsageError}, a bad value a one-line
 * {@link UserError} naming the flag.
 */
export function parseTrainArgs(args: string[]): TrainArgs {
  const usage = TRAIN_USAGE;
  const { values: v } = parseCli(args, {
    usage,
    options: {
      ...valueFlags(
        "model",
        "dataset",
        "data",
        "preset",
        "epochs",
        "batch-size",
        "image-size",
        "train-limit",
      ),
      ...valueFlags(
        "test-limit",
        "lr-max",
        "seed",
        "kernels",
        "step",
        "out",
        "log-every",
        "init-from",
        "tensorboard",
      ),
      resume: { type: "boolean" },
      force: { type: "boolean" },
    },
  });
  if (!v.model) throw new UsageError("--model is required", usage);
  const positive = (
    name: "epochs" | "batch-size" | "image-size" | "train-limit" | "test-limit" | "log-every",
  ) => flagValue(name, v[name], () => intFlag(v[name], name, usage, { min: 1 }));
  const kernels = ["custom", "stock"] as const, steps = ["recorded", "eager"] as const;
  return {
    model: v.model,
    dataset: v.dataset ?? "fashion-mnist",
    data: v.data,
    preset: v.preset ?? "paper",
    overrides: {
      epochs: positive("epochs"),
      batchSize: positive("batch-size"),
      imageSize: positive("image-size"),
      trainLimit: positive("train-limit"),
      testLimit: positive("test-limit"),
      lrMax: flagValue("lr-max", v["lr-max"], () => numberFlag(v["lr-max"], "lr-max", usage, 0)),
    },
    seed: flagValue("seed", v.seed, () => intFlag(v.seed, "seed", usage, { min: 0 })) ?? 1,
    kernels: flagValue("kernels", v.kernels, () => choiceFlag(v.kernels, "kernels", kernels, usage)) ??
      "custom",
    step: flagValue("step", v.step, () => choiceFlag(v.step, "step", steps, usage)) ?? "recorded",
    out: v.out ?? "runs",
    resume: v.resume ?? false,
    force: v.force ?? false,
    logEvery: positive("log-every") ?? 25,
    initFrom: v["init-from"],
    tensorboard: v.tensorboard,
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
  return applyOverrides(buildPreset(a.preset, a.model, info.base ?? info.id), {
    ...a.overrides,
    initFrom: a.initFrom === undefined ? undefined : initFromDigest(a.initFrom),
  });
}

/** Digests of `--init-from` files by path (each file is hashed once per process). */
const initDigests = new Map<string, string>();

/**
 * The first 12 hex digits of the SHA-256 of `--init-from` file `path`. It is part of a run's
 * identity (preset label, run folder, checkpoint fingerprint, ledger row), so a run initialised from
 * a file never shares a folder or a ledger row with a from-scratch run or a run from other weights.
 * A missing or unreadable file is a one-line {@link UserError}.
 */
export function initFromDigest(path: string): string {
  const known = initDigests.get(path);
  if (known) return known;
  let file: Deno.FsFile;
  try {
    const info = Deno.statSync(path);
    if (info.isDirectory) throw new UserError(`--init-from ${path}: is a directory, not a file`);
    if (!info.isFile) throw new UserError(`--init-from ${path}: not a regular file (a device or pipe)`);
    file = Deno.openSync(path, { read: true });
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (err instanceof Deno.errors.NotFound) throw new UserError(`--init-from ${path}: file not found`);
    throw new UserError(`--init-from ${path}: cannot read: ${String((err as Error).message).split("\n")[0]}`);
  }
  const hash = createHash("sha256");
  try {
    const buf = new Uint8Array(1 << 20);
    for (let n = file.readSync(buf); n !== null; n = file.readSync(buf)) hash.update(buf.subarray(0, n));
  } finally {
    file.close();
  }
  const digest = hash.digest("hex").slice(0, 12);
  initDigests.set(path, digest);
  return digest;
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
