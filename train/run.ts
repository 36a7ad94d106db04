/**
 * What the train task and the sweep share: the train command line (flags, usage, parsing), the
 * run folder a configuration trains in, and the lock a running training holds on that folder. A
 * library module, so that `tasks/sweep.ts` does not import another task.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "../runtime/errors.ts";
import type { Ctx } from "../models/core.ts";
import type { PresetOverrides } from "./presets.ts";

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
  --out DIR          results directory (default runs; the ledger is DIR/results.csv)
  --resume           continue DIR/<run>/checkpoint.safetensors
  --log-every N      progress line every N steps (default 25; each one waits for the GPU)
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
  out: string;
  resume: boolean;
  logEvery: number;
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
      out: { type: "string", default: "runs" },
      resume: { type: "boolean", default: false },
      "log-every": { type: "string", default: "25" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  if (!values.model) throw new UserError(`--model is required\n${TRAIN_USAGE}`);
  if (values.kernels !== "custom" && values.kernels !== "stock") {
    throw new UserError(`--kernels ${values.kernels}: use custom or stock`);
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
    out: values.out!,
    resume: values.resume!,
    logEvery: positiveInt(values["log-every"], "log-every")!,
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
