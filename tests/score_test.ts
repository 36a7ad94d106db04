import { assert, assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "./assert.ts";
import { UserError } from "../runtime/errors.ts";
import { parseCsv } from "../runtime/csv.ts";
import { exists } from "../runtime/fs.ts";
import {
  type AccuracyMatrix,
  computeXScore,
  mean,
  minMax,
  normalize,
  observedBounds,
  rankDescending,
  sampleVariance,
  selectDatasets,
  SUITES,
} from "../score/xscore.ts";
import {
  aggregateSeeds,
  buildMatrix,
  canonicalDatasetId,
  canonicalModelId,
  parseLedger,
  readLedger,
} from "../score/ledger.ts";
import {
  analyzeSubsets,
  averageRanks,
  combinations,
  kendallTauB,
  leastSquares,
  pearson,
  spearmanRho,
} from "../score/subsets.ts";
import { niceTicks, scatterSvg } from "../score/plot.ts";
import { main } from "../tasks/score.ts";
import { REFERENCE_TABLE, referenceBounds } from "../score/reference.ts";
import type { ScoreIo } from "../score/output.ts";

// ---------- helpers ----------

/** A 3 × 3 matrix whose Eq. 1-3 values are worked out by hand in the tests below. */
const SMALL: AccuracyMatrix = {
  models: ["a", "b", "c"],
  datasets: ["d0", "d1", "d2"],
  values: [
    [50, 10, 0],
    [70, 30, 50],
    [90, 20, 100],
  ],
};

function ledgerText(rows: [string, string, number | string][], header = "model,dataset,accuracy"): string {
  return [header, ...rows.map((r) => r.join(","))].join("\n") + "\n";
}

const tempDirs: string[] = [];

async function tmp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "xscore_test_" });
  tempDirs.push(dir);
  return dir;
}

async function writeLedger(dir: string, name: string, text: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, text);
  return path;
}

function captureIo(): ScoreIo & { lines: string[]; warnings: string[] } {
  const lines: string[] = [], warnings: string[] = [];
  return { lines, warnings, out: (l) => lines.push(...l.split("\n")), err: (l) => warnings.push(l) };
}

/** Runs main, expects a UserError with exit code 2 containing every `parts`, and no output folder. */
async function expectBadInput(args: string[], out: string, ...parts: string[]): Promise<UserError> {
  const err = await assertRejects(() => main([...args, "--out", out], captureIo()), UserError);
  assertEquals(err.exitCode, 2);
  for (const p of parts) assert(err.message.includes(p), `"${p}" not in: ${err.message}`);
  assert(!err.message.includes("\n"), "one line");
  assert(!(await exists(out)), "nothing written");
  return err;
}

/** A complete 3-model ledger on the full suite: a is best everywhere, c worst. */
function fullSuiteRows(): [string, string, number][] {
  const rows: [string, string, number][] = [];
  SUITES.full.forEach((d, j) => {
    rows.push(["a", d, 80 + j], ["b", d, 70 + j * 2], ["c", d, 60]);
  });
  return rows;
}

/** Table 3 as a matrix (paper order of models and datasets). */
async function table3(): Promise<AccuracyMatrix> {
  return buildMatrix(aggregateSeeds(await readLedger(REFERENCE_TABLE)), SUITES.full).matrix;
}

/** Table 4 of the paper: G, V, 7-dataset xScore. */
const TABLE4: Record<string, [number, number, number]> = {
  efficientnet: [0.964, 0.005, 0.962],
  convmixer: [0.861, 0.017, 0.853],
  mobilevit: [0.809, 0.025, 0.796],
  mobilenet: [0.708, 0.004, 0.706],
  starnet: [0.695, 0.028, 0.681],
  fbnet: [0.641, 0.004, 0.639],
  shufflenet: [0.596, 0.062, 0.565],
  ghostnet: [0.539, 0.038, 0.521],
  mobileone: [0.512, 0.016, 0.504],
  tinynet: [0.573, 0.163, 0.491],
  convnext: [0.102, 0.063, 0.070],
};

function swapMiniplacesIndoor(m: AccuracyMatrix, models: string[]): AccuracyMatrix {
  const out = structuredClone(m);
  const p = out.datasets.indexOf("miniplaces"), q = out.datasets.indexOf("mit-indoor67");
  for (const name of models) {
    const row = out.values[out.models.indexOf(name)];
    [row[p], row[q]] = [row[q], row[p]];
  }
  return out;
}

// ---------- Eq. 1-3 ----------

Deno.test("Eq. 1: per-dataset min-max over the models", () => {
  assertEquals(observedBounds(SMALL), { min: [50, 10, 0], max: [90, 30, 100] });
  assertEquals(normalize(SMALL, observedBounds(SMALL)), [
    [0, 0, 0],
    [0.5, 1, 0.5],
    [1, 0.5, 1],
  ]);
  assertEquals(minMax(75, 50, 100), 0.5);
  assertThrows(() => minMax(1, 5, 5), RangeError);
});

