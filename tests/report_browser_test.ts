/**
 * The report page in a real browser: Debian's headless Chromium driven by playwright-core opens
 * `index.html` from disk (no server, no network), and the test checks there are no console errors,
 * that every chart rendered with a non-empty size, and that moving the λ slider, unticking a
 * dataset or switching the bounds re-ranks the models exactly as `deno task score` ranks them.
 *
 * Skipped, with a message, when no Chromium is installed; `XS_REQUIRE_BROWSER=1` turns the skip
 * into a failure (CI sets it after installing the `chromium` package).
 */
import fs from "node:fs";
import { assert, assertEquals } from "./assert.ts";
import { main as report } from "../tasks/report.ts";
import { main as score } from "../tasks/score.ts";

const CHROMIUM = Deno.env.get("XS_CHROMIUM") ?? "/usr/bin/chromium";
const haveChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
const required = Deno.env.get("XS_REQUIRE_BROWSER") === "1";
if (!haveChromium) {
  const msg =
    `report_browser_test: no Chromium at ${CHROMIUM} (apt-get install chromium, or set XS_CHROMIUM)`;
  if (required) throw new Error(`${msg}; XS_REQUIRE_BROWSER=1 requires it`);
  console.warn(`${msg}: browser tests skipped`);
}

const quiet = { out: () => {}, err: () => {} };

/** Ranks per model as `deno task score` computes them for `args`. */
async function scoreRanks(args: string[]): Promise<Record<string, number>> {
  const out = await Deno.makeTempDir();
  try {
    const run = (await score([...args, "--out", out], quiet))!;
    return Object.fromEntries(run.result.scores.map((s) => [s.model, s.rank]));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

type Page = import("playwright-core").Page;

/**
 * Node's `fs.existsSync` never throws; Deno's throws NotCapable for paths only `--allow-all` may read
 * (playwright-core probes /proc/sys/fs/binfmt_misc/WSLInterop at load). Restore Node's contract so
 * the suite keeps its narrow permissions.
 */
function nodeExistsSync(): void {
  const original = fs.existsSync;
  if ((original as { xsPatched?: boolean }).xsPatched) return;
  const patched = (path: Parameters<typeof fs.existsSync>[0]) => {
    try {
      return original(path);
    } catch {
      return false;
    }
  };
  (patched as { xsPatched?: boolean }).xsPatched = true;
  fs.existsSync = patched;
}

async function withPage(html: string, fn: (page: Page, errors: string[]) => Promise<void>): Promise<void> {
  nodeExistsSync();
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "xs-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") errors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    // The page must not fetch anything: every request other than the file itself fails the test.
    page.on("request", (r) => {
      if (r.url() !== `file://${html}`) errors.push(`network request: ${r.url()}`);
    });
    await page.goto(`file://${html}`);
    await fn(page, errors);
  } finally {
    await context.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** The live panel's ranking: model → rank, read from the table rows the page built. */
async function liveRanks(page: Page): Promise<Record<string, number>> {
  const rows = await page.$$eval(
    "#xs-live-body tr",
    (trs) => trs.map((tr) => [tr.getAttribute("data-model")!, Number(tr.getAttribute("data-rank"))]),
  );
  return Object.fromEntries(rows);
}

/** Every chart is an <svg class="xs-chart"> with a non-empty box and drawn content. */
async function assertChartsRendered(page: Page, minimum: number): Promise<string[]> {
  const charts = await page.$$eval("svg.xs-chart", (svgs) =>
    svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return {
        name: s.getAttribute("data-chart") ?? "",
        w: r.width,
        h: r.height,
        marks: s.querySelectorAll("rect, path, circle, line").length,
        bars: s.querySelectorAll(".xs-bar").length,
        lines: s.querySelectorAll(".xs-line").length,
      };
    }));
  assert(charts.length >= minimum, `expected ≥ ${minimum} charts, found ${charts.length}`);
  for (const c of charts) {
    assert(c.w > 0 && c.h > 0, `chart ${c.name} has size ${c.w}×${c.h}`);
    assert(c.marks > 1, `chart ${c.name} draws nothing`);
  }
  return charts.map((c) => c.name);
}

