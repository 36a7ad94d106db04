/**
 * The sweep as a library: a models × datasets × seeds matrix, which of its cells still need a run
 * (not in the ledger, not running now), the argv of one cell's training process, and the Slurm
 * job-array script that runs the cells on a cluster. `tasks/sweep.ts` is the command line over it.
 *
 * @module
 */
import { UsageError, UserError } from "../runtime/errors.ts";
import { findLedgerRun, readLedgerRecords } from "./ledger.ts";
import { presetLabel } from "./presets.ts";
import { argsPreset, parseTrainArgs, runDir, runFolderBusy, type TrainArgs } from "./run.ts";
import "../models/zoo.ts";
import { modelSpec } from "../models/registry.ts";
import { getDataset } from "../data/datasets.ts";

/**
 * `#SBATCH` lines of an emitted script unless `--sbatch KEY=VALUE` changes them (`KEY=` drops one):
 * one GPU, a few CPUs for decoding and augmentation, and a wall time that fits a 100-epoch run of
 * the slower models.
 */
export const SBATCH_DEFAULTS: Readonly<Record<string, string>> = {
  "job-name": "xscore-sweep",
  gres: "gpu:1",
  "cpus-per-task": "4",
  mem: "32G",
  time: "72:00:00",
};

/** `#SBATCH` keys the emitter writes itself (the array follows the cells; logs go to OUT/slurm). */
const RESERVED_SBATCH = ["array", "output", "error"];

export const SWEEP_USAGE =
  `usage: deno task sweep --models a,b --datasets x,y [--seeds 1,2,3] [--emit slurm] [train flags]

  --models LIST        comma-separated model ids
  --datasets LIST      comma-separated dataset ids
  --seeds LIST         comma-separated seeds (default 1)
  --emit slurm         write OUT/sweep.slurm (a job array, one cell per task) instead of running
  --sbatch KEY=VALUE   an #SBATCH line of the emitted script (repeatable; KEY= drops a default):
                       partition, account, qos, time, mem, cpus-per-task, gres, constraint, ...
                       defaults: ${Object.entries(SBATCH_DEFAULTS).map(([k, v]) => `${k}=${v}`).join(" ")}
  --requeue            let Slurm requeue a preempted or failed-node task (it resumes its checkpoint)
  train flags          passed to every cell: --preset, --epochs, --batch-size, --image-size,
                       --train-limit, --test-limit, --lr-max, --kernels, --data, --log-every,
                       --out (default runs)

Cells already in OUT/results.csv, and cells running now (their run folder is locked), are skipped;
unfinished ones resume their checkpoint. Rerun the sweep at any time to continue it.`;

/** One cell of the matrix. */
export interface Cell {
  model: string;
  dataset: string;
  seed: number;
}

/** Sweep flags split from the flags passed through to every cell. */
export interface SweepArgs {
  cells: Cell[];
  emit?: "slurm";
  /** Train flags for every cell (without --model/--dataset/--seed/--resume). */
  pass: string[];
  /** The ledger's folder (train's --out). */
  out: string;
  /** `#SBATCH` lines: defaults merged with --sbatch (insertion order kept). */
  sbatch: Record<string, string>;
  /** Emit `#SBATCH --requeue`. */
  requeue: boolean;
}

const list = (v: string | undefined) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);