Deno.test("Eq. 2: G is the mean and V the SAMPLE variance (n-1)", () => {
  assertEquals(mean([1, 2, 3, 4]), 2.5);
  assertAlmostEquals(sampleVariance([1, 2, 3, 4]), 5 / 3, 1e-12); // population variance would be 1.25
  const r = computeXScore(SMALL);
  // b: Â = [.5, 1, .5]: G = 2/3, V = ((1/6)² + (1/3)² + (1/6)²) / 2 = 1/12.
  assertAlmostEquals(r.scores[1].G, 2 / 3, 1e-12);
  assertAlmostEquals(r.scores[1].V, 1 / 12, 1e-12);
  // c: Â = [1, .5, 1]: G = 5/6, V = 1/12. a: all zero.
  assertAlmostEquals(r.scores[2].G, 5 / 6, 1e-12);
  assertAlmostEquals(r.scores[2].V, 1 / 12, 1e-12);
  assertEquals([r.scores[0].G, r.scores[0].V], [0, 0]);
});

Deno.test("Eq. 3: xScore = G - lambda*V for lambda 0, 0.5 (default), 1; ranks 1 = best", () => {
  const x = (lambda?: number) => computeXScore(SMALL, lambda === undefined ? {} : { lambda }).scores;
  assertAlmostEquals(x()[1].xscore, 2 / 3 - 1 / 24, 1e-12);
  assertAlmostEquals(x()[2].xscore, 5 / 6 - 1 / 24, 1e-12);
  assertAlmostEquals(x(0)[1].xscore, 2 / 3, 1e-12);
  assertAlmostEquals(x(1)[2].xscore, 5 / 6 - 1 / 12, 1e-12);
  assertEquals(x().map((s) => s.rank), [3, 2, 1]);
  assertEquals(rankDescending([0.5, 0.9, 0.5, 0.1]), [2, 1, 2, 4]);
  assertThrows(() => computeXScore(SMALL, { lambda: 1.5 }), RangeError);
  assertThrows(() => computeXScore(selectDatasets(SMALL, ["d0"])), RangeError);
});

Deno.test("fixed (reference) bounds: normalised values may leave [0, 1] and are kept", () => {
  const r = computeXScore(SMALL, { bounds: { min: [60, 10, 0], max: [80, 20, 100] } });
  // a: (50-60)/20 = -0.5; c: (90-60)/20 = 1.5, (20-10)/10 = 1; b: (30-10)/10 = 2.
  assertEquals(r.scores[0].normalized, [-0.5, 0, 0]);
  assertEquals(r.scores[1].normalized, [0.5, 2, 0.5]);
  assertEquals(r.scores[2].normalized, [1.5, 1, 1]);
  assertEquals(r.outsideUnitRange, 3);
  assertAlmostEquals(r.scores[1].G, 1, 1e-12);
  assertAlmostEquals(r.scores[1].V, 0.75, 1e-12); // deviations -.5, 1, -.5: (0.25+1+0.25)/2
});

// ---------- ledgers ----------

Deno.test("ledger: paper spellings map to canonical ids, user ids are kept", () => {
  assertEquals(canonicalModelId("StartNet"), "starnet");
  assertEquals(canonicalModelId("ConvNeXt"), "convnext");
  assertEquals(canonicalModelId("EfficientNet-2m"), "efficientnet");
  assertEquals(canonicalModelId("my-net"), "my-net");
  assertEquals(canonicalDatasetId("Imagenette-160"), "imagenette160");
  assertEquals(canonicalDatasetId("HAM10k"), "ham10000");
  assertEquals(canonicalDatasetId("Indoor-67"), "mit-indoor67");
  assertEquals(canonicalDatasetId("Dogs"), "stanford-dogs");
  assertEquals(canonicalDatasetId("my-set"), "my-set");
});

Deno.test("ledger: extra columns are ignored; seeds are averaged with n and sample std", () => {
  const rows = parseLedger(
    "model,dataset,accuracy,seed,epochs\nm,d,90,0,5\nm,d,92,1,5\nm,d,94,2,5\nm,e,50,0,5\n",
    "x.csv",
  );
  assertEquals(rows[1], { model: "m", dataset: "d", accuracy: 92, file: "x.csv", line: 3 });
  const cells = aggregateSeeds(rows);
  assertEquals(cells.length, 2);
  assertEquals([cells[0].accuracy, cells[0].n, cells[0].std], [92, 3, 2]);
  assertEquals(cells[0].sources, ["x.csv:2", "x.csv:3", "x.csv:4"]);
  assertEquals([cells[1].n, cells[1].std], [1, undefined]);
});

Deno.test("the shipped Table 3 is in ledger format with canonical ids, 11 models x 7 datasets", async () => {
  const rows = await readLedger(REFERENCE_TABLE);
  assertEquals(rows.length, 77);
  assertEquals([...new Set(rows.map((r) => r.model))].sort(), Object.keys(TABLE4).sort());
  assertEquals([...new Set(rows.map((r) => r.dataset))], [...SUITES.full]);
  // Spot checks against the paper, including the two renamed models.
  const at = (m: string, d: string) => rows.find((r) => r.model === m && r.dataset === d)!.accuracy;
  assertEquals(at("starnet", "cifar10"), 94.88);
  assertEquals(at("convnext", "mit-indoor67"), 32.76);
  assertEquals(at("convmixer", "miniplaces"), 58.36); // as printed, not swapped
  assertEquals(at("mobilevit", "mit-indoor67"), 59.74);
});

