import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { UserError } from "../runtime/errors.ts";
import { Rng } from "../runtime/rng.ts";
import { type AccuracyMatrix, computeXScore, normalize, observedBounds } from "../score/xscore.ts";
import { bootstrapDatasets, bootstrapSeeds, leaveOneDatasetOut, quantile } from "../score/bootstrap.ts";
import { xscoreModuleSource } from "../score/report/live.ts";
import { buildReportData, parseMetricsJsonl } from "../score/report/data.ts";
import { main as report } from "../tasks/report.ts";
import { main as score } from "../tasks/score.ts";

const quiet = { out: () => {}, err: () => {} };
type XsFns = { computeXScore: typeof computeXScore };

Deno.test("report panel: the page's xScore code is score/xscore.ts and computes identical results", () => {
  const page = new Function(xscoreModuleSource())() as XsFns;
  const rng = new Rng(7);
  for (let t = 0; t < 50; t++) {
    const models = 2 + rng.int(0, 8), datasets = 2 + rng.int(0, 6);
    const m: AccuracyMatrix = {
      models: Array.from({ length: models }, (_, i) => `m${i}`),
      datasets: Array.from({ length: datasets }, (_, j) => `d${j}`),
      values: Array.from(
        { length: models },
        () => Array.from({ length: datasets }, () => rng.int(0, 40) / 4 + 50),
      ),
    };
    const b = observedBounds(m);
    if (b.min.some((lo, j) => !(b.max[j] > lo))) continue;
    const lambda = rng.int(0, 100) / 100;
    assertEquals(page.computeXScore(m, { lambda }), computeXScore(m, { lambda }));
    const fixed = { min: b.min.map((v) => v - 1), max: b.max.map((v) => v + 2) };
    assertEquals(
      page.computeXScore(m, { lambda, bounds: fixed }),
      computeXScore(m, { lambda, bounds: fixed }),
    );
  }
});

Deno.test("bootstrap: quantile is numpy's linear (type 7) percentile", () => {
  // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
  const xs = [1, 2, 3, 4];
  [[0, 1], [0.25, 1.75], [0.5, 2.5], [0.9, 3.7], [1, 4]].forEach(([q, v]) =>
    assertAlmostEquals(quantile(xs, q), v, 1e-12)
  );
  assertEquals(quantile([5], 0.3), 5);
  assertThrows(() => quantile([], 0.5), RangeError);
});

// Two datasets: a replicate draws (d0,d0), (d1,d1) or both, so xScore ∈ {Â0, Â1, full}; with 1000
// replicates each outcome occurs hundreds of times and the 2.5/97.5% quantiles are the extremes.
Deno.test("bootstrap over datasets: two datasets give exactly the three possible outcomes as CI ends", () => {
  const m: AccuracyMatrix = {
    models: ["a", "b", "c"],
    datasets: ["x", "y"],
    values: [[90, 50], [80, 70], [70, 60]],
  };
  const lambda = 0.5;
  const n = normalize(m, observedBounds(m)); // a: [1, 0], b: [0.5, 1], c: [0, 0.5]
  assertEquals(n, [[1, 0], [0.5, 1], [0, 0.5]]);
  const full = computeXScore(m, { lambda }).scores.map((s) => s.xscore);
  const r = bootstrapDatasets(m, { lambda, replicates: 1000, seed: 3 });
  assertEquals(r.replicates, 1000);
  n.forEach((row, i) => {
    const outcomes = [row[0], row[1], full[i]];
    assertAlmostEquals(r.xscore[i].lo, Math.min(...outcomes), 1e-12);
    assertAlmostEquals(r.xscore[i].hi, Math.max(...outcomes), 1e-12);
  });
  // a ranks first on (x,x), b on (y,y) and on both (b: 0.75 − 0.5·0.125 beats a: 0.5 − 0.5·0.5).
  assertAlmostEquals(r.top1[0] + r.top1[1] + r.top1[2], 1, 1e-12);
  assertAlmostEquals(r.top1[2], 0, 0);
  assert(Math.abs(r.top1[0] - 0.25) < 0.05 && Math.abs(r.top1[1] - 0.75) < 0.05, `top1 ${r.top1}`);
});