// Every byte of an argument may end up in the emitted shell script; C0 controls and DEL (a newline
// above all) could end a comment or a quoted word there, so none is accepted anywhere.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** Parses the sweep command line; undefined for --help. Throws {@link UserError} on bad input. */
export function parseSweepArgs(args: string[]): SweepArgs | undefined {
  const own: Record<string, string> = {};
  const sbatch: Record<string, string> = { ...SBATCH_DEFAULTS };
  let requeue = false;
  const pass: string[] = [];
  for (const [i, a] of args.entries()) {
    if (CONTROL.test(a)) {
      throw new UserError(
        `argument ${i + 1} (${JSON.stringify(a)}) contains a control character; paths and values ` +
          `of a sweep may not (they are written into a shell script)`,
      );
    }
  }
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "--help" || flag === "-h") return undefined;
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UserError(`${flag} needs a value\n${SWEEP_USAGE}`);
      return v;
    };
    if (["--models", "--datasets", "--seeds", "--emit"].includes(flag)) {
      own[flag.slice(2)] = value();
    } else if (flag === "--sbatch") {
      const v = value();
      const m = v.match(/^([a-z][a-z0-9-]*)=(.*)$/s);
      if (!m) throw new UserError(`--sbatch ${v}: expected KEY=VALUE, e.g. --sbatch partition=gpu`);
      const [, key, val] = m;
      if (RESERVED_SBATCH.includes(key)) {
        throw new UserError(`--sbatch ${v}: --${key} is written by the sweep itself`);
      }
      if (/[\s'"\\`$]/.test(val)) {
        throw new UserError(`--sbatch ${v}: the value may not contain spaces, quotes, \\, \` or $`);
      }
      if (val === "") delete sbatch[key];
      else sbatch[key] = val;
    } else if (flag === "--requeue") {
      if (inline !== undefined) throw new UserError(`--requeue takes no value`);
      requeue = true;
    } else if (["--model", "--dataset", "--seed", "--resume"].includes(flag)) {
      throw new UserError(`${flag} is set per cell by the sweep; use --models/--datasets/--seeds`);
    } else {
      pass.push(args[i]);
    }
  }
  const models = list(own.models), datasets = list(own.datasets);
  const seeds = list(own.seeds ?? "1").map(Number);
  if (!models.length || !datasets.length) {
    throw new UserError(`--models and --datasets are required\n${SWEEP_USAGE}`);
  }
  models.forEach(modelSpec);
  datasets.forEach(getDataset);
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new UserError(`--seeds ${own.seeds}: expected integers >= 0`);
  }
  if (own.emit !== undefined && own.emit !== "slurm") {
    throw new UserError(`--emit ${own.emit}: only "slurm" is supported`);
  }
  // Validates the pass-through flags exactly as each cell will parse them.
  const probe = cellArgs({ model: models[0], dataset: datasets[0], seed: seeds[0] }, pass);
  const cells = models.flatMap((model) =>
    datasets.flatMap((dataset) => seeds.map((seed) => ({ model, dataset, seed })))
  );
  // A list with repeats (--seeds 1,1) would run one cell twice at once.
  const unique = [...new Map(cells.map((c) => [cellName(c), c])).values()];
  return { cells: unique, emit: own.emit as "slurm" | undefined, pass, out: probe.out, sbatch, requeue };
}

/** The train task's parsed flags for one cell. */
export function cellArgs(c: Cell, pass: string[]): TrainArgs {
  try {
    return parseTrainArgs([...pass, "--model", c.model, "--dataset", c.dataset, "--seed", String(c.seed)]);
  } catch (err) {
    // An unknown flag or a missing value: one line naming it as the sweep's, exit 2 (the train usage
    // would not fit the sweep's command line).
    if (err instanceof UsageError) throw new UserError(`${err.message} (a train flag of the sweep)`);
    throw err;
  }
}

/** `model/dataset/s<seed>`, how logs and messages name a cell. */
export function cellName(c: Cell): string {
  return `${c.model}/${c.dataset}/s${c.seed}`;
}

/** Where the cells of a sweep stand: in the ledger, running now (run folder locked), or to run. */
export interface SweepStatus {
  done: Cell[];
  running: Cell[];
  todo: Cell[];
}

/** Sorts the cells of `s` into finished (in its ledger), running (run folder locked) and to do. */
export async function sweepStatus(s: SweepArgs): Promise<SweepStatus> {
  const ledger = await readLedgerRecords(`${s.out}/results.csv`);
  const st: SweepStatus = { done: [], running: [], todo: [] };
  for (const c of s.cells) {
    const a = cellArgs(c, s.pass);
    // The ledger names a dataset by its id (imagefolder:NAME → NAME), as the training writes it.
    const run = {
      model: c.model,
      dataset: getDataset(c.dataset).id,
      preset: presetLabel(argsPreset(a)),
      seed: c.seed,
    };
    if (findLedgerRun(ledger, run) !== undefined) st.done.push(c);
    else if (await runFolderBusy(runDir(a))) st.running.push(c);
    else st.todo.push(c);
  }
  return st;
}

/** The cells of `s` neither in its ledger nor running now. */
export async function pendingCells(s: SweepArgs): Promise<Cell[]> {
  return (await sweepStatus(s)).todo;
}

/**
 * Permission flags of a cell's training process for ledger folder `out`: the train task's own
 * (deno.json) with its write list pointed at `.cache` and `out`. Each one must be held by this
 * process too, so a child never gets more than the sweep itself (a UserError names what is missing).
 */
export function childPermissions(out: string): string[] {
  const flags = ["--allow-read", `--allow-write=.cache,${out}`, "--allow-ffi", "--allow-env"];
  const trainTask = readTrainTaskFlags();
  if (trainTask) {
    for (const [i, f] of flags.entries()) {
      const name = f.split("=")[0];
      const own = trainTask.find((t) => t.split("=")[0] === name);
      // Keep the train task's scope (e.g. --allow-ffi=<sharp's library>), except for writes.
      if (own && name !== "--allow-write") flags[i] = own;
    }
  }
  for (const f of flags) {
    const [name, scope] = f.split(/=(.*)/s, 2) as [string, string | undefined];
    const kind = name.slice("--allow-".length) as "read" | "write" | "ffi" | "env";
    const targets = scope === undefined ? [undefined] : scope.split(",");
    for (const t of targets) {
      const desc: Deno.PermissionDescriptor = kind === "read" || kind === "write"
        ? { name: kind, path: t }
        : kind === "ffi"
        ? { name: "ffi", path: t }
        : { name: "env", variable: t };
      if (Deno.permissions.querySync(desc).state !== "granted") {
        throw new UserError(
          `a cell's training needs ${name}${t === undefined ? "" : `=${t}`}, which the sweep itself ` +
            `does not have${
              kind === "write" ? ` (deno task sweep may write only .cache and runs: use --out runs/...)` : ""
            }`,
        );
      }
    }
  }
  return flags;
}

