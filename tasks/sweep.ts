/**
 * `deno task sweep --models a,b --datasets x,y [--seeds 1,2,3] [--emit slurm] [train flags]`:
 * trains every (model, dataset, seed) cell as its own `tasks/train.ts` process (fresh GPU state per
 * cell), skipping cells already in `OUT/results.csv` and resuming unfinished ones, so a sweep can
 * be stopped and rerun at any time. `--emit slurm` writes a Slurm job-array script instead (one
 * cell per array task; the ledger's file lock makes concurrent appends safe).
 *
 * @module
 */
import { runMain, UserError } from "../runtime/errors.ts";
import { writeFileAtomic } from "../runtime/fs.ts";
import { readLedgerRecords } from "../train/ledger.ts";
import { applyOverrides, buildPreset, presetLabel } from "../train/presets.ts";
import { parseTrainArgs } from "../train/run.ts";
import "../models/zoo.ts";
import { modelSpec } from "../models/registry.ts";
import { getDataset } from "../data/datasets.ts";

const USAGE = `usage: deno task sweep --models a,b --datasets x,y [--seeds 1,2,3] [--emit slurm] [train flags]

  --models LIST      comma-separated model ids
  --datasets LIST    comma-separated dataset ids
  --seeds LIST       comma-separated seeds (default 1)
  --emit slurm       write OUT/sweep.slurm (a job array, one cell per task) instead of running
  train flags        passed to every cell: --preset, --epochs, --batch-size, --image-size,
                     --train-limit, --lr-max, --kernels, --data, --out (default runs)`;

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
  out: string;
}

const list = (v: string | undefined) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);

/** Parses the sweep command line; undefined for --help. */
export function parseSweepArgs(args: string[]): SweepArgs | undefined {
  const own: Record<string, string> = {};
  const pass: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "--help") return undefined;
    if (["--models", "--datasets", "--seeds", "--emit"].includes(flag)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UserError(`${flag} needs a value`);
      own[flag.slice(2)] = v;
    } else if (["--model", "--dataset", "--seed", "--resume"].includes(flag)) {
      throw new UserError(`${flag} is set per cell by the sweep; use --models/--datasets/--seeds`);
    } else {
      pass.push(args[i]);
    }
  }
  const models = list(own.models), datasets = list(own.datasets), seeds = list(own.seeds ?? "1").map(Number);
  if (!models.length || !datasets.length) {
    throw new UserError(`--models and --datasets are required\n${USAGE}`);
  }
  models.forEach(modelSpec);
  datasets.forEach(getDataset);
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new UserError(`--seeds ${own.seeds}: expected integers >= 0`);
  }
  if (own.emit !== undefined && own.emit !== "slurm") {
    throw new UserError(`--emit ${own.emit}: only "slurm" is supported`);
  }
  // Validates the pass-through flags exactly as each cell will parse them.
  const probe = parseTrainArgs([...pass, "--model", models[0], "--dataset", datasets[0]])!;
  const cells = models.flatMap((model) =>
    datasets.flatMap((dataset) => seeds.map((seed) => ({ model, dataset, seed })))
  );
  return { cells, emit: own.emit as "slurm" | undefined, pass, out: probe.out };
}

/** The ledger key of a cell under the pass-through flags: model, dataset, seed and preset label. */
function cellKey(c: Cell, pass: string[]): string {
  const a = parseTrainArgs([...pass, "--model", c.model, "--dataset", c.dataset, "--seed", String(c.seed)])!;
  const label = presetLabel(applyOverrides(buildPreset(a.preset, c.model, c.dataset), a.overrides));
  return `${c.model}|${c.dataset}|${c.seed}|${label}`;
}

/** The cells of `s` not yet in its ledger. */
export async function pendingCells(s: SweepArgs): Promise<Cell[]> {
  const done = new Set(
    (await readLedgerRecords(`${s.out}/results.csv`)).map((r) =>
      `${r.model}|${r.dataset}|${r.seed}|${r.preset}`
    ),
  );
  return s.cells.filter((c) => !done.has(cellKey(c, s.pass)));
}

/** The argv of one cell's train process (`deno run … tasks/train.ts …`). */
export function cellCommand(c: Cell, s: SweepArgs): string[] {
  return [
    "run",
    "--allow-read",
    `--allow-write=.cache,${s.out}`,
    "--allow-ffi",
    "--allow-env",
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

const shellQuote = (a: string) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;

/** A Slurm job-array script running `cells`, one per array task, from the repository root. */
export function slurmScript(cells: Cell[], s: SweepArgs, repo: string): string {
  const logs = s.out.startsWith("/") ? `${s.out}/slurm` : `${repo}/${s.out}/slurm`;
  const lines = cells.map((c) => `  ${shellQuote(cellCommand(c, s).map(shellQuote).join(" "))}`);
  return `#!/usr/bin/env bash
# xscore sweep: ${cells.length} cells (generated by deno task sweep --emit slurm).
# Submit with: sbatch ${s.out}/sweep.slurm   Rerunning the sweep regenerates it without finished cells.
#SBATCH --job-name=xscore-sweep
#SBATCH --array=0-${cells.length - 1}
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=32G
#SBATCH --time=72:00:00
#SBATCH --output=${logs}/%x-%A_%a.out
set -euo pipefail
cd ${shellQuote(repo)}
test -f vendor/tf.mjs || { echo "vendor/tf.mjs missing: run deno task vendor once before sbatch" >&2; exit 2; }
CELLS=(
${lines.join("\n")}
)
# Each cell resumes its own checkpoint if the task is requeued; all cells append to one ledger
# (${s.out}/results.csv) under a file lock.
eval "deno \${CELLS[\$SLURM_ARRAY_TASK_ID]}"
`;
}

async function main(): Promise<void> {
  const s = parseSweepArgs(Deno.args);
  if (!s) {
    console.log(USAGE);
    return;
  }
  const todo = await pendingCells(s);
  console.log(
    `sweep: ${s.cells.length} cells, ${
      s.cells.length - todo.length
    } already in ${s.out}/results.csv, ${todo.length} to run`,
  );
  if (s.emit === "slurm") {
    const path = `${s.out}/sweep.slurm`;
    await Deno.mkdir(`${s.out}/slurm`, { recursive: true });
    await writeFileAtomic(path, slurmScript(todo, s, Deno.cwd()));
    console.log(`wrote ${path} (${todo.length} array tasks); submit with: sbatch ${path}`);
    return;
  }
  const failed: string[] = [];
  for (const [i, c] of todo.entries()) {
    console.log(`\n=== cell ${i + 1}/${todo.length}: ${c.model} on ${c.dataset}, seed ${c.seed}`);
    const status = await new Deno.Command("deno", {
      args: cellCommand(c, s),
      stdout: "inherit",
      stderr: "inherit",
    })
      .spawn().status;
    if (!status.success) failed.push(`${c.model}/${c.dataset}/s${c.seed} (exit ${status.code})`);
  }
  if (failed.length) {
    throw new UserError(
      `${failed.length} cell(s) failed: ${failed.join(", ")}; rerun the sweep to resume them`,
      1,
    );
  }
  console.log(`sweep done: ledger ${s.out}/results.csv`);
}

if (import.meta.main) await runMain(main);
