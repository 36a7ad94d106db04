import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { UserError } from "../runtime/errors.ts";
import { runTask } from "./cli.ts";
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

Deno.test("report data: seeds as mean ± sd, Table 3 difference only under the paper's protocol, presets refused as score refuses them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ledger = `${dir}/results.csv`;
    const header = "model,dataset,accuracy,preset,seed,epochs,image_size,adapter,version,finished_at\n";
    await Deno.writeTextFile(
      ledger,
      header +
        "mobilenet,cifar10,93.17,paper,1,100,224,gpu,v1,2026-01-01\n" +
        "mobilenet,cifar10,95.17,paper,2,100,224,gpu,v1,2026-01-02\n" +
        "shufflenet,cifar10,50,paper-epochs2,1,2,32,cpu,v1,2026-01-03\n" +
        "convnext,cifar10,60,paper,1,100,224,gpu,v1,2026-01-04\n",
    );
    const opts = {
      lambda: 0.5,
      bounds: "observed" as const,
      replicates: 50,
      seed: 1,
      command: "t",
      version: "t",
    };
    const d = await buildReportData({ files: [ledger], ...opts });
    assertEquals(d.entries, ["mobilenet", "shufflenet", "convnext"]);
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

    // One model under two presets on one dataset is not two seeds: deno task score refuses the
    // ledger, and so does the report, with the same one-line error (no `model [preset]` rows).
    const mixed = `${dir}/mixed.csv`;
    await Deno.writeTextFile(
      mixed,
      header +
        "convnext,cifar10,50,paper-epochs2,1,2,32,cpu,v1,2026-01-03\n" +
        "convnext,cifar10,60,paper,1,100,224,gpu,v1,2026-01-04\n",
    );
    const byScore = await assertRejects(() => score(["--results", mixed, "--out", dir], quiet), UserError);
    const byReport = await assertRejects(() => buildReportData({ files: [mixed], ...opts }), UserError);
    assertEquals(byReport.message, byScore.message);
    assert(
      byReport.message.startsWith(`${mixed}, line 3 and ${mixed}, line 2: convnext on cifar10`),
      byReport.message,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report refuses a 30-epoch and a 5-epoch run of one cell as deno task score does: same line, exit 2", async () => {
  const dir = await Deno.makeTempDir();
  // deno task report may write only under results/; the refusal must come before anything is written.
  const out = `results/report-test-${crypto.randomUUID()}`;
  try {
    const ledger = `${dir}/results.csv`;
    await Deno.writeTextFile(
      ledger,
      "model,dataset,accuracy,preset,seed,epochs\n" +
        "mobilenet,cifar10,80,paper,1,30\n" +
        "mobilenet,cifar10,60,paper,2,5\n" +
        "convnext,cifar10,70,paper,1,30\n",
    );
    const want =
      `${ledger}, line 3 and ${ledger}, line 2: mobilenet on cifar10 with different epochs (30 vs 5)`;
    const s = await runTask("score", "--results", ledger, "--out", out);
    const r = await runTask("report", "--results", ledger, "--out", out);
    assertEquals(s.code, 2, s.err);
    assertEquals(r.code, 2, r.err);
    assert(s.err.startsWith(`error: ${want}`), s.err);
    assertEquals(r.err, s.err);
    assertEquals(r.err.trimEnd().split("\n").length, 1, r.err);
    await assertRejects(() => Deno.stat(out), Deno.errors.NotFound);
    // In process: the same UserError, and no averaged "70.00 ± 14.14 (n=2)" cell.
    const e = await assertRejects(
      () =>
        buildReportData({
          files: [ledger],
          lambda: 0.5,
          bounds: "observed",
          replicates: 10,
          seed: 1,
          command: "t",
          version: "t",
        }),
      UserError,
    );
    assert(e.message.startsWith(want), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

Deno.test("report data: the scorer's warnings (fractions mixed with percentages) and its matrix, spread and Figure 1 rules", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const opts = {
      lambda: 0.5,
      bounds: "observed" as const,
      replicates: 20,
      seed: 1,
      command: "t",
      version: "t",
    };
    const write = async (name: string, body: string) => {
      await Deno.writeTextFile(`${dir}/${name}`, "model,dataset,accuracy\n" + body);
      return `${dir}/${name}`;
    };
    // 0.91 beside 80 on cifar10: deno task score warns; the report shows the same warning.
    const mixed = await write("mixed.csv", "a,cifar10,0.91\nb,cifar10,80\na,cifar100,50\nb,cifar100,60\n");
    const d = await buildReportData({ files: [mixed], ...opts });
    const warned: string[] = [];
    const out = `${dir}/out`;
    await score(["--results", mixed, "--datasets", "cifar10,cifar100", "--out", out], {
      out: () => {},
      err: (l) => warned.push(l),
    });
    const mixedWarning = warned.filter((l) => /mixes fractions/.test(l));
    assertEquals(mixedWarning.length, 1, warned.join("\n"));
    assertEquals(d.warnings.map((w) => `warning: ${w}`), mixedWarning);

    // Scored as score --allow-missing scores: c lacks cifar100 and is dropped; same xScore.
    const partial = await write(
      "partial.csv",
      "a,cifar10,90\nb,cifar10,80\nc,cifar10,70\nd,cifar10,60\na,cifar100,50\nb,cifar100,60\nd,cifar100,55\n" +
        "a,imagenette160,80\nb,imagenette160,85\nd,imagenette160,75\n",
    );
    const p = await buildReportData({ files: [partial], datasets: ["cifar10", "cifar100"], ...opts });
    const s = (await score(
      [
        "--results",
        partial,
        "--datasets",
        "cifar10,cifar100",
        "--allow-missing",
        "--imagenette-correlation",
        "--out",
        out,
      ],
      quiet,
    ))!;
    assertEquals(p.scored!.result, s.result);
    assertEquals(p.scored!.dropped, s.dropped);
    assertEquals(p.imagenette, s.correlation!);
    // Figure 1 follows score: a scored model without an Imagenette-160 result means no figure (score
    // refuses --imagenette-correlation), not a figure of the others.
    const noFig = await write(
      "nofig.csv",
      "a,cifar10,90\nb,cifar10,80\nc,cifar10,70\na,cifar100,50\nb,cifar100,60\nc,cifar100,55\na,imagenette160,80\nb,imagenette160,85\n",
    );
    const n = await buildReportData({ files: [noFig], datasets: ["cifar10", "cifar100"], ...opts });
    assertEquals(n.scored!.models, ["a", "b", "c"]);
    assertEquals(n.imagenette, null);
    await assertRejects(
      () =>
        score([
          "--results",
          noFig,
          "--datasets",
          "cifar10,cifar100",
          "--imagenette-correlation",
          "--out",
          out,
        ], quiet),
      UserError,
    );
    // No spread on a scored dataset: score refuses with this line; the report says it instead of a score.
    const flat = await write("flat.csv", "a,cifar10,90\nb,cifar10,80\na,cifar100,50\nb,cifar100,50\n");
    const f = await buildReportData({ files: [flat], ...opts });
    const refused = await assertRejects(
      () => score(["--results", flat, "--datasets", "cifar10,cifar100", "--out", out], quiet),
      UserError,
    );
    assertEquals(f.scored, null);
    assertEquals(f.scoredNote, refused.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report data: a truncated done.json or a metrics.jsonl line that is not an object is one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ledger = `${dir}/results.csv`;
    await Deno.writeTextFile(ledger, "model,dataset,accuracy\na,cifar10,90\nb,cifar10,80\n");
    const run = `${dir}/a_cifar10_paper_s1`;
    await Deno.mkdir(run);
    await Deno.writeTextFile(`${run}/epochs.csv`, "epoch,train_loss,test_accuracy\n1,2.1,40\n");
    await Deno.writeTextFile(`${run}/done.json`, '{"model":"a","dataset":"cif');
    const build = () =>
      buildReportData({
        files: [ledger],
        runsDir: dir,
        lambda: 0.5,
        bounds: "observed",
        replicates: 10,
        seed: 1,
        command: "t",
        version: "t",
      });
    const rejects = async (prefix: string) => {
      const e = await assertRejects(build, UserError);
      assert(e.message.startsWith(prefix), e.message);
    };
    await rejects(`${run}/done.json: not valid JSON; remove it or rerun the training`);
    for (const bad of ["null", "5", "[1]"]) {
      await Deno.writeTextFile(`${run}/done.json`, bad);
      await rejects(`${run}/done.json: not a JSON object`);
    }
    await Deno.writeTextFile(
      `${run}/done.json`,
      '{"model":"a","dataset":"cifar10","preset":"paper","seed":1}',
    );
    assertEquals((await build()).curves[0].label, "a / cifar10 / paper / seed 1");
    for (const bad of ["null", "5", '"epoch"']) {
      await Deno.writeTextFile(`${run}/metrics.jsonl`, `${bad}\n{"kind":"epoch","epoch":1}\n`);
      await rejects(`${run}/metrics.jsonl, line 1: not a JSON object`);
      const e = assertThrows(() => parseMetricsJsonl(`${bad}\n`, "m.jsonl"), UserError);
      assert(e.message.startsWith("m.jsonl, line 1: not a JSON object"), e.message);
    }
    // As the CLI runs it: exit 2, one line, no stack trace.
    await Deno.writeTextFile(`${run}/metrics.jsonl`, "null\n");
    const out = `results/report-test-${crypto.randomUUID()}`;
    try {
      const r = await runTask("report", "--results", ledger, "--out", out);
      assertEquals([r.code, r.err], [
        2,
        `error: ${run}/metrics.jsonl, line 1: not a JSON object; the file is corrupt, remove it`,
      ]);
    } finally {
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
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
    // All or none: a target that is a directory stops the set before any file is written.
    await Deno.mkdir(`${dir}/half/index.html`, { recursive: true });
    const err = await assertRejects(
      () => report(["--out", `${dir}/half`, "--bootstrap", "50"], () => {}),
      UserError,
    );
    assert(err.message.includes("index.html: is a directory") && !err.message.includes("\n"), err.message);
    assertEquals([...Deno.readDirSync(`${dir}/half`)].map((e) => e.name), ["index.html"]);
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
