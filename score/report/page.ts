/**
 * Renders {@link ReportData} as one self-contained HTML page (inline CSS, inline SVG charts, the
 * interactive panel's inline script; no network access) and the same tables as Markdown.
 *
 * @module
 */
import { escapeXml as esc } from "../plot.ts";
import { imagenetteFigureSvg } from "../output.ts";
import { barsSvg, lineChartSvg, rankingSvg, type Series } from "./charts.ts";
import type { ReportCell, ReportData, RunCurves, RunRow } from "./data.ts";
import { panelScript } from "./live.ts";

const DATASET_COLOR = "#d9480f", SEED_COLOR = "#2b8a3e";

const fx = (
  v: number | null | undefined,
  d: number,
) => (v === null || v === undefined || !Number.isFinite(v) ? "" : v.toFixed(d));
const signed = (v: number, d: number) => (v > 0 ? "+" : v < 0 ? "−" : "±") + Math.abs(v).toFixed(d);
const pct = (v: number) => `${Math.round(v * 100)}%`;

/** One line per ledger row behind a number: where it came from and under which protocol. */
function provenanceLine(r: RunRow): string {
  const parts = [r.source];
  if (r.note) parts.push(r.note);
  if (r.preset) parts.push(`preset ${r.preset}`);
  if (r.seed) parts.push(`seed ${r.seed}`);
  if (r.epochs) parts.push(`${r.epochs} epochs`);
  if (r.imageSize) parts.push(`${r.imageSize} px`);
  if (r.batchSize) parts.push(`batch ${r.batchSize}`);
  if (r.adapter) parts.push(`adapter ${r.adapter}`);
  if (r.version) parts.push(`version ${r.version}`);
  if (r.finishedAt) parts.push(`finished ${r.finishedAt}`);
  return parts.join(" · ");
}

/** The text of one accuracy cell: mean, ± sd and n when there are several seeds. */
function cellText(c: ReportCell): string {
  return c.n > 1 ? `${c.mean.toFixed(2)} ± ${fx(c.sd, 2)} (n=${c.n})` : c.mean.toFixed(2);
}

function table(head: string[], body: string[][], attrs = ""): string {
  return `<table ${attrs}><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>` +
    body.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("") + "</tbody></table>";
}

function matrixHtml(d: ReportData): string {
  const head = ["model", ...d.datasets.map(esc)];
  const body = d.entries.map((e, i) => [
    `<b>${esc(e)}</b>`,
    ...d.cells[i].map((c) => {
      if (!c) return `<span class="muted">—</span>`;
      const prov = c.rows.map((k) => provenanceLine(d.rows[k])).join("\n");
      let sub = "";
      if (c.paper !== null) {
        sub = `<div class="sub">paper ${c.paper.toFixed(2)}${
          c.diff !== null ? ` · Δ ${signed(c.diff, 2)}` : ` · <span title="${esc(c.diffNote)}">Δ n/a</span>`
        }</div>`;
      }
      return `<span class="acc" title="${esc(prov)}">${cellText(c)}</span>${sub}`;
    }),
  ]);
  return table(head, body, `id="xs-matrix" class="matrix"`);
}

