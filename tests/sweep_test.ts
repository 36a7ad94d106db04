/**
 * The sweep without a cluster: its flags (`--sbatch`, `--requeue`, control characters), the cells it
 * emits (not finished, not running), the permissions its children get, the waiting preparation
 * lock, and the emitted Slurm script run by bash itself, one array index at a time, with a `deno`
 * on PATH that records its argv: task i must run cell i, print its host and cell, and a failing
 * cell must leave a line naming it and its exit code. tests/slurm_test.ts runs the same under a
 * real Slurm.
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { runTask } from "./cli.ts";
import { UserError } from "../runtime/errors.ts";
import { flockHeld, tryFlock } from "../runtime/fs.ts";
import { appendLedgerRow, LEDGER_COLUMNS, type LedgerRecord } from "../train/ledger.ts";
import { lockRunFolder, RUN_LOCK, runDir } from "../train/run.ts";
import { withPrepareLock } from "../data/cache/mod.ts";
import {
  cellArgs,
  cellCommand,
  cellName,
  childPermissions,
  parseSweepArgs,
  SBATCH_DEFAULTS,
  slurmScript,
  sweepStatus,
} from "../train/sweep.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const decoder = new TextDecoder();

const base = (out: string, ...more: string[]) => [
  ...["--models", "shufflenet,tinynet", "--datasets", "fashion-mnist", "--seeds", "1,2"],
  ...["--epochs", "1", "--image-size", "16", "--out", out],
  ...more,
];

Deno.test("sweep flags: --sbatch overrides, drops and adds #SBATCH lines; --requeue; reserved keys and bad values refused", () => {
  const s = parseSweepArgs(
    base("runs/x", "--sbatch", "partition=gpu", "--sbatch=gres=", "--sbatch", "time=1:00:00"),
  )!;
  assertEquals(s.sbatch, {
    "job-name": "xscore-sweep",
    "cpus-per-task": "4",
    mem: "32G",
    time: "1:00:00",
    partition: "gpu",
  });
  assertEquals(s.requeue, false);
  assertEquals(s.pass, ["--epochs", "1", "--image-size", "16", "--out", "runs/x"]);
  const script = slurmScript(s.cells, { ...s, requeue: true }, "/repo");
  const lines = script.split("\n").filter((l) => l.startsWith("#SBATCH"));
  assertEquals(lines, [
    "#SBATCH --array=0-3",
    "#SBATCH --job-name=xscore-sweep",
    "#SBATCH --cpus-per-task=4",
    "#SBATCH --mem=32G",
    "#SBATCH --time=1:00:00",
    "#SBATCH --partition=gpu",
    "#SBATCH --requeue",
    "#SBATCH --output=/repo/runs/x/slurm/%x-%A_%a.out",
  ]);
  assertEquals(parseSweepArgs(base("runs/x", "--requeue"))!.requeue, true);
  assertEquals(parseSweepArgs(base("runs/x"))!.sbatch, { ...SBATCH_DEFAULTS });
  for (
    const bad of [
      ["--sbatch", "array=0-9"],
      ["--sbatch", "output=/tmp/x"],
      ["--sbatch", "partition"],
      ["--sbatch", "Partition=gpu"],
      ["--sbatch", "partition=gpu; rm -rf ~"],
      ["--sbatch", "comment=$(id)"],
      ["--requeue=yes"],
      ["--seed", "3"],
      ["--no-such-flag"],
    ]
  ) {
    const err = assertThrows(() => parseSweepArgs(base("runs/x", ...bad)));
    assert(err instanceof UserError, `${bad.join(" ")}: ${err}`);
  }
  // --help documents the defaults.
  assertEquals(parseSweepArgs(["--help"]), undefined);
});

Deno.test("sweep: control characters anywhere on the command line are refused (no script line injection)", () => {
  for (const evil of ["runs/a\nrm -rf ~", "runs/a\rb", "runs/\x1b[2Jx", "runs/a\x00b", "runs/a\x7fb"]) {
    const err = assertThrows(() => parseSweepArgs(base(evil)), UserError);
    assert(err.message.includes("control character") && !err.message.includes("\n"), err.message);
  }
  const err = assertThrows(() => parseSweepArgs(base("runs/x", "--data", "/d\n/e")), UserError);
  assert(err.message.includes("argument 14"), err.message);
  // A quote or a space is not a control character: it is quoted, and bash reads it back intact.
  const s = parseSweepArgs(base("runs/it's a dir"))!;
  assert(slurmScript(s.cells, s, "/r e'po").includes(`cd '/r e'\\''po' || exit 2`));
});

Deno.test("sweep: a cell's training gets the train task's permissions with writes limited to .cache and --out", () => {
  const s = parseSweepArgs(base("runs/sub"))!;
  const argv = cellCommand(s.cells[3], s);
  const json = JSON.parse(Deno.readTextFileSync(`${REPO}/deno.json`));
  const train = json.tasks.train.command.split(/\s+/).filter((w: string) => w.startsWith("--allow-"));
  const expected = train.map((f: string) =>
    f.startsWith("--allow-write") ? "--allow-write=.cache,runs/sub" : f
  );
  assertEquals(argv.slice(0, argv.indexOf("tasks/train.ts")), ["run", ...expected]);
  assertEquals(argv.slice(argv.indexOf("tasks/train.ts") + 1, argv.indexOf("--resume")), [
    ...["--model", "tinynet", "--dataset", "fashion-mnist", "--seed", "2"],
  ]);
  assertEquals(childPermissions("runs/sub"), expected);
});

Deno.test("sweep task: --out outside what the sweep may write is refused before any work; an empty matrix writes no script", async () => {
  const run = (...args: string[]) => runTask("sweep", ...args);
  const outside = await Deno.makeTempDir();
  const r = await run(...base(outside, "--emit", "slurm"));
  assertEquals(r.code, 2, r.err);
  assert(r.err.includes(`--allow-write=${outside}`) && r.err.includes("--out runs/"), r.err);
  assert(!r.err.includes("\n"), r.err);
  assertEquals([...Deno.readDirSync(outside)], [], "nothing written outside");
  await Deno.remove(outside);

  // Every cell finished: no script (an old one is removed), and the sweep says so.
  const out = `runs/.sweep-test-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const s = parseSweepArgs(base(out))!;
    for (const c of s.cells) await appendLedgerRow(`${REPO}/${out}/results.csv`, ledgerRow(c, s.pass));
    await Deno.writeTextFile(`${REPO}/${out}/sweep.slurm`, "#!/bin/sh\n");
    const e = await run(...base(out, "--emit", "slurm"));
    assertEquals(e.code, 0, e.err);
    assert(e.out.includes("4 already in") && e.out.includes("no cell to run: no script written"), e.out);
    assert(!(await Deno.stat(`${REPO}/${out}/sweep.slurm`).catch(() => undefined)), "old script removed");
    assert(!e.out.includes("--array"), e.out);
  } finally {
    await Deno.remove(`${REPO}/${out}`, { recursive: true }).catch(() => {});
  }
});

function ledgerRow(c: { model: string; dataset: string; seed: number }, pass: string[]): LedgerRecord {
  const a = cellArgs(c, pass);
  const dir = runDir(a);
  const label = dir.slice(dir.lastIndexOf("/") + 1);
  assert(label.includes("paper-epochs1-imageSize16"), label);
  return {
    ...(Object.fromEntries(LEDGER_COLUMNS.map((k) => [k, 0])) as LedgerRecord),
    model: c.model,
    dataset: c.dataset,
    seed: c.seed,
    preset: "paper;epochs=1;imageSize=16",
  };
}

Deno.test("sweep: cells in the ledger and cells whose run folder is locked are not emitted; a released lock is", async () => {
  const out = await Deno.makeTempDir();
  const s = parseSweepArgs(base(out))!;
  await appendLedgerRow(`${out}/results.csv`, ledgerRow(s.cells[0], s.pass));
  const busy = runDir(cellArgs(s.cells[2], s.pass));
  await Deno.mkdir(busy, { recursive: true });
  // A training of cell 2 holds its run folder (a separate open file: flock conflicts as between processes).
  const held = await tryFlock(`${busy}/${RUN_LOCK}`);
  assert(held);
  const st = await sweepStatus(s);
  assertEquals(st.done.map(cellName), ["shufflenet/fashion-mnist/s1"]);
  assertEquals(st.running.map(cellName), ["tinynet/fashion-mnist/s1"]);
  assertEquals(st.todo.map(cellName), ["shufflenet/fashion-mnist/s2", "tinynet/fashion-mnist/s2"]);
  // A second training of that cell is refused with one line naming the holder.
  const err = await lockRunFolder(busy, 200).then(() => undefined, (e) => e);
  assert(err instanceof UserError && err.message.includes(`pid ${Deno.pid}`), String(err));
  held.close();
  assert(!(await flockHeld(`${busy}/${RUN_LOCK}`)));
  assertEquals((await sweepStatus(s)).todo.map(cellName), [
    "shufflenet/fashion-mnist/s2",
    "tinynet/fashion-mnist/s1",
    "tinynet/fashion-mnist/s2",
  ]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("prepare lock: concurrent preparations of one dataset run one after the other; the second finds it ready", async () => {
  const dir = await Deno.makeTempDir();
  const cache = `${dir}/.cache/ds`;
  const events: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const prepare = (who: string) =>
    withPrepareLock(cache, async () => {
      events.push(`${who} in`);
      if (await Deno.stat(`${cache}/manifest.json`).catch(() => undefined)) {
        events.push(`${who} found it ready`);
        return;
      }
      if (who === "a") await gate;
      await Deno.mkdir(cache, { recursive: true });
      await Deno.writeTextFile(`${cache}/manifest.json`, "{}");
      events.push(`${who} prepared`);
    });
  const a = prepare("a");
  while (!events.length) await new Promise((r) => setTimeout(r, 10));
  const b = prepare("b");
  await new Promise((r) => setTimeout(r, 300));
  assertEquals(events, ["a in"], "b waits while a prepares");
  release();
  await Promise.all([a, b]);
  assertEquals(events, ["a in", "a prepared", "b in", "b found it ready"]);
  assert(!(await Deno.stat(`${cache}.lock`).catch(() => undefined)), "the lock file is removed after use");
  // A holder that never finishes: the waiter gives up after its timeout with one line.
  const held = await tryFlock(`${cache}.lock`);
  const err = await withPrepareLock(cache, () => Promise.resolve(), 200).then(() => undefined, (e) => e);
  assert(err instanceof UserError && err.message.includes("still being prepared"), String(err));
  held!.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("slurm script under bash: array task i runs cell i, prints host and cell, names a failed cell with its exit code, passes SIGTERM on", async () => {
  const dir = await Deno.makeTempDir();
  const repo = `${dir}/repo`, bin = `${dir}/bin`;
  await Deno.mkdir(`${repo}/vendor`, { recursive: true });
  await Deno.writeTextFile(`${repo}/vendor/tf.mjs`, "");
  await Deno.mkdir(bin);
  // Records its argv one per line; the training of seed 2 of tinynet fails with exit 7.
  await Deno.writeTextFile(
    `${bin}/deno`,
    `#!/usr/bin/env bash\nprintf 'ARG %s\\n' "$@"\n[[ " $* " == *" --model tinynet "*" --seed 2 "* ]] && exit 7\nexit 0\n`,
  );
  await Deno.chmod(`${bin}/deno`, 0o755);
  const s = parseSweepArgs(base("runs/o"))!;
  const script = `${dir}/sweep.slurm`;
  await Deno.writeTextFile(script, slurmScript(s.cells, s, repo));
  const host = decoder.decode((await new Deno.Command("hostname", { stdout: "piped" }).output()).stdout)
    .trim();
  for (const [i, c] of s.cells.entries()) {
    const r = await new Deno.Command("bash", {
      args: [script],
      env: {
        PATH: `${bin}:${Deno.env.get("PATH")}`,
        SLURM_ARRAY_TASK_ID: String(i),
        SLURM_ARRAY_JOB_ID: "77",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = decoder.decode(r.stdout), err = decoder.decode(r.stderr);
    const argv = out.split("\n").filter((l) => l.startsWith("ARG ")).map((l) => l.slice(4));
    assertEquals(argv, cellCommand(c, s), `task ${i}`);
    assert(out.includes(`xscore task 77_${i} on ${host}: cell ${i + 1}/4 ${cellName(c)} `), out);
    const fails = c.model === "tinynet" && c.seed === 2;
    assertEquals(r.code, fails ? 7 : 0, err);
    if (fails) assert(err.includes(`xscore cell ${cellName(c)} failed: exit 7`), err);
    else assert(out.includes(`xscore cell ${cellName(c)} done`), out);
  }
  // SIGTERM to the task's shell alone (scancel --batch, some preemptions): passed on to the training,
  // logged, and the task ends with the training's exit code. Here the training sleeps until killed.
  await Deno.writeTextFile(`${bin}/deno`, `#!/usr/bin/env bash\ntouch '${dir}/started'\nexec sleep 60\n`);
  const task = new Deno.Command("bash", {
    args: [script],
    env: { PATH: `${bin}:${Deno.env.get("PATH")}`, SLURM_ARRAY_TASK_ID: "0" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = task.stdout.getReader();
  let head = "";
  while (!head.includes("xscore task")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the task ended before its start line: ${head}`);
    head += decoder.decode(value);
  }
  // The start line comes before the training: wait until it runs (and bash has recorded its pid).
  while (!(await Deno.stat(`${dir}/started`).catch(() => undefined))) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
  task.kill("SIGTERM");
  reader.releaseLock();
  const [status, stderr] = await Promise.all([task.status, new Response(task.stderr).text()]);
  await task.stdout.cancel();
  assertEquals(status.code, 143, stderr);
  assert(stderr.includes(`xscore cell ${cellName(s.cells[0])}: got SIGTERM`), stderr);
  assert(stderr.includes(`xscore cell ${cellName(s.cells[0])} failed: exit 143`), stderr);

  const outside = await new Deno.Command("bash", {
    args: [script],
    env: { PATH: `${bin}:${Deno.env.get("PATH")}`, SLURM_ARRAY_TASK_ID: "4" },
    stderr: "piped",
  }).output();
  assertEquals(outside.code, 2);
  assertThrows(() => slurmScript([], s, repo), Error);
  await Deno.remove(dir, { recursive: true });
});