Deno.test("bootstrap over seeds: none without repeated seeds; identical seeds give a zero-width interval", () => {
  const models = ["a", "b", "c"], datasets = ["x", "y"];
  const single = [[[90], [50]], [[80], [70]], [[70], [60]]];
  assertEquals(bootstrapSeeds(models, datasets, single, { lambda: 0.5 }), undefined);
  const same = single.map((row) => row.map((c) => [c[0], c[0], c[0]]));
  const r = bootstrapSeeds(models, datasets, same, { lambda: 0.5, replicates: 200 })!;
  const point = computeXScore({ models, datasets, values: single.map((row) => row.map((c) => c[0])) }, {
    lambda: 0.5,
  });
  point.scores.forEach((s, i) => {
    assertAlmostEquals(r.xscore[i].lo, s.xscore, 1e-12);
    assertAlmostEquals(r.xscore[i].hi, s.xscore, 1e-12);
    assertEquals(r.rank[i], { lo: s.rank, hi: s.rank });
  });
  // Seeds 60 and 100 for b on y: b's cell mean is 60, 80 or 100 in a replicate, so its xScore spans
  // what those three matrices give.
  const varied = single.map((row) => row.map((c) => [c[0]]));
  varied[1][1] = [60, 100];
  const v = bootstrapSeeds(models, datasets, varied, { lambda: 0.5, replicates: 1000, seed: 5 })!;
  const at = (y: number) =>
    computeXScore({ models, datasets, values: [[90, 50], [80, y], [70, 60]] }, { lambda: 0.5 }).scores[1]
      .xscore;
  const outcomes = [at(60), at(80), at(100)];
  assertAlmostEquals(v.xscore[1].lo, Math.min(...outcomes), 1e-12);
  assertAlmostEquals(v.xscore[1].hi, Math.max(...outcomes), 1e-12);
});

Deno.test("leave one dataset out: ranks per fold and stability, worked by hand", () => {
  // λ = 0. Â: a [1, 0, 1], b [0, 1, 0.5], c [0.5, 0.5, 0] → G a 2/3, b 1/2, c 1/3: ranks 1, 2, 3.
  // without x: a 1/2, b 3/4, c 1/4 → 2,1,3; without y: a 1, b 1/4, c 1/4 → 1,2,2; without z: a 1/2, b 1/2, c 1/2 → 1,1,1.
  const m: AccuracyMatrix = {
    models: ["a", "b", "c"],
    datasets: ["x", "y", "z"],
    values: [[90, 10, 40], [70, 30, 30], [80, 20, 20]],
  };
  const r = leaveOneDatasetOut(m, { lambda: 0 })!;
  assertEquals(r.fullRank, [1, 2, 3]);
  assertEquals(r.folds, [{ left: "x", rank: [2, 1, 3] }, { left: "y", rank: [1, 2, 2] }, {
    left: "z",
    rank: [1, 1, 1],
  }]);
  assertEquals(r.stability, [2 / 3, 1 / 3, 1 / 3]);
  assertEquals(r.range, [{ lo: 1, hi: 2 }, { lo: 1, hi: 2 }, { lo: 1, hi: 3 }]);
  assertEquals(
    leaveOneDatasetOut({ ...m, datasets: ["x", "y"], values: m.values.map((v) => v.slice(0, 2)) }, {
      lambda: 0,
    }),
    undefined,
  );
});