function scoredHtml(d: ReportData): string {
  const s = d.scored;
  if (!s) return `<p class="note" id="xs-no-score">${esc(d.scoredNote)}</p>`;
  const order = s.result.scores.map((_, i) => i).sort((a, b) =>
    s.result.scores[a].rank - s.result.scores[b].rank
  );
  const level = Math.round(s.datasetBootstrap.level * 100);
  const head = [
    "rank",
    "model",
    "G",
    "V",
    "xScore",
    `${level}% CI, datasets`,
    `rank CI, datasets`,
    "P(rank 1), datasets",
    `${level}% CI, seeds`,
    "rank CI, seeds",
    "keeps rank, one dataset left out",
    "rank range, one left out",
  ];
  const body = order.map((i) => {
    const r = s.result.scores[i], db = s.datasetBootstrap, sb = s.seeds, lo = s.lodo;
    return [
      String(r.rank),
      `<b>${esc(r.model)}</b>`,
      fx(r.G, 3),
      fx(r.V, 3),
      `<b>${fx(r.xscore, 3)}</b>`,
      `${fx(db.xscore[i].lo, 3)} – ${fx(db.xscore[i].hi, 3)}`,
      `${db.rank[i].lo}–${db.rank[i].hi}`,
      pct(db.top1[i]),
      sb ? `${fx(sb.xscore[i].lo, 3)} – ${fx(sb.xscore[i].hi, 3)}` : "n/a",
      sb ? `${sb.rank[i].lo}–${sb.rank[i].hi}` : "n/a",
      lo ? pct(lo.stability[i]) : "n/a",
      lo ? `${lo.range[i].lo}–${lo.range[i].hi}` : "n/a",
    ];
  });
  const bars = order.map((i) => ({
    label: s.result.scores[i].model,
    value: s.result.scores[i].xscore,
    intervals: [
      { ...s.datasetBootstrap.xscore[i], name: `${level}% CI over datasets`, color: DATASET_COLOR },
      ...(s.seeds ? [{ ...s.seeds.xscore[i], name: `${level}% CI over seeds`, color: SEED_COLOR }] : []),
    ],
  }));
  const chart = rankingSvg({
    title: `xScore ranking (${s.datasets.length} datasets, λ = ${s.result.lambda}, ${s.boundsMode} bounds)`,
    xLabel: "xScore = G − λ·V",
    bars,
  });
  const notes = [
    `Scored datasets: ${s.datasets.join(", ")}. Bounds: ${
      s.boundsMode === "observed" ? "per-dataset min/max over the scored models" : "Table 3's column extremes"
    }.`,
    `Bootstrap: ${s.replicates} replicates (seed ${s.bootstrapSeed}), percentile intervals. Over datasets: the ${s.datasets.length} datasets drawn with replacement` +
    (s.datasetBootstrap.degenerate
      ? ` (${s.datasetBootstrap.degenerate} replicates with an empty range left out)`
      : "") +
    `. Over seeds: ${
      s.seeds
        ? "each cell's seed runs drawn with replacement"
        : "n/a, every cell has a single run (train more seeds: deno task sweep --seeds 1,2,3)"
    }.`,
    s.lodo
      ? `Leave one dataset out: ${s.lodo.folds.length} folds; "keeps rank" is the share of folds in which a model has its full-suite rank.`
      : "Leave one dataset out needs at least 3 datasets.",
  ];
  if (s.dropped.length) {
    notes.push(
      `Not scored (missing datasets): ${
        s.dropped.map((x) => `${x.model} (${x.missing.join(", ")})`).join("; ")
      }.`,
    );
  }
  let lodoTable = "";
  if (s.lodo) {
    lodoTable = `<details><summary>Ranks with one dataset left out</summary>${
      table(
        ["model", "full", ...s.lodo.folds.map((f) => `without ${esc(f.left)}`)],
        order.map((
          i,
        ) => [
          esc(s.result.scores[i].model),
          String(s.lodo!.fullRank[i]),
          ...s.lodo!.folds.map((f) => String(f.rank[i])),
        ]),
        `id="xs-lodo"`,
      )
    }</details>`;
  }
  return table(head, body, `id="xs-score"`) + `<div class="chart">${chart}</div>` +
    notes.map((n) => `<p class="note">${esc(n)}</p>`).join("") + lodoTable;
}