async function setLambda(page: Page, lambda: number): Promise<void> {
  await page.locator("#xs-lambda").fill(String(lambda));
  assertEquals(await page.locator("#xs-lambda-value").textContent(), String(lambda));
}

Deno.test({
  name:
    "report in Chromium: Table 3 alone renders, and λ / datasets / bounds re-rank as deno task score does",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      await report(["--out", out, "--bootstrap", "200"], () => {});
      await withPage(`${out}/index.html`, async (page, errors) => {
        const names = await assertChartsRendered(page, 3);
        for (const n of ["ranking", "live", "imagenette", "params", "flops"]) {
          assert(names.includes(n), `chart ${n} missing (have ${names.join(", ")})`);
        }
        assertEquals(await page.locator('svg[data-chart="ranking"] .xs-bar').count(), 11);
        assertEquals(await page.locator("#xs-matrix tbody tr").count(), 11);

        // The default panel state is `deno task score`'s default.
        assertEquals(await liveRanks(page), await scoreRanks([]));
        const base = await liveRanks(page);
        for (const lambda of [0, 0.25, 0.9, 1]) {
          await setLambda(page, lambda);
          const want = await scoreRanks(["--lambda", String(lambda)]);
          assertEquals(await liveRanks(page), want, `λ = ${lambda}`);
          assertEquals(await page.locator('svg[data-chart="live"] .xs-bar').count(), 11);
        }
        await setLambda(page, 0);
        assert(
          JSON.stringify(await liveRanks(page)) !== JSON.stringify(base),
          "λ 0.5 → 0 changes Table 3's ranking",
        );

        // Untick two datasets: the proxy4-like subset, as `--datasets`.
        await setLambda(page, 0.3);
        for (const d of ["cifar10", "miniplaces", "mit-indoor67"]) {
          await page.locator(`input.xs-ds[value="${d}"]`).uncheck();
        }
        assertEquals(
          await liveRanks(page),
          await scoreRanks([
            "--lambda",
            "0.3",
            "--datasets",
            "imagenette160,cifar100,ham10000,stanford-dogs",
          ]),
        );
        await page.locator("#xs-bounds").selectOption("reference");
        assertEquals(
          await liveRanks(page),
          await scoreRanks(["--lambda", "0.3", "--bounds", "reference", "--suite", "proxy4"]),
        );
        // One dataset left: the page says why it cannot rank instead of throwing.
        for (const d of ["imagenette160", "cifar100", "ham10000"]) {
          await page.locator(`input.xs-ds[value="${d}"]`).uncheck();
        }
        assertEquals(await page.locator("#xs-live-status").getAttribute("data-ok"), "0");
        assertEquals(await page.locator("#xs-live-body tr").count(), 0);
        assertEquals(errors, []);
      });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "report in Chromium: a ledger with run folders shows curves and custom bounds re-rank",
  ignore: !haveChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // Two models × three datasets × two seeds; each run folder has its per-epoch record.
      const header =
        "model,dataset,accuracy,best_accuracy,best_epoch,epochs,preset,seed,params,image_size,batch_size," +
        "train_seconds,images_per_second,adapter,version,finished_at";
      const rows: string[] = [];
      const acc: Record<string, number[]> = {
        "mobilenet|cifar10": [90.1, 91.3],
        "mobilenet|cifar100": [70.2, 69.0],
        "mobilenet|ham10000": [75.5, 76.1],
        "tinynet|cifar10": [92.0, 91.0],
        "tinynet|cifar100": [65.0, 67.5],
        "tinynet|ham10000": [74.0, 77.0],
        "ghostnet|cifar10": [89.0, 89.5],
        "ghostnet|cifar100": [66.0, 64.0],
        "ghostnet|ham10000": [79.0, 78.0],
      };
      for (const [key, seeds] of Object.entries(acc)) {
        const [model, dataset] = key.split("|");
        seeds.forEach((a, s) => {
          rows.push(
            `${model},${dataset},${a},${a},2,2,paper,${s + 1},2000000,32,32,10,50,llvmpipe,test,2026-01-01`,
          );
          const run = `${dir}/${model}_${dataset}_paper_s${s + 1}`;
          Deno.mkdirSync(run, { recursive: true });
          Deno.writeTextFileSync(
            `${run}/done.json`,
            JSON.stringify({ model, dataset, preset: "paper", seed: s + 1 }),
          );
          Deno.writeTextFileSync(
            `${run}/epochs.csv`,
            "epoch,lr_first,lr_last,train_loss,train_accuracy,test_accuracy\n" +
              `1,0.001,0.001,2.1,30,${a - 10}\n2,0.001,0.00001,1.6,45,${a}\n`,
          );
        });
      }
      // One run also has metrics.jsonl (as train writes it): its per-step loss and test loss/top-5 are drawn.
      const withMetrics = `${dir}/mobilenet_cifar10_paper_s1`;
      Deno.writeTextFileSync(
        `${withMetrics}/metrics.jsonl`,
        [1, 2, 3, 4].map((s) =>
          JSON.stringify({
            kind: "step",
            epoch: s > 2 ? 2 : 1,
            step: ((s - 1) % 2) + 1,
            steps_per_epoch: 2,
            loss: 3 - s / 2,
          })
        ).join("\n") + "\n" +
          [1, 2].map((e) =>
            JSON.stringify({
              kind: "epoch",
              epoch: e,
              train_loss: 2.5 - e,
              train_accuracy: 30 * e,
              test_accuracy: 40 * e,
              test_loss: 2 - e / 2,
              test_top5: 80 + e,
            })
          ).join("\n") + "\n",
      );
      Deno.writeTextFileSync(`${dir}/results.csv`, [header, ...rows].join("\n") + "\n");
      const out = `${dir}/report`;
      await report(["--results", `${dir}/results.csv`, "--out", out, "--bootstrap", "200"], () => {});
      await withPage(`${out}/index.html`, async (page, errors) => {
        const names = await assertChartsRendered(page, 3);
        assertEquals(names.filter((n) => n.startsWith("loss-")).length, 18);
        assertEquals(names.filter((n) => n.startsWith("accuracy-")).length, 18);
        // epochs.csv runs: train + test accuracy lines; the metrics.jsonl run adds test top-5.
        assertEquals(await page.locator('svg[data-chart^="accuracy-"] .xs-line').count(), 18 * 2 + 1);
        // Loss: epoch train loss everywhere; the metrics.jsonl run adds per-step loss and test loss.
        assertEquals(await page.locator('svg[data-chart^="loss-"] .xs-line').count(), 18 + 2);
        const k = (await page.locator(".run h3").allTextContents()).findIndex((t) =>
          t.startsWith("mobilenet / cifar10 / paper / seed 1")
        );
        assertEquals(await page.locator(`svg[data-chart="loss-${k}"] path.xs-line`).count(), 3);
        // Seeds: mean ± sd in the matrix, and the seed bootstrap column is filled.
        const cell = await page.locator("#xs-matrix tbody tr").first().locator("td").nth(1).textContent();
        assert(/± .*\(n=2\)/.test(cell ?? ""), `matrix cell "${cell}"`);
        assertEquals(
          await page.locator('svg[data-chart="ranking"] line[stroke="#2b8a3e"]').count() > 0,
          true,
        );

        // Custom bounds start at each column's min/max, so they rank as observed bounds do.
        await page.locator("#xs-bounds").selectOption("custom");
        await setLambda(page, 0.5);
        const ledger = ["--results", `${dir}/results.csv`, "--datasets", "cifar10,cifar100,ham10000"];
        assertEquals(await liveRanks(page), await scoreRanks([...ledger, "--lambda", "0.5"]));
        for (const lambda of [0, 1]) {
          await setLambda(page, lambda);
          assertEquals(await liveRanks(page), await scoreRanks([...ledger, "--lambda", String(lambda)]));
        }
        assertEquals(errors, []);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
