/**
 * `deno task sweep --models a,b --datasets x,y [--seeds 1,2,3] [--emit slurm] [train flags]`:
 * trains every (model, dataset, seed) cell as its own `tasks/train.ts` process (fresh GPU state per
 * cell), skipping cells already in `OUT/results.csv` or running now, and resuming unfinished ones,
 * so a sweep can be stopped and rerun at any time. `--emit slurm` writes a Slurm job-array script
 * instead (one cell per array task; see docs/slurm.md). The logic lives in train/sweep.ts.
 *
 * @module
 */
import { runMain, UserError } from "../runtime/errors.ts";
import { exists, writeFileAtomic } from "../runtime/fs.ts";
import {
  cellCommand,
  cellName,
  childPermissions,
  parseSweepArgs,
  slurmScript,
  SWEEP_USAGE,
  sweepStatus,
} from "../train/sweep.ts";

export {
  type Cell,
  cellCommand,
  parseSweepArgs,
  pendingCells,
  slurmScript,
  type SweepArgs,
} from "../train/sweep.ts";

async function main(): Promise<void> {
  const s = parseSweepArgs(Deno.args);
  if (!s) {
    console.log(SWEEP_USAGE);
    return;
  }
  // Refuse a ledger folder the sweep may not write before any work (children get no more than this).
  childPermissions(s.out);
  const st = await sweepStatus(s);
  console.log(
    `sweep: ${s.cells.length} cells, ${st.done.length} already in ${s.out}/results.csv, ` +
      `${st.running.length} running now, ${st.todo.length} to run`,
  );
  for (const c of st.running) console.log(`  running now (run folder locked), not emitted: ${cellName(c)}`);
  if (s.emit === "slurm") {
    const path = `${s.out}/sweep.slurm`;
    if (!st.todo.length) {
      // An old script would only rerun cells that are done or running: remove it.
      const stale = await exists(path);
      if (stale) await Deno.remove(path);
      console.log(`no cell to run: no script written${stale ? ` (removed the old ${path})` : ""}`);
      return;
    }
    await Deno.mkdir(`${s.out}/slurm`, { recursive: true });
    await writeFileAtomic(path, slurmScript(st.todo, s, Deno.cwd()));
    console.log(
      `wrote ${path} (${st.todo.length} array tasks: ${st.todo.map(cellName).join(", ")}); ` +
        `submit with: sbatch ${path}`,
    );
    return;
  }
  const failed: string[] = [];
  for (const [i, c] of st.todo.entries()) {
    console.log(`\n=== cell ${i + 1}/${st.todo.length}: ${cellName(c)}`);
    const status = await new Deno.Command("deno", {
      args: cellCommand(c, s),
      stdout: "inherit",
      stderr: "inherit",
    })
      .spawn().status;
    if (!status.success) {
      console.error(`xscore cell ${cellName(c)} failed: exit ${status.code}`);
      failed.push(`${cellName(c)} (exit ${status.code})`);
    }
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