function panelHtml(d: ReportData): string {
  const scored = new Set(d.scored?.datasets ?? d.datasets);
  const ds = d.datasets.map((x, j) =>
    `<label><input type="checkbox" class="xs-ds" value="${esc(x)}"${scored.has(x) ? " checked" : ""}> ${
      esc(x)
    }</label>` +
    `<span class="xs-custom" hidden> min <input class="xs-min" data-dataset="${
      esc(x)
    }" type="number" step="0.01" size="6">` +
    ` max <input class="xs-max" data-dataset="${esc(x)}" type="number" step="0.01" size="6">` +
    `${
      d.referenceBounds[j]
        ? ` <span class="muted">(Table 3: ${d.referenceBounds[j]!.min}–${d.referenceBounds[j]!.max})</span>`
        : ""
    }</span>`
  ).map((h) => `<div>${h}</div>`).join("");
  const bounds = d.scored?.boundsMode ?? "observed";
  const data = {
    entries: d.entries,
    datasets: d.datasets,
    values: d.cells.map((row) => row.map((c) => (c ? c.mean : null))),
    reference: d.referenceBounds,
  };
  return `<div class="panel">
<div><label>λ <input id="xs-lambda" type="range" min="0" max="1" step="0.01" value="${d.lambda}"></label>
<output id="xs-lambda-value">${d.lambda}</output></div>
<div><label>bounds <select id="xs-bounds">
<option value="observed"${
    bounds === "observed" ? " selected" : ""
  }>observed (min/max over the ranked models)</option>
<option value="reference"${
    bounds === "reference" ? " selected" : ""
  }>reference (Table 3 column extremes)</option>
<option value="custom">custom</option></select></label></div>
<fieldset><legend>datasets</legend>${ds}</fieldset>
<p id="xs-live-status" class="note"></p>
<table id="xs-live"><thead><tr><th>rank</th><th>model</th><th>G</th><th>V</th><th>xScore</th></tr></thead><tbody id="xs-live-body"></tbody></table>
<svg xmlns="http://www.w3.org/2000/svg" id="xs-live-chart" class="xs-chart" data-chart="live" width="620" height="60" font-family="Helvetica, Arial, sans-serif" font-size="12"></svg>
</div>
<script type="application/json" id="xs-panel-data">${JSON.stringify(data).replace(/</g, "\\u003c")}</script>
<script>${panelScript()}</script>`;
}

function curveCharts(c: RunCurves, k: number): string {
  const ep = c.epochs;
  const pts = (get: (e: (typeof ep)[number]) => number | null) =>
    ep.filter((e) => get(e) !== null).map((e) => ({ x: e.epoch, y: get(e)! }));
  const loss: Series[] = [
    {
      label: "train loss (per log line)",
      color: "#9ab6e0",
      points: c.steps.filter((s) => s.loss !== null).map((s) => ({ x: s.x, y: s.loss! })),
    },
    { label: "train loss (epoch)", color: "#1f5fbf", points: pts((e) => e.trainLoss), markers: true },
    { label: "test loss", color: DATASET_COLOR, points: pts((e) => e.testLoss), markers: true },
  ];
  const acc: Series[] = [
    { label: "train acc (epoch)", color: "#1f5fbf", points: pts((e) => e.trainAccuracy), markers: true },
    { label: "test top-1", color: DATASET_COLOR, points: pts((e) => e.testAccuracy), markers: true },
    { label: "test top-5", color: SEED_COLOR, points: pts((e) => e.testTop5), markers: true },
  ];
  return `<div class="run" id="xs-run-${k}"><h3>${esc(c.label)}</h3><p class="muted">${
    esc(`${c.dir} · from ${c.sources.join(", ")} · ${ep.length} epochs`)
  }</p>` +
    lineChartSvg({ title: "loss", xLabel: "epoch", yLabel: "loss", series: loss, name: `loss-${k}` }) +
    lineChartSvg({ title: "accuracy", xLabel: "epoch", yLabel: "%", series: acc, name: `accuracy-${k}` }) +
    "</div>";
}