Deno.test("reference bounds are Table 3's column extremes (docs/protocol.md §5.2)", async () => {
  const b = await referenceBounds(SUITES.full);
  assertEquals(b.min, [91.97, 76.05, 68.91, 74.38, 29.59, 51.01, 32.76]);
  assertEquals(b.max, [95.19, 89.25, 78.79, 80.64, 63.78, 61.14, 59.74]);
});

// ---------- Table 3 -> Table 4 ----------

Deno.test("Table 3 as printed reproduces Table 4 for 9 models, NOT for convmixer and mobilevit", async () => {
  const r = computeXScore(await table3());
  for (const s of r.scores) {
    const [G, V, X] = TABLE4[s.model];
    const worst = Math.max(Math.abs(s.G - G), Math.abs(s.V - V), Math.abs(s.xscore - X));
    if (s.model === "convmixer" || s.model === "mobilevit") {
      assert(worst > 0.003, `${s.model} unexpectedly matches (worst diff ${worst})`);
    } else {
      // Within a unit of the third decimal: the paper's anchors differ slightly (Indoor max 59.70).
      assert(worst < 0.001, `${s.model}: worst diff ${worst}`);
    }
  }
  const by = Object.fromEntries(r.scores.map((s) => [s.model, s]));
  // docs/protocol.md §5.3 test vectors for the mismatching rows.
  assertAlmostEquals(by.convmixer.xscore, 0.8591, 5e-5);
  assertAlmostEquals(by.mobilevit.xscore, 0.7349, 5e-5);
});

Deno.test("with convmixer/mobilevit MiniPlaces and Indoor-67 swapped, all 11 rows of Table 4 match to 3 decimals", async () => {
  const r = computeXScore(swapMiniplacesIndoor(await table3(), ["convmixer", "mobilevit"]));
  assertEquals(r.scores.length, 11);
  for (const s of r.scores) {
    const got = [s.G, s.V, s.xscore].map((v) => v.toFixed(3));
    assertEquals(got, TABLE4[s.model].map((v) => v.toFixed(3)), s.model);
  }
  // Table 4's order is the xScore ranking.
  const order = [...r.scores].sort((a, b) => a.rank - b.rank).map((s) => s.model);
  assertEquals(order, Object.keys(TABLE4));
});

Deno.test("proxy4 plain xScore on Table 3 (docs/protocol.md §5.4 values; not the paper's 4-dataset column)", async () => {
  const r = computeXScore(selectDatasets(await table3(), SUITES.proxy4));
  const expected: Record<string, number> = {
    convmixer: 0.896,
    efficientnet: 0.940,
    mobilevit: 0.730,
    ghostnet: 0.549,
    mobilenet: 0.744,
    tinynet: 0.293,
    starnet: 0.694,
    shufflenet: 0.682,
    fbnet: 0.623,
    mobileone: 0.547,
    convnext: 0.124,
  };
  for (const s of r.scores) assertEquals(s.xscore.toFixed(3), expected[s.model].toFixed(3), s.model);
});

// ---------- subsets and correlation ----------

Deno.test("rank statistics on hand-checked examples", () => {
  // One discordant pair of 6: tau = (5-1)/6; Spearman: d = 0,1,1,0 -> 1 - 6*2/(4*15) = 0.8.
  assertAlmostEquals(kendallTauB([1, 2, 3, 4], [1, 3, 2, 4]), 2 / 3, 1e-12);
  assertAlmostEquals(spearmanRho([1, 2, 3, 4], [1, 3, 2, 4]), 0.8, 1e-12);
  // tau-b with a tie in x: S = 2, n0 = 3, one x tie -> 2 / sqrt(2*3).
  assertAlmostEquals(kendallTauB([1, 1, 2], [1, 2, 3]), 2 / Math.sqrt(6), 1e-12);
  assertEquals(averageRanks([10, 30, 20, 30]), [1, 3.5, 2, 3.5]);
  assertAlmostEquals(kendallTauB([1, 2, 3], [3, 2, 1]), -1, 1e-12);
  assert(Number.isNaN(kendallTauB([1, 1, 1], [1, 2, 3])));
  // Pearson: x = 1,2,3; y = 2,4,7 -> sxy = 5, sxx = 2, syy = 114/9.
  assertAlmostEquals(pearson([1, 2, 3], [2, 4, 7]), 5 / Math.sqrt(2 * 114 / 9), 1e-12);
  assert(Number.isNaN(pearson([1, 1], [1, 2])));
});

