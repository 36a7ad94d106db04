/**
 * `deno task report`: one self-contained `index.html` (inline SVG charts, an inline script for the
 * interactive panel, no network) and `report.md` from a results ledger and its run folders: the
 * accuracy matrix beside the paper's Table 3, the xScore with bootstrap intervals over seeds and
 * datasets and leave-one-dataset-out stability, the training curves, parameters/FLOPs, the
 * Imagenette-vs-xScore figure and the provenance of every number.
 *
 * Everything is read and rendered before the first file is written; each file is written atomically.
 *
 * @module
 */
import { assertWritableDir, intFlag, parseCli, writeOutputs } from "../runtime/cli.ts";
import { runMain } from "../runtime/errors.ts";
import { DEFAULT_LAMBDA } from "../score/xscore.ts";
import { SCORING_FLAGS, scoringChoice } from "../score/options.ts";
import { buildReportData, type ModelCost, type ReportData } from "../score/report/data.ts";
import { REFERENCE_LABEL } from "../score/reference.ts";
import { imagenetteSvg, rankingChartFile, renderHtml, renderMarkdown } from "../score/report/page.ts";
import { countModelOps, MODELS } from "../models/registry.ts";
import "../models/zoo.ts";
import { gitVersion } from "../runtime/version.ts";

const USAGE = `deno task report [options]

Writes OUT/index.html (self-contained: open it in any browser, no network) and OUT/report.md
(+ ranking.svg, imagenette-vs-xscore.svg) from a results ledger and its run folders.

  --results FILE...     ledger(s); repeatable (default: ${REFERENCE_LABEL}, the paper's Table 3)
  --runs DIR            run folders with metrics.jsonl / epochs.csv (default: the first ledger's
                        folder when --results is given)
  --suite full|proxy4   datasets to score (default: every dataset with results for 2+ models)
  --datasets a,b,...    datasets to score
  --lambda X            variance weight in [0,1] (default ${DEFAULT_LAMBDA}); the page lets you change it
  --bounds observed|reference
                        normalisation anchors (default observed; reference = Table 3's extremes)
  --bootstrap N         bootstrap replicates (default 1000)
  --seed S              seed of the bootstrap (default 1)
  --out DIR             output folder (default results/report; deno task report may write only under results/)
  --help                this text`;

interface Options {
  files: string[];
  runs?: string;
  datasets?: string[];
  lambda: number;
  bounds: "observed" | "reference";
  replicates: number;
  seed: number;
  out: string;
}

function parseOptions(args: string[]): Options {
  const parsed = parseCli(args, {
    usage: USAGE,
    allowPositionals: true,
    options: {
      ...SCORING_FLAGS,
      runs: { type: "string" },
      bootstrap: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
    },
  });
  const v = parsed.values;
  const { files, datasets, lambda, bounds } = scoringChoice(v, parsed.positionals, USAGE);
  const dirOf = (f: string) => (f.includes("/") ? f.slice(0, f.lastIndexOf("/")) : ".");
  return {
    files,
    runs: v.runs ?? (files.length ? dirOf(files[0]) : undefined),
    datasets,
    lambda,
    bounds,
    replicates: intFlag(v.bootstrap, "bootstrap", USAGE, { min: 10, max: 1_000_000 }) ?? 1000,
    seed: intFlag(v.seed, "seed", USAGE, { min: 0 }) ?? 1,
    out: (v.out ?? "results/report").replace(/\/+$/, "") || "/",
  };
}

/** Parameters and fvcore FLOPs of a zoo model at the paper's Table 1 setting (224 px, 10 classes). */
function zooCost(model: string): ModelCost | null {
  if (!Object.hasOwn(MODELS, model)) return null;
  const c = countModelOps(model, { numClasses: 10, imageSize: 224 });
  return {
    model,
    params: c.params,
    fvFlopsM: c.fvFlops / 1e6,
    macsM: c.macs / 1e6,
    imageSize: 224,
    classes: 10,
    source: "counted by the model zoo (deno task models), Table 1 setting",
  };
}

/** What one report run computed and wrote. */
export interface ReportRun {
  data: ReportData;
  written: string[];
}

/**
 * Runs the report task with command-line `args`; returns what it computed and wrote. `--help`
 * throws HelpRequested (runMain prints the usage); bad input throws UserError before anything is
 * written.
 */
export async function main(args: string[], log: (line: string) => void = console.log): Promise<ReportRun> {
  const opt = parseOptions(args);
  await assertWritableDir(opt.out, "--out", "report", ["results"]);
  const data = await buildReportData({
    files: opt.files,
    runsDir: opt.runs,
    datasets: opt.datasets,
    lambda: opt.lambda,
    bounds: opt.bounds,
    replicates: opt.replicates,
    seed: opt.seed,
    cost: zooCost,
    command: ["deno task report", ...args].join(" "),
    version: await gitVersion(),
  });
  const outputs: [string, string][] = [];
  const ranking = rankingChartFile(data), fig = imagenetteSvg(data);
  if (ranking) outputs.push(["ranking.svg", ranking]);
  if (fig) outputs.push(["imagenette-vs-xscore.svg", fig]);
  outputs.push([
    "report.md",
    renderMarkdown(data, {
      ranking: ranking ? "ranking.svg" : undefined,
      imagenette: fig ? "imagenette-vs-xscore.svg" : undefined,
    }),
  ]);
  outputs.push(["index.html", renderHtml(data)]);
  const written = await writeOutputs(opt.out, outputs);
  for (const w of data.warnings) log(`warning: ${w}`);
  const s = data.scored;
  log(
    `${data.entries.length} models × ${data.datasets.length} datasets from ${
      data.inputs.map((i) => i.file).join(", ")
    }; ` +
      (s
        ? `xScore over ${s.datasets.length} datasets (${s.models.length} models)`
        : `no xScore: ${data.scoredNote}`) +
      `; ${data.curves.length} run folders with curves`,
  );
  log(`wrote ${written.join(", ")}`);
  return { data, written };
}

if (import.meta.main) await runMain(async () => void await main(Deno.args));