function costsHtml(d: ReportData): string {
  if (d.costs.length === 0) {
    return `<p class="note">No parameter counts: the models are not in the zoo and the ledger has no params column.</p>`;
  }
  const body = d.costs.map((c) => [
    `<b>${esc(c.model)}</b>`,
    c.params === null ? "" : c.params.toLocaleString("en-US"),
    fx(c.fvFlopsM, 1),
    fx(c.macsM, 1),
    c.imageSize === null ? "" : String(c.imageSize),
    c.classes === null ? "" : String(c.classes),
    esc(c.source),
  ]);
  const counted = d.costs.filter((c) => c.fvFlopsM !== null);
  const charts = counted.length
    ? barsSvg({
      title: `parameters (M), ${counted[0].imageSize} px, ${counted[0].classes} classes`,
      xLabel: "M parameters",
      bars: counted.map((c) => ({ label: c.model, value: Number(((c.params ?? 0) / 1e6).toFixed(3)) })),
      name: "params",
    }) + barsSvg({
      title: `fvcore FLOPs (M), ${counted[0].imageSize} px`,
      xLabel: "M FLOPs",
      bars: counted.map((c) => ({ label: c.model, value: Number(c.fvFlopsM!.toFixed(1)) })),
      name: "flops",
    })
    : "";
  return table(
    ["model", "params", "fvFLOPs (M)", "MACs (M)", "image size", "classes", "source"],
    body,
    `id="xs-costs"`,
  ) +
    `<div class="chart">${charts}</div>`;
}

/**
 * The Imagenette-160 vs xScore scatter (the paper's Figure 1, drawn as deno task score draws it), or
 * undefined when it cannot be drawn.
 */
export function imagenetteSvg(d: ReportData): string | undefined {
  if (!d.imagenette || !d.scored) return undefined;
  return imagenetteFigureSvg(d.imagenette, d.scored.result, d.scored.boundsMode);
}

function imagenetteHtml(d: ReportData): string {
  const svg = imagenetteSvg(d);
  if (!svg) {
    return `<p class="note">No Imagenette-vs-xScore figure: it needs an imagenette160 result for every scored model and at least 3 scored models (as deno task score --imagenette-correlation).</p>`;
  }
  return `<div class="chart">${svg.replace("<svg ", `<svg class="xs-chart" data-chart="imagenette" `)}</div>`;
}

function provenanceHtml(d: ReportData): string {
  const inputs = table(
    ["input", "rows", "sha256"],
    d.inputs.map((i) => [esc(i.file), String(i.rows), `<code>${i.sha256}</code>`]),
    `id="xs-inputs"`,
  );
  const rows = table(
    [
      "source",
      "model",
      "dataset",
      "accuracy",
      "preset",
      "seed",
      "epochs",
      "image size",
      "batch",
      "params",
      "adapter",
      "version",
      "finished",
    ],
    d.rows.map((r) => [
      esc(r.source + (r.note ? ` (${r.note})` : "")),
      esc(r.model),
      esc(r.dataset),
      r.accuracy.toFixed(2),
      esc(r.preset),
      esc(r.seed),
      esc(r.epochs),
      esc(r.imageSize),
      esc(r.batchSize),
      esc(r.params),
      esc(r.adapter),
      esc(r.version),
      esc(r.finishedAt),
    ]),
    `id="xs-provenance"`,
  );
  return inputs + `<details open><summary>Every ledger row (${d.rows.length})</summary>${rows}</details>`;
}

const CSS = `body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td:nth-child(2),td:first-child{text-align:left}.sub{font-size:11px;color:#666}.muted{color:#888}
.note{font-size:13px;color:#444}.chart svg,.run svg{margin:4px 8px 4px 0;border:1px solid #eee}.run{display:inline-block;vertical-align:top}
.panel{border:1px solid #ccc;padding:10px;border-radius:4px;background:#fafafa}fieldset{border:1px solid #ddd}code{font-size:11px}
#xs-provenance td{text-align:left}`;