/** The permission flags of deno.json's `train` task, or undefined when it cannot be read. */
function readTrainTaskFlags(): string[] | undefined {
  try {
    const json = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
    const task = json.tasks?.train;
    const cmd: string = typeof task === "string" ? task : task?.command;
    return cmd?.split(/\s+/).filter((w) => w.startsWith("--allow-"));
  } catch {
    return undefined;
  }
}

/** The argv of one cell's train process (`deno run … tasks/train.ts …`). */
export function cellCommand(c: Cell, s: SweepArgs): string[] {
  return [
    "run",
    ...childPermissions(s.out),
    "tasks/train.ts",
    "--model",
    c.model,
    "--dataset",
    c.dataset,
    "--seed",
    String(c.seed),
    "--resume",
    ...s.pass,
  ];
}

/** Quotes `a` for bash (single quotes unless it is plainly safe). */
const shellQuote = (a: string): string => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;

/**
 * A Slurm job-array script running `cells`, one per array task, from the repository root `repo`.
 * Each task prints its host, its cell and its GPU environment, then trains (train prints the WebGPU
 * adapter it got); a failing cell ends with a line naming it and its exit code. Throws for no cells:
 * an empty array (`--array=0--1`) is not a script.
 */
export function slurmScript(cells: Cell[], s: SweepArgs, repo: string): string {
  if (!cells.length) throw new Error("slurmScript: no cells");
  for (const p of [repo, s.out]) {
    if (CONTROL.test(p)) throw new UserError(`${JSON.stringify(p)}: a path with a control character`);
  }
  const outAbs = s.out.startsWith("/") ? s.out : `${repo}/${s.out}`;
  const cases = cells.map((c, i) =>
    `  ${i}) cell=${shellQuote(cellName(c))}; cmd=(deno ${cellCommand(c, s).map(shellQuote).join(" ")}) ;;`
  );
  const sbatch = Object.entries(s.sbatch).map(([k, v]) => `#SBATCH --${k}=${v}`);
  if (s.requeue) sbatch.push("#SBATCH --requeue");
  return `#!/usr/bin/env bash
# xscore sweep: ${cells.length} cells, generated by deno task sweep --emit slurm (change the #SBATCH
# lines with --sbatch KEY=VALUE). Submit with: sbatch <this file>. Rerunning the sweep regenerates
# it without the cells that are finished or running; unfinished cells resume their checkpoint.
#SBATCH --array=0-${cells.length - 1}
${sbatch.join("\n")}
#SBATCH --output=${outAbs}/slurm/%x-%A_%a.out
set -uo pipefail
cd ${shellQuote(repo)} || exit 2
i=\${SLURM_ARRAY_TASK_ID:?not an array task: submit this script with sbatch}
case "$i" in
${cases.join("\n")}
  *) echo "xscore: array index $i is not a cell of this script (0-${cells.length - 1})" >&2; exit 2 ;;
esac
echo "xscore task \${SLURM_ARRAY_JOB_ID:-?}_$i on $(hostname): cell $((i + 1))/${cells.length} $cell" \\
  "(restart \${SLURM_RESTART_COUNT:-0}, CUDA_VISIBLE_DEVICES=\${CUDA_VISIBLE_DEVICES:-unset})"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | sed 's/^/xscore gpu: /'
test -f vendor/tf.mjs || { echo "xscore cell $cell: vendor/tf.mjs missing (run deno task vendor once before sbatch)" >&2; exit 2; }
# scancel and preemption send SIGTERM: log it, pass it on to the training (if only this shell got
# it), and report the training's own exit code.
child=
trap 'echo "xscore cell $cell: got SIGTERM" >&2; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM
# All cells append to one ledger (${s.out}/results.csv) under a file lock; a requeued task resumes.
"\${cmd[@]}" &
child=$!
wait "$child"; rc=$?
# A trapped signal interrupts wait: wait again until the training has exited.
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
if [ "$rc" -ne 0 ]; then echo "xscore cell $cell failed: exit $rc" >&2; else echo "xscore cell $cell done"; fi
exit "$rc"
`;
}
