/**
 * The sweep under a real Slurm (CI starts a single-node cluster with .ci/slurm-up.sh): `deno task
 * sweep --emit slurm` for 2 models × Fashion-MNIST × 2 seeds at 16 px, submitted with sbatch. While
 * one array task trains, a rerun of the sweep must not emit its cell (its run folder is locked);
 * that task is then cancelled with scancel; the other three must leave exactly one ledger row each,
 * for their own cell (each row's model and seed, each log's cell and run folder); a rerun must emit
 * only the cancelled cell, and after it the ledger holds the four cells once each, which the scorer's
 * reader takes as it is (two seeds averaged per model, no merging).
 *
 * Skipped with a message when sbatch is not on PATH or no controller answers, unless
 * XS_REQUIRE_SLURM=1 (CI), which turns that into a failure.
 */
import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "./assert.ts";
import { cellArgs, cellName } from "../train/sweep.ts";
import { runDir } from "../train/run.ts";
import { flockHeld } from "../runtime/fs.ts";
import { aggregateSeeds, readLedger } from "../score/ledger.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const FASHION_MNIST = "/usr/share/datasets/fashion-mnist";
const decoder = new TextDecoder();

async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd, {
    args,
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: r.code, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

/** Why the Slurm test cannot run here, or undefined when it can. */
async function unavailable(): Promise<string | undefined> {
  const onPath = await Promise.all(
    (Deno.env.get("PATH") ?? "").split(":").map((d) =>
      Deno.stat(`${d}/sbatch`).then(() => true, () => false)
    ),
  );
  if (!onPath.some(Boolean)) return "sbatch is not on PATH";
  for (const c of ["sbatch", "squeue", "scancel", "sinfo"]) {
    if (Deno.permissions.querySync({ name: "run", command: c }).state !== "granted") {
      return `no permission to run ${c} (deno task test grants it)`;
    }
  }
  const info = await sh("sinfo", ["-h", "-o", "%T"]).catch((e) => ({ code: 1, out: "", err: String(e) }));
  if (info.code !== 0 || !/idle|mixed|allocated/.test(info.out)) {
    return `sbatch is on PATH but no Slurm node is up (sinfo: ${
      (info.err || info.out).trim() || "no nodes"
    }); ` +
      `start one with .ci/slurm-up.sh`;
  }
  if (!(await Deno.stat(FASHION_MNIST).catch(() => undefined))) return `${FASHION_MNIST} is missing`;
  return undefined;
}

const why = await unavailable();
const required = Deno.env.get("XS_REQUIRE_SLURM") === "1";
if (why && !required) console.warn(`slurm_test: skipped: ${why} (XS_REQUIRE_SLURM=1 makes this a failure)`);

const MODELS = ["tinynet", "shufflenet"]; // the slowest first: index 1 is still training when cancelled
const SEEDS = [1, 2];
const DATASET = "fashion-mnist";

async function sweep(out: string): Promise<{ log: string; cells: string[] }> {
  const r = await sh("deno", [
    ...["task", "sweep", "--emit", "slurm", "--models", MODELS.join(","), "--datasets", DATASET],
    ...["--seeds", SEEDS.join(","), ...sweepTrainFlags(), "--out", out],
    // The CI node has no GPU and 2 CPUs: one CPU per task, no memory or GPU request.
    ...["--sbatch", "gres=", "--sbatch", "mem=", "--sbatch", "cpus-per-task=1", "--sbatch", "time=15"],
  ]);
  assertEquals(r.code, 0, `sweep failed:\n${r.out}\n${r.err}`);
  const script = await Deno.readTextFile(`${REPO}/${out}/sweep.slurm`).catch(() => "");
  const cases = [...script.matchAll(/^ {2}(\d+)\) cell=([^;]+);/gm)];
  assertEquals(cases.map((m) => Number(m[1])), cases.map((_, i) => i), "array indices 0..n-1");
  const cells = cases.map((m) => m[2]);
  if (cells.length) {
    assert(script.includes(`#SBATCH --array=0-${cells.length - 1}\n`), script);
    assert(!/^#SBATCH --(gres|mem)=/m.test(script), "dropped #SBATCH defaults stay dropped");
  }
  return { log: r.out, cells };
}

async function submit(out: string): Promise<string> {
  const r = await sh("sbatch", ["--parsable", `${out}/sweep.slurm`]);
  assertEquals(r.code, 0, `sbatch failed: ${r.err}`);
  return r.out.trim().split(";")[0];
}

async function waitFor(what: string, timeoutS: number, done: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + timeoutS * 1000;
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutS} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function jobGone(job: string): Promise<boolean> {
  const r = await sh("squeue", ["-h", "-j", job, "-o", "%i %T"]);
  // Once Slurm forgets a finished job, squeue reports it as invalid.
  return r.code === 0 ? r.out.trim() === "" : /Invalid job id/i.test(r.err);
}

interface Row {
  model: string;
  dataset: string;
  seed: string;
  preset: string;
  accuracy: string;
  epochs: string;
  image_size: string;
  adapter: string;
}

async function ledger(out: string): Promise<Row[]> {
  const text = await Deno.readTextFile(`${REPO}/${out}/results.csv`).catch(() => "");
  return text ? parse(text, { columns: true }) as Row[] : [];
}

Deno.test({
  name:
    "slurm: a 4-cell sweep through sbatch, one task cancelled mid-run and re-emitted alone, 4 ledger rows",
  ignore: why !== undefined && !required,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (why) throw new Error(`XS_REQUIRE_SLURM=1 but the Slurm test cannot run: ${why}`);
    const out = `runs/slurm-test-${crypto.randomUUID().slice(0, 8)}`;
    // The node's host name as Slurm knows it (the tasks print theirs with `hostname`).
    const hosts = (await sh("sinfo", ["-h", "-N", "-o", "%n"])).out.trim().split(/\s+/);
    const matrix = MODELS.flatMap((model) => SEEDS.map((seed) => ({ model, dataset: DATASET, seed })));
    const names = matrix.map(cellName);
    const jobs: string[] = [];
    try {
      // 1. All four cells emitted, in matrix order, and submitted.
      const first = await sweep(out);
      assertEquals(first.cells, names);
      const job = await submit(out);
      jobs.push(job);

      // 2. Cell 1 is training (its run folder is locked): a rerun of the sweep must not emit it.
      const victim = matrix[1];
      const victimDir = `${REPO}/${runDir(cellArgs(victim, ["--out", out, ...sweepTrainFlags()]))}`;
      await waitFor(
        `${cellName(victim)} to start training`,
        180,
        () => flockHeld(`${victimDir}/.running.lock`),
      );
      const during = await sweep(out);
      assert(!during.cells.includes(cellName(victim)), `running cell re-emitted: ${during.cells}`);
      assert(during.log.includes(`not emitted: ${cellName(victim)}`), during.log);

      // 3. Cancel that task mid-run; the others finish.
      const cancel = await sh("scancel", [`${job}_1`]);
      assertEquals(cancel.code, 0, cancel.err);
      await waitFor(`job ${job} to end`, 300, () => jobGone(job));
      const after = await ledger(out);
      const expected3 = names.filter((n) => n !== cellName(victim)).sort();
      assertEquals(after.map((r) => `${r.model}/${r.dataset}/s${r.seed}`).sort(), expected3);
      const victimLog = await Deno.readTextFile(`${REPO}/${out}/slurm/xscore-sweep-${job}_1.out`);
      assert(victimLog.includes(`xscore cell ${cellName(victim)} failed: exit `), victimLog);
      assert(!(await flockHeld(`${victimDir}/.running.lock`)), "a cancelled task's run lock is released");

      // 4. The rerun emits only the cancelled cell; after it the ledger holds each cell once.
      const again = await sweep(out);
      assertEquals(again.cells, [cellName(victim)]);
      const job2 = await submit(out);
      jobs.push(job2);
      await waitFor(`job ${job2} to end`, 240, () => jobGone(job2));
      const rows = await ledger(out);
      assertEquals(rows.length, 4, JSON.stringify(rows));
      assertEquals(rows.map((r) => `${r.model}/${r.dataset}/s${r.seed}`).sort(), [...names].sort());
      for (const r of rows) {
        const acc = Number(r.accuracy);
        assert(acc >= 0 && acc <= 100, `accuracy ${r.accuracy}`);
        assertEquals([r.epochs, r.image_size], ["1", "16"]);
        assert(r.preset.startsWith("paper;") && r.preset.includes("imageSize=16"), r.preset);
        assert(r.adapter.length > 0, "adapter recorded");
      }

      // The array's one ledger is the scorer's input as it stands: its reader takes it and
      // averages the two seeds of each model (the configurations agree, so nothing is refused).
      const cells = aggregateSeeds(await readLedger(`${REPO}/${out}/results.csv`));
      assertEquals(
        cells.map((c) => [c.model, c.dataset, c.n]).sort(),
        MODELS.map((m) => [m, DATASET, 2]).sort(),
      );
      for (const c of cells) {
        const accs = rows.filter((r) => r.model === c.model).map((r) => Number(r.accuracy));
        assert(Math.abs(c.accuracy - (accs[0] + accs[1]) / 2) < 1e-9, `${c.model}: ${c.accuracy} vs ${accs}`);
      }

      // 5. Each task ran its own cell: its log names host, cell and adapter, and trained in that
      //    cell's run folder (task i of the first array = matrix[i]; the rerun's task 0 = the victim).
      const logs: [string, number, typeof matrix[number]][] = [
        [`${job}_0`, 0, matrix[0]],
        [`${job}_2`, 2, matrix[2]],
        [`${job}_3`, 3, matrix[3]],
        [`${job2}_0`, 0, victim],
      ];
      for (const [id, index, cell] of logs) {
        const log = await Deno.readTextFile(`${REPO}/${out}/slurm/xscore-sweep-${id}.out`);
        const total = id.startsWith(job2) ? 1 : 4;
        const start = log.match(/^xscore task \S+ on (\S+): cell (\d+)\/(\d+) (\S+) /m);
        assert(start, `no start line:\n${log}`);
        assert(hosts.includes(start[1]), `host ${start[1]} is not a node (${hosts})`);
        assertEquals(start.slice(2), [String(index + 1), String(total), cellName(cell)]);
        assert(/adapter \S/.test(log), `no adapter line:\n${log}`);
        const dir = runDir(cellArgs(cell, ["--out", out, ...sweepTrainFlags()]));
        assert(
          log.includes(`run dir ${dir}`),
          `task ${id} did not train ${cellName(cell)} (${dir}):\n${log}`,
        );
        assert(log.includes(`xscore cell ${cellName(cell)} done`), log);
      }
    } finally {
      for (const j of jobs) await sh("scancel", [j]);
      await Deno.remove(`${REPO}/${out}`, { recursive: true }).catch(() => {});
    }
  },
});

function sweepTrainFlags(): string[] {
  return [
    ...["--epochs", "1", "--train-limit", "16", "--test-limit", "16"],
    ...["--image-size", "16", "--batch-size", "16", "--log-every", "1"],
  ];
}