/** The whole page. */
export function renderHtml(d: ReportData): string {
  const curves = d.curves.length
    ? d.curves.map(curveCharts).join("")
    : `<p class="note">No training curves: ${
      d.paperOnly
        ? "the input is the paper's Table 3"
        : "no run folders with metrics.jsonl or epochs.csv (pass --runs DIR)"
    }.</p>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>xscore report</title><style>${CSS}</style></head><body>
<h1>xscore report</h1>
<p class="note">Generated ${esc(d.generatedAt)} by xscore ${esc(d.version)}: <code>${
    esc(d.command)
  }</code></p>
${d.warnings.map((w) => `<p class="note">warning: ${esc(w)}</p>`).join("")}
<h2 id="matrix">Accuracy matrix (top-1 %, Table 3 layout)</h2>
<p class="note">Mean over seeds ± sample sd (n seeds). ${
    d.paperOnly
      ? "This is the paper's Table 3 as printed."
      : "Under each cell: the paper's Table 3 value and the difference (Δ = ours − paper) where the run used the paper's full protocol (preset paper or reference)."
  } Hover a value for the ledger rows behind it.</p>
${matrixHtml(d)}
<h2 id="xscore">xScore and how robust the ranking is</h2>
${scoredHtml(d)}
<h2 id="panel">Explore: λ, datasets, bounds</h2>
<p class="note">The ranking below is recomputed in the page with the functions of score/xscore.ts (the same code as <code>deno task score</code>).</p>
${panelHtml(d)}
<h2 id="imagenette">Imagenette-160 vs xScore</h2>
${imagenetteHtml(d)}
<h2 id="curves">Training curves</h2>
${curves}
<h2 id="costs">Parameters and FLOPs</h2>
${costsHtml(d)}
<h2 id="provenance">Provenance</h2>
${provenanceHtml(d)}
</body></html>
`;
}

function md(head: string[], rows: string[][]): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${head.map(cell).join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ]
    .join("\n");
}