Deno.test("least squares with intercept on hand-checked examples", () => {
  // y = 0,1,3 on x = 0,1,2: slope 1.5, intercept -1/6.
  const f = leastSquares([[0], [1], [2]], [0, 1, 3]);
  assertAlmostEquals(f.coefficients[0], -1 / 6, 1e-12);
  assertAlmostEquals(f.coefficients[1], 1.5, 1e-12);
  [-1 / 6, 4 / 3, 17 / 6].forEach((v, i) => assertAlmostEquals(f.fitted[i], v, 1e-12));
  // A collinear second column changes nothing.
  const g = leastSquares([[0, 0], [1, 2], [2, 4]], [0, 1, 3]);
  assertEquals(g.rank, 2);
  [-1 / 6, 4 / 3, 17 / 6].forEach((v, i) => assertAlmostEquals(g.fitted[i], v, 1e-12));
  // Two regressors, exact plane y = 1 + 2a - b.
  const h = leastSquares([[0, 0], [1, 0], [0, 1], [1, 1]], [1, 3, 0, 2]);
  [1, 2, -1].forEach((v, i) => assertAlmostEquals(h.coefficients[i], v, 1e-12));
});

Deno.test("subsets: combinations and a hand-checked 2-of-3 analysis", () => {
  assertEquals(combinations([1, 2, 3], 2), [[1, 2], [1, 3], [2, 3]]);
  assertEquals(combinations(SUITES.full, 4).length, 35);
  const subs = analyzeSubsets(computeXScore(SMALL), 2);
  assertEquals(subs.length, 3);
  // Full xScore: a 0, b 15/24, c 19/24. Subset {d0,d1}: a 0, b = c = .75 - .5*.125 = .6875, so the
  // b/c pair is a subset tie: tau-b = 2/sqrt(2*3).
  const d01 = subs.find((s) => s.datasets.join() === "d0,d1")!;
  assertAlmostEquals(d01.xscore[1], 0.6875, 1e-12);
  assertAlmostEquals(d01.xscore[2], 0.6875, 1e-12);
  assertAlmostEquals(d01.tau, 2 / Math.sqrt(6), 1e-12);
  // {d0,d2} has Â rows [0,0], [.5,.5], [1,1]: order a < b < c like the full score.
  const d02 = subs.find((s) => s.datasets.join() === "d0,d2")!;
  assertAlmostEquals(d02.tau, 1, 1e-12);
  assertAlmostEquals(d02.rho, 1, 1e-12);
  assertEquals(subs[0].datasets, ["d0", "d2"]);
  // 3 models, 2 independent regressors + intercept: the predictor interpolates, and says so.
  assert(d01.exactFit && d01.fitMaxAbsError < 1e-9);
  // {d0,d2}'s columns are equal, so the fit is a line through 3 points: not exact, error by hand.
  // Target 0, 15/24, 19/24 on x = 0, .5, 1: slope 19/24, intercept 11/144, residuals 11/144·(-1, 2, -1).
  assert(!d02.exactFit);
  assertAlmostEquals(d02.fitMaxAbsError, 22 / 144, 1e-12);
  assertAlmostEquals(d02.fitMeanAbsError, 44 / 432, 1e-12);
  assertThrows(() => analyzeSubsets(computeXScore(SMALL), 1), RangeError);
});

Deno.test("subsets on Table 3: proxy4 ties for best 4-subset (tau 51/55, rho 0.982), as docs/protocol.md §5.4 records", async () => {
  const subs = analyzeSubsets(computeXScore(await table3()), 4);
  const best = subs.filter((s) => s.rank === 1).map((s) => s.datasets.join(",")).sort();
  assertEquals(best, [
    "cifar10,ham10000,stanford-dogs,mit-indoor67",
    "imagenette160,cifar100,ham10000,stanford-dogs",
  ]);
  assertAlmostEquals(subs[0].tau, 51 / 55, 1e-12);
  assertEquals(subs[0].rho.toFixed(3), "0.982");
  // With the swap, {imagenette, cifar100, ham, miniplaces} ties too.
  const sw = analyzeSubsets(
    computeXScore(swapMiniplacesIndoor(await table3(), ["convmixer", "mobilevit"])),
    4,
  );
  assert(sw.some((s) => s.rank === 1 && s.datasets.join() === "imagenette160,cifar100,ham10000,miniplaces"));
  assertEquals(sw.filter((s) => s.rank === 1).length, 3);
});