Deno.test("report data: Table 3 alone gives deno task score's xScore and Imagenette correlation", async () => {
  const d = await buildReportData({
    files: [],
    lambda: 0.5,
    bounds: "observed",
    replicates: 100,
    seed: 1,
    command: "t",
    version: "t",
  });
  const out = await Deno.makeTempDir();
  try {
    const s = (await score(["--imagenette-correlation", "--out", out], quiet))!;
    assert(d.paperOnly);
    assertEquals(d.entries.length, 11);
    assertEquals(d.datasets.length, 7);
    assertEquals(d.scored!.result, s.result);
    assertEquals(d.imagenette!.pearson, s.correlation!.pearson);
    assertEquals(d.imagenette!.spearman, s.correlation!.spearman);
    assertEquals(d.scored!.seeds, null);
    assertEquals(d.curves, []);
    // Every cell is Table 3's value, traced to its line of the shipped file.
    const cm = d.entries.indexOf("convmixer"), c10 = d.datasets.indexOf("cifar10");
    assertEquals(d.cells[cm][c10]!.mean, 94.52);
    assertEquals(d.rows[d.cells[cm][c10]!.rows[0]].source, "data/reference/paper-table3.csv:2");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("report data: seeds as mean ± sd, Table 3 difference only under the paper's protocol, presets split", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ledger = `${dir}/results.csv`;
    await Deno.writeTextFile(
      ledger,
      "model,dataset,accuracy,preset,seed,epochs,image_size,adapter,version,finished_at\n" +
        "mobilenet,cifar10,93.17,paper,1,100,224,gpu,v1,2026-01-01\n" +
        "mobilenet,cifar10,95.17,paper,2,100,224,gpu,v1,2026-01-02\n" +
        "convnext,cifar10,50,paper-epochs2,1,2,32,cpu,v1,2026-01-03\n" +
        "convnext,cifar10,60,paper,1,100,224,gpu,v1,2026-01-04\n",
    );
    const d = await buildReportData({
      files: [ledger],
      lambda: 0.5,
      bounds: "observed",
      replicates: 50,
      seed: 1,
      command: "t",
      version: "t",
    });
    assertEquals(d.entries, ["mobilenet", "convnext [paper-epochs2]", "convnext [paper]"]);
    const mob = d.cells[0][0]!;
    assertAlmostEquals(mob.mean, 94.17, 1e-9);
    assertAlmostEquals(mob.sd!, Math.SQRT2, 1e-9); // sd of {93.17, 95.17}
    assertEquals(mob.paper, 94.17); // Table 3: MobileNet CIFAR-10
    assertAlmostEquals(mob.diff!, 0, 1e-9);
    const short = d.cells[1][0]!;
    assertEquals(short.diff, null);
    assert(/paper-epochs2/.test(short.diffNote));
    assertAlmostEquals(d.cells[2][0]!.diff!, 60 - 91.97, 1e-9);
    assertEquals(d.rows[short.rows[0]].source, `${ledger}:4`);
    assertEquals(d.scored, null);
    assert(/at least 2 datasets/.test(d.scoredNote), d.scoredNote);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report data: metrics.jsonl tolerates a truncated last line, not a corrupt one", () => {
  const ok = '{"kind":"step","epoch":1,"step":5,"steps_per_epoch":10,"loss":2.5,"lr":0.001}\n' +
    '{"kind":"epoch","epoch":1,"train_loss":2.4,"test_accuracy":31.5,"test_loss":2.2,"test_top5":80}\n{"kind":"st';
  const r = parseMetricsJsonl(ok, "m.jsonl");
  assertEquals(r.steps.length, 1);
  assertEquals(r.steps[0].x, 0.5);
  assertEquals(r.epochs[0].testTop5, 80);
  assertThrows(() => parseMetricsJsonl('{"kind":"st\n{"kind":"epoch"}\n', "m.jsonl"), UserError);
});

Deno.test("report task: Table 3 writes a self-contained page and report.md; bad input writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = (await report(["--out", `${dir}/r`, "--bootstrap", "50"], () => {}))!;
    assertEquals(run.written.map((p) => p.slice(dir.length + 3)).sort(), [
      "imagenette-vs-xscore.svg",
      "index.html",
      "ranking.svg",
      "report.md",
    ]);
    const html = await Deno.readTextFile(`${dir}/r/index.html`);
    assert(
      !/<script[^>]+src=|<link[^>]+href=|<img|@import|url\(http/i.test(html),
      "the page loads nothing from elsewhere",
    );
    const md = await Deno.readTextFile(`${dir}/r/report.md`);
    assert(md.includes("| convmixer | 94.52 | 89.25 |"), "Table 3 row in report.md");
    assert(md.includes("| 1 | efficientnet | 0.964 | 0.005 | 0.962 |"), "Table 4's top row");
    await assertRejects(() => report(["--out", `${dir}/bad`, "--lambda", "2"], () => {}), UserError);
    await assertRejects(
      () => report(["--results", `${dir}/missing.csv`, "--out", `${dir}/bad`], () => {}),
      UserError,
    );
    await assertRejects(() => Deno.stat(`${dir}/bad`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report and eval CLIs: --help exits 0 with the usage, a bad flag is one line (exit 2), as deno.json runs them", async () => {
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks as Record<string, { command: string }>;
  const run = async (task: string, ...args: string[]) => {
    const words = tasks[task].command.split(/\s+/).slice(1);
    const p = await new Deno.Command("deno", {
      args: [...words, ...args],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    })
      .output();
    return { code: p.code, out: new TextDecoder().decode(p.stdout), err: new TextDecoder().decode(p.stderr) };
  };
  for (const task of ["report", "eval"]) {
    const help = await run(task, "--help");
    assertEquals(help.code, 0, help.err);
    assert(help.out.startsWith(`deno task ${task}`), help.out);
    const bad = await run(task, "--frobnicate");
    assertEquals(bad.code, 2, bad.err);
    assertEquals(bad.err.split("\n")[0], "error: unknown flag --frobnicate");
    assert(!/\n\s+at .*:\d+:\d+/.test(bad.err), bad.err);
  }
  const lambda = await run("report", "--lambda", "1.5");
  assertEquals([lambda.code, lambda.err.split("\n")[0]], [
    2,
    'error: --lambda "1.5": expected a number in [0, 1] (paper Eq. 3)',
  ]);
  const out = await run("report", "--out", "/tmp/xs-not-allowed");
  assertEquals(out.code, 2);
  assert(
    out.err.startsWith("error: --out /tmp/xs-not-allowed: deno task report may write only under results/"),
    out.err,
  );
  const missing = await run(
    "eval",
    "--weights",
    "nope.safetensors",
    "--model",
    "tinynet",
    "--dataset",
    "fashion-mnist",
  );
  assertEquals([missing.code, missing.err.split("\n")[0]], [2, "error: nope.safetensors: file not found"]);
});