/** The report as Markdown: the same tables as the page, charts as the SVG files written beside it. */
export function renderMarkdown(d: ReportData, charts: { ranking?: string; imagenette?: string }): string {
  const out: string[] = [
    "# xscore report",
    "",
    `Generated ${d.generatedAt} by xscore ${d.version}: \`${d.command}\``,
    "",
  ];
  for (const w of d.warnings) out.push(`warning: ${w}`, "");
  out.push(
    "## Accuracy matrix (top-1 %)",
    "",
    "Mean ± sample sd over seeds (n); `paper` is Table 3, Δ = ours − paper (full protocol only).",
    "",
  );
  out.push(md(
    ["model", ...d.datasets],
    d.entries.map((e, i) => [
      e,
      ...d.cells[i].map((c) => {
        if (!c) return "—";
        let s = cellText(c);
        if (c.paper !== null) {
          s += ` (paper ${c.paper.toFixed(2)}${c.diff !== null ? `, Δ ${signed(c.diff, 2)}` : ", Δ n/a"})`;
        }
        return s;
      }),
    ]),
  ));
  out.push("", "## xScore", "");
  const s = d.scored;
  if (!s) out.push(d.scoredNote);
  else {
    const order = s.result.scores.map((_, i) => i).sort((a, b) =>
      s.result.scores[a].rank - s.result.scores[b].rank
    );
    out.push(
      `Datasets: ${
        s.datasets.join(", ")
      }; λ = ${s.result.lambda}; bounds ${s.boundsMode}; ${s.replicates} bootstrap replicates (seed ${s.bootstrapSeed}).`,
      "",
    );
    out.push(md(
      [
        "rank",
        "model",
        "G",
        "V",
        "xScore",
        "95% CI datasets",
        "rank CI datasets",
        "95% CI seeds",
        "keeps rank (LODO)",
      ],
      order.map((i) => {
        const r = s.result.scores[i];
        return [
          String(r.rank),
          r.model,
          fx(r.G, 3),
          fx(r.V, 3),
          fx(r.xscore, 3),
          `${fx(s.datasetBootstrap.xscore[i].lo, 3)} – ${fx(s.datasetBootstrap.xscore[i].hi, 3)}`,
          `${s.datasetBootstrap.rank[i].lo}–${s.datasetBootstrap.rank[i].hi}`,
          s.seeds ? `${fx(s.seeds.xscore[i].lo, 3)} – ${fx(s.seeds.xscore[i].hi, 3)}` : "n/a (1 seed)",
          s.lodo ? pct(s.lodo.stability[i]) : "n/a",
        ];
      }),
    ));
    if (charts.ranking) out.push("", `![xScore ranking](${charts.ranking})`);
    if (charts.imagenette && d.imagenette) {
      out.push(
        "",
        `Imagenette-160 vs xScore: Pearson r = ${d.imagenette.pearson.toFixed(3)}, Spearman ρ = ${
          d.imagenette.spearman.toFixed(3)
        }.`,
        "",
        `![Imagenette-160 vs xScore](${charts.imagenette})`,
      );
    }
  }
  out.push("", "## Training runs", "");
  if (d.curves.length === 0) out.push("No run folders with metrics.jsonl or epochs.csv.");
  else {
    out.push(md(
      ["run", "epochs", "last test acc", "best test acc", "last train loss", "source"],
      d.curves.map((c) => {
        const accs = c.epochs.map((e) => e.testAccuracy).filter((v): v is number => v !== null);
        const last = c.epochs[c.epochs.length - 1];
        return [
          c.label,
          String(c.epochs.length),
          fx(last?.testAccuracy, 2),
          accs.length ? Math.max(...accs).toFixed(2) : "",
          fx(last?.trainLoss, 4),
          c.sources.join(", "),
        ];
      }),
    ));
  }
  out.push("", "## Parameters and FLOPs", "");
  out.push(md(
    ["model", "params", "fvFLOPs (M)", "MACs (M)", "image size", "classes", "source"],
    d.costs.map((
      c,
    ) => [
      c.model,
      c.params === null ? "" : String(c.params),
      fx(c.fvFlopsM, 1),
      fx(c.macsM, 1),
      String(c.imageSize ?? ""),
      String(c.classes ?? ""),
      c.source,
    ]),
  ));
  out.push("", "## Provenance", "");
  out.push(md(["input", "rows", "sha256"], d.inputs.map((i) => [i.file, String(i.rows), i.sha256])), "");
  out.push(
    md(
      ["row", "model", "dataset", "accuracy", "provenance"],
      d.rows.map((r) => [r.source, r.model, r.dataset, r.accuracy.toFixed(2), provenanceLine(r)]),
    ),
  );
  out.push("");
  return out.join("\n");
}

/** The ranking chart alone (written as ranking.svg beside report.md), or undefined without a score. */
export function rankingChartFile(d: ReportData): string | undefined {
  const s = d.scored;
  if (!s) return undefined;
  const order = s.result.scores.map((_, i) => i).sort((a, b) =>
    s.result.scores[a].rank - s.result.scores[b].rank
  );
  return rankingSvg({
    title: `xScore ranking (${s.datasets.length} datasets, λ = ${s.result.lambda}, ${s.boundsMode} bounds)`,
    xLabel: "xScore = G − λ·V",
    bars: order.map((i) => ({
      label: s.result.scores[i].model,
      value: s.result.scores[i].xscore,
      intervals: [
        { ...s.datasetBootstrap.xscore[i], name: "95% CI over datasets", color: DATASET_COLOR },
        ...(s.seeds ? [{ ...s.seeds.xscore[i], name: "95% CI over seeds", color: SEED_COLOR }] : []),
      ],
    })),
  }) + "\n";
}