Deno.test("plot: nice ticks and a labelled SVG with a regression line", () => {
  assertEquals(
    niceTicks(0, 1, 5),
    [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map((v) => Number(v.toPrecision(12))),
  );
  assertEquals(niceTicks(76, 89, 6), [75, 77.5, 80, 82.5, 85, 87.5, 90]);
  assertEquals(niceTicks(76, 89, 3), [75, 80, 85, 90]);
  const svg = scatterSvg({
    title: "T <&>",
    xLabel: "xScore",
    yLabel: "acc (%)",
    points: [{ label: "a", x: 0, y: 1 }, { label: "b", x: 1, y: 3 }, { label: "c", x: 2, y: 2 }],
    line: { slope: 0.5, intercept: 1.5, label: "fit" },
  });
  assert(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
  assert(svg.includes("T &lt;&amp;&gt;"));
  for (const l of [">a<", ">b<", ">c<", ">fit<", ">xScore<", ">acc (%)<"]) assert(svg.includes(l), l);
  assertEquals(svg.match(/<circle /g)?.length, 3);
  checkPlotGeometry(svg, [[0, 1], [1, 3], [2, 2]], { slope: 0.5, intercept: 1.5 });
  // A second data set with a negative slope and non-round values.
  const pts = [[0.12, 81.5], [0.47, 77.25], [0.9, 88.1], [0.33, 84]];
  const svg2 = scatterSvg({
    title: "t",
    xLabel: "x",
    yLabel: "y",
    points: pts.map(([x, y], i) => ({ label: `p${i}`, x, y })),
    line: { slope: -7.5, intercept: 86, label: "fit" },
  });
  checkPlotGeometry(svg2, pts, { slope: -7.5, intercept: 86 });
});

/**
 * Reads an SVG scatter plot back as a reader would: the axes' tick labels define the data → pixel
 * maps (x to the right, y UP), every circle sits at its point's data coordinates, and the
 * regression line's end points lie on y = intercept + slope·x.
 */
function checkPlotGeometry(
  svg: string,
  points: number[][],
  line: { slope: number; intercept: number },
): void {
  const num = (re: RegExp) => [...svg.matchAll(re)].map((m) => m.slice(1).map(Number));
  // x ticks: centred numeric labels below the frame; y ticks: right-aligned numeric labels.
  const xt = num(/<text x="([-\d.]+)" y="[-\d.]+" text-anchor="middle">(-?[\d.]+)<\/text>/g);
  const yt = num(
    /<text x="[-\d.]+" y="([-\d.]+)" text-anchor="end" dominant-baseline="middle">(-?[\d.]+)<\/text>/g,
  );
  assert(xt.length >= 3 && yt.length >= 3, `ticks: ${xt.length} x, ${yt.length} y`);
  const fit = (pairs: number[][]) => {
    // least squares pixel = a + b·value
    const n = pairs.length;
    const mv = pairs.reduce((s, [, v]) => s + v, 0) / n, mp = pairs.reduce((s, [p]) => s + p, 0) / n;
    const b = pairs.reduce((s, [p, v]) => s + (v - mv) * (p - mp), 0) /
      pairs.reduce((s, [, v]) => s + (v - mv) ** 2, 0);
    const a = mp - b * mv;
    for (const [p, v] of pairs) assertAlmostEquals(p, a + b * v, 0.11, `tick ${v} off the linear axis`);
    return { a, b };
  };
  const X = fit(xt), Y = fit(yt);
  assert(X.b > 0, "x axis must grow to the right");
  assert(Y.b < 0, "y axis must grow upwards (SVG y grows downwards)");
  const circles = num(/<circle cx="([-\d.]+)" cy="([-\d.]+)"/g);
  assertEquals(circles.length, points.length);
  const dx = (px: number) => (px - X.a) / X.b, dy = (py: number) => (py - Y.a) / Y.b;
  const tolX = 0.15 / Math.abs(X.b), tolY = 0.15 / Math.abs(Y.b); // toFixed(1) pixels, twice
  circles.forEach(([cx, cy], i) => {
    assertAlmostEquals(dx(cx), points[i][0], tolX, `point ${i} x`);
    assertAlmostEquals(dy(cy), points[i][1], tolY, `point ${i} y`);
  });
  const seg = num(
    /<line x1="([-\d.]+)" y1="([-\d.]+)" x2="([-\d.]+)" y2="([-\d.]+)" stroke="#1f5fbf" stroke-width="2" clip-path="url\(#plot\)"/g,
  );
  assertEquals(seg.length, 1, "one regression line");
  const [x1, y1, x2, y2] = seg[0];
  assert(
    x2 - x1 > 0.5 * (Math.max(...xt.map(([p]) => p)) - Math.min(...xt.map(([p]) => p))),
    "line spans the plot",
  );
  for (const [px, py] of [[x1, y1], [x2, y2]]) {
    const want = line.intercept + line.slope * dx(px);
    assertAlmostEquals(dy(py), want, tolY + Math.abs(line.slope) * tolX, "regression line end point");
  }
}

// ---------- the task: success paths ----------

Deno.test("score (default): the shipped Table 3, table on stdout, xscore.csv + normalized.csv", async () => {
  const dir = await tmp();
  const io = captureIo();
  const run = (await main(["--out", `${dir}/out`], io))!;
  assertEquals(run.written, [`${dir}/out/xscore.csv`, `${dir}/out/normalized.csv`]);
  const x = parseCsv(await Deno.readTextFile(`${dir}/out/xscore.csv`));
  for (const c of ["model", "G", "V", "xscore", "n_datasets", "rank"]) assert(x.header.includes(c), c);
  const col = (name: string) => x.header.indexOf(name);
  assertEquals(x.rows.length, 11);
  assertEquals(x.rows[0][col("model")], "efficientnet");
  assertEquals(Number(x.rows[0][col("xscore")]).toFixed(3), "0.962");
  assertEquals(x.rows[0][col("n_datasets")], "7");
  const n = parseCsv(await Deno.readTextFile(`${dir}/out/normalized.csv`));
  for (const c of ["model", "dataset", "accuracy", "normalized", "n", "std"]) assert(n.header.includes(c), c);
  assertEquals(n.rows.length, 77);
  assert(
    io.lines.some((l) => /^\s+1\s+efficientnet\s+0\.964\s+0\.005\s+0\.962\s+7$/.test(l)),
    io.lines.join("\n"),
  );
  assert(io.lines.some((l) => l.includes("swapped")), "mentions the convmixer/mobilevit swap");
});

Deno.test("score --format md / csv, --suite proxy4, --datasets, --lambda 0", async () => {
  const dir = await tmp();
  let io = captureIo();
  await main(["--out", `${dir}/md`, "--format", "md"], io);
  assert(io.lines.includes("| rank | model | G | V | xScore | datasets |"), io.lines.join("\n"));
  assert(io.lines.some((l) => l.startsWith("| 1 | efficientnet | 0.964 |")));

  io = captureIo();
  await main(["--out", `${dir}/csv`, "--format", "csv", "--suite", "proxy4"], io);
  const csv = parseCsv(io.lines.join("\n"));
  assertEquals(csv.rows.length, 11);
  assertEquals(csv.rows[0][csv.header.indexOf("model")], "efficientnet");
  assertEquals(Number(csv.rows[0][csv.header.indexOf("xscore")]).toFixed(3), "0.940");
  assertEquals(csv.rows[0][csv.header.indexOf("n_datasets")], "4");

  const run =
    (await main(["--out", `${dir}/ds`, "--datasets", "CIFAR-10,HAM10k", "--lambda", "0"], captureIo()))!;
  assertEquals(run.result.datasets, ["cifar10", "ham10000"]);
  for (const s of run.result.scores) assertEquals(s.xscore, s.G);
});

Deno.test("score --bounds reference: values outside [0,1] are kept and reported", async () => {
  const dir = await tmp();
  // "new" beats every anchor of Table 3, "old" is below every one.
  const path = await writeLedger(
    dir,
    "r.csv",
    ledgerText(SUITES.full.flatMap((d) => [["new", d, 99], ["old", d, 20]] as [string, string, number][])),
  );
  const io = captureIo();
  const run = (await main(["--results", path, "--bounds", "reference", "--out", `${dir}/out`], io))!;
  const by = Object.fromEntries(run.result.scores.map((s) => [s.model, s]));
  assertAlmostEquals(by.new.normalized[0], (99 - 91.97) / (95.19 - 91.97), 1e-12);
  assert(by.new.G > 1 && by.old.G < 0);
  assertEquals(run.result.outsideUnitRange, 14);
  assert(io.lines.some((l) => l.includes("14 normalized values fall outside [0, 1]")), io.lines.join("\n"));
  const n = parseCsv(await Deno.readTextFile(`${dir}/out/normalized.csv`));
  assert(n.rows.every((r) => r[n.header.indexOf("outside_0_1")] === "true"));
  // Observed bounds on the same two models stay in [0, 1].
  const obs = (await main(["--results", path, "--out", `${dir}/obs`], captureIo()))!;
  assertEquals(obs.result.outsideUnitRange, 0);
});

Deno.test("score: seeds across several --results files are averaged, n and std reported", async () => {
  const dir = await tmp();
  const rows = fullSuiteRows();
  const a = await writeLedger(
    dir,
    "a.csv",
    ledgerText(rows.map(([m, d, v]) => [m, d, v + 1]), "model,dataset,accuracy"),
  );
  const b = await writeLedger(
    dir,
    "b.csv",
    ledgerText(
      rows.map(([m, d, v]) => [m, d, v - 1, 7] as unknown as [string, string, number]),
      "model,dataset,accuracy,seed",
    ),
  );
  const io = captureIo();
  const run = (await main(["--results", a, b, "--out", `${dir}/out`], io))!;
  assertEquals(run.files, [a, b]);
  const cell = run.cells[0][0];
  assertEquals([cell.accuracy, cell.n, cell.std], [80, 2, Math.SQRT2]);
  const n = parseCsv(await Deno.readTextFile(`${dir}/out/normalized.csv`));
  const first = n.rows.find((r) => r[0] === "a" && r[1] === "cifar10")!;
  assertEquals([first[n.header.indexOf("n")], Number(first[n.header.indexOf("std")]).toFixed(4)], [
    "2",
    "1.4142",
  ]);
  assert(io.lines.some((l) => l.includes("seeds") && l.includes("max std (pp)")), io.lines.join("\n"));
});

Deno.test("score --allow-missing drops incomplete models with a warning", async () => {
  const dir = await tmp();
  const rows = fullSuiteRows().filter(([m, d]) => !(m === "c" && d === "miniplaces"));
  const path = await writeLedger(dir, "r.csv", ledgerText(rows.concat([["d", "cifar10", 50]])));
  const io = captureIo();
  const run = (await main(["--results", path, "--allow-missing", "--out", `${dir}/out`], io))!;
  assertEquals(run.result.scores.map((s) => s.model), ["a", "b"]);
  assertEquals(run.dropped.map((d) => d.model), ["c", "d"]);
  assert(
    io.warnings.some((w) => w.includes("dropped c") && w.includes("miniplaces")),
    io.warnings.join("\n"),
  );
});

Deno.test("score --subset-size 4 writes subsets.csv and says the paper's 4-dataset column is not reproducible", async () => {
  const dir = await tmp();
  const io = captureIo();
  const run = (await main(["--subset-size", "4", "--out", `${dir}/out`], io))!;
  assertEquals(run.subsets!.length, 35);
  const s = parseCsv(await Deno.readTextFile(`${dir}/out/subsets.csv`));
  assertEquals(s.rows.length, 35);
  for (const c of ["datasets", "kendall_tau", "spearman_rho", "fit_max_abs_error", "fit_mean_abs_error"]) {
    assert(s.header.includes(c), c);
  }
  assertEquals(s.rows[0][s.header.indexOf("rank")], "1");
  assert(io.lines.some((l) => l.includes("not reproducible")));
  assert(io.lines.some((l) => l.includes("proxy4 subset") && l.includes("ranks 1 of 35")));
});

Deno.test("score --imagenette-correlation: Pearson/Spearman on Table 3 and the Figure 1 SVG", async () => {
  const dir = await tmp();
  const io = captureIo();
  const run = (await main(["--imagenette-correlation", "--out", `${dir}/out`], io))!;
  const c = run.correlation!;
  // Independent values (scipy.stats.pearsonr / spearmanr on Table 3 and the as-printed xScore).
  assertAlmostEquals(c.pearson, 0.90163, 1e-5);
  assertAlmostEquals(c.spearman, 0.772727, 1e-6);
  const fit = leastSquares(c.xscore.map((x) => [x]), c.imagenette);
  assertAlmostEquals(c.slope, fit.coefficients[1], 1e-12);
  const svg = await Deno.readTextFile(`${dir}/out/imagenette-vs-xscore.svg`);
  for (const m of Object.keys(TABLE4)) assert(svg.includes(`>${m}</text>`), m);
  assert(svg.includes("Imagenette-160 top-1 accuracy (%)"));
  assert(io.lines.some((l) => l.includes("Pearson r = 0.902")));
});

Deno.test("score --help prints usage and writes nothing", async () => {
  const dir = await tmp();
  const io = captureIo();
  assertEquals(await main(["--help", "--out", `${dir}/out`], io), undefined);
  assert(io.lines.some((l) => l.includes("--subset-size")));
  assert(!(await exists(`${dir}/out`)));
});

// ---------- the task: bad input ----------

Deno.test("bad ledgers: one line naming file and line, exit code 2, nothing written", async () => {
  const dir = await tmp();
  const out = `${dir}/out`;
  const f = (name: string, text: string) => writeLedger(dir, name, text);

  await expectBadInput(
    ["--results", await f("cols.csv", "model,accuracy\nm,50\n")],
    out,
    "cols.csv",
    "line 1",
    "dataset",
  );
  await expectBadInput(
    ["--results", await f("nan.csv", ledgerText([["a", "cifar10", 50], ["b", "cifar10", "abc"]]))],
    out,
    "nan.csv, line 3",
    `"abc" is not a number`,
  );
  await expectBadInput(
    ["--results", await f("range.csv", ledgerText([["a", "cifar10", 50], ["b", "cifar10", 101]]))],
    out,
    "range.csv, line 3",
    "outside 0-100",
  );
  await expectBadInput(
    ["--results", await f("neg.csv", ledgerText([["a", "cifar10", -1]]))],
    out,
    "neg.csv, line 2",
    "outside 0-100",
  );
  await expectBadInput(["--results", await f("empty.csv", "")], out, "empty.csv", "empty file");
  await expectBadInput(
    ["--results", await f("header.csv", "model,dataset,accuracy\n")],
    out,
    "header.csv",
    "no data rows",
  );
  await expectBadInput(
    ["--results", await f("dup.csv", "model,dataset,accuracy,accuracy\na,b,1,2\n")],
    out,
    "dup.csv, line 1",
    `duplicate column "accuracy"`,
  );
  await expectBadInput(
    ["--results", await f("ragged.csv", "model,dataset,accuracy\na,b\n")],
    out,
    "ragged.csv",
    "malformed",
  );
  await expectBadInput(["--results", `${dir}/nope.csv`], out, "nope.csv", "not found");
});

Deno.test("bad ledgers: EVERY missing cell is listed; --allow-missing is suggested", async () => {
  const dir = await tmp();
  const rows = fullSuiteRows().filter(([m, d]) =>
    !(m === "b" && (d === "cifar10" || d === "mit-indoor67")) && !(m === "c" && d === "ham10000")
  );
  const path = await writeLedger(dir, "gaps.csv", ledgerText(rows));
  await expectBadInput(
    ["--results", path],
    `${dir}/out`,
    "3 missing results in",
    "gaps.csv",
    "b/cifar10",
    "b/mit-indoor67",
    "c/ham10000",
    "--allow-missing",
  );
  // Dropping leaves fewer than 2 complete models: still an error.
  const only = await writeLedger(dir, "one.csv", ledgerText(rows.filter(([m]) => m !== "a")));
  await expectBadInput(["--results", only, "--allow-missing"], `${dir}/out`, "only 0 models");
});

Deno.test("bad ledgers: a dataset whose accuracies are all equal", async () => {
  const dir = await tmp();
  const rows = fullSuiteRows().map((
    [m, d, v],
  ): [string, string, number] => [m, d, d === "cifar100" ? 70 : v]);
  const path = await writeLedger(dir, "flat.csv", ledgerText(rows));
  await expectBadInput(
    ["--results", path],
    `${dir}/out`,
    "dataset cifar100",
    "all 3 models have accuracy 70",
    "flat.csv:",
  );
  // With fixed reference anchors a flat column is fine.
  const run = await main(["--results", path, "--bounds", "reference", "--out", `${dir}/ref`], captureIo());
  assert(run);
});

Deno.test("bad flags: unknown suite, bad lambda, bounds, format, subset size, datasets", async () => {
  const out = `${await tmp()}/out`;
  await expectBadInput(["--suite", "tiny"], out, `unknown suite "tiny"`, "full or proxy4");
  await expectBadInput(["--lambda", "1.5"], out, "--lambda", "[0, 1]", `"1.5"`);
  await expectBadInput(["--lambda", "abc"], out, "--lambda", `"abc"`);
  await expectBadInput(["--lambda", "-0.1"], out, "--lambda");
  await expectBadInput(["--lambda=-0.1"], out, "--lambda", `"-0.1"`);
  await expectBadInput(["--bounds", "fixed"], out, "--bounds");
  await expectBadInput(["--format", "json"], out, "--format");
  await expectBadInput(["--subset-size", "8"], out, "--subset-size", "2 to 7");
  await expectBadInput(["--subset-size", "1"], out, "--subset-size");
  await expectBadInput(["--datasets", "cifar10"], out, "at least 2 datasets");
  await expectBadInput(["--datasets", "cifar10,CIFAR-10"], out, "cifar10 is listed twice");
  await expectBadInput(
    ["--suite", "full", "--datasets", "cifar10,ham10000"],
    out,
    "either --suite or --datasets",
  );
  const fm = await writeLedger(
    await tmp(),
    "fm.csv",
    ledgerText([["a", "cifar10", 90], ["b", "cifar10", 80], ["a", "fashion-mnist", 93], [
      "b",
      "fashion-mnist",
      91,
    ]]),
  );
  await expectBadInput(
    ["--results", fm, "--datasets", "cifar10,fashion-mnist", "--bounds", "reference"],
    out,
    "no anchors for fashion-mnist",
    "--bounds observed",
  );
  await expectBadInput(["--frobnicate"], out, "frobnicate", "--help");
  await expectBadInput(["stray.csv"], out, "stray.csv", "--results");
});

// ---------- the task as deno task score runs it ----------

const TASK = new URL("../tasks/score.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** `deno run` with deno.json's permissions for the score task, from `cwd` (results/ is relative to it). */
async function runTask(cwd: string, args: string[]) {
  const out = await new Deno.Command("deno", {
    args: ["run", "--config", CONFIG, "--allow-read", "--allow-write=results", TASK, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("subprocess: success writes results/, bad input exits 2 with one error line and writes nothing", async () => {
  const cwd = await tmp();
  const ok = await runTask(cwd, []);
  assertEquals(ok.code, 0, ok.stderr);
  assert(ok.stdout.includes("efficientnet"));
  assert(await exists(`${cwd}/results/xscore.csv`));

  const bad = await tmp();
  await Deno.writeTextFile(`${bad}/r.csv`, ledgerText([["a", "cifar10", 50], ["b", "cifar10", "x"]]));
  const res = await runTask(bad, ["--results", "r.csv"]);
  assertEquals(res.code, 2);
  assertEquals(res.stderr.trim().split("\n"), [
    `error: r.csv, line 3: accuracy "x" is not a number; write top-1 accuracy in % (0-100)`,
  ]);
  assert(!(await exists(`${bad}/results`)));
});

Deno.test("subprocess: --out outside results/ is denied with a readable message, exit 2", async () => {
  const cwd = await tmp();
  const res = await runTask(cwd, ["--out", "elsewhere"]);
  assertEquals(res.code, 2);
  const lines = res.stderr.trim().split("\n");
  assertEquals(lines.length, 1, res.stderr);
  assert(lines[0].startsWith("error: cannot write to elsewhere"), lines[0]);
  assert(lines[0].includes("--allow-write=elsewhere"), lines[0]);
  assert(!(await exists(`${cwd}/elsewhere`)));
});

// Last test of the file (tests run in order): remove the temporary folders made above.
Deno.test("cleanup: the temporary folders of the task tests are removed", async () => {
  const dirs = tempDirs.splice(0);
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
  for (const dir of dirs) assert(!(await Deno.stat(dir).catch(() => undefined)), `${dir} still exists`);
});
