/**
 * The JavaScript of the report's interactive panel. Its xScore code is not a copy: it is the source
 * of the functions in `score/xscore.ts` as the runtime holds them ({@link Function.toString} of the
 * imported functions), so the page computes exactly what `deno task score` computes.
 *
 * @module
 */
import * as xscore from "../xscore.ts";

/** The functions of score/xscore.ts the page needs, in dependency-free declaration form. */
const XSCORE_FUNCTIONS = [
  xscore.mean,
  xscore.sampleVariance,
  xscore.observedBounds,
  xscore.minMax,
  xscore.normalize,
  xscore.rankDescending,
  xscore.scoreRow,
  xscore.computeXScore,
];

/**
 * The body of a function that returns `{ computeXScore, observedBounds }`, built from the source of
 * score/xscore.ts. Throws if a function is not a plain named declaration (the page needs them
 * hoisted by name).
 */
export function xscoreModuleSource(): string {
  const parts = XSCORE_FUNCTIONS.map((fn) => {
    const src = fn.toString();
    if (!src.startsWith(`function ${fn.name}(`)) {
      throw new Error(
        `score/xscore.ts: ${fn.name} is not a plain function declaration; the report embeds it`,
      );
    }
    return src;
  });
  return [
    `const DEFAULT_LAMBDA = ${JSON.stringify(xscore.DEFAULT_LAMBDA)};`,
    ...parts,
    "return { computeXScore, observedBounds };",
  ]
    .join("\n");
}

/** The panel's script: reads the JSON in `#xs-panel-data` and re-ranks on every control change. */
export function panelScript(): string {
  return `"use strict";
(() => {
const XS = (function () {
${xscoreModuleSource()}
})();
const P = JSON.parse(document.getElementById("xs-panel-data").textContent);
const $ = (id) => document.getElementById(id);
const lambdaInput = $("xs-lambda"), lambdaOut = $("xs-lambda-value"), boundsSel = $("xs-bounds");
const status = $("xs-live-status"), tbody = $("xs-live-body"), chart = $("xs-live-chart");
const boxes = [...document.querySelectorAll("input.xs-ds")];
const SVGNS = "http://www.w3.org/2000/svg";
function selected() { return boxes.filter((b) => b.checked).map((b) => b.value); }
function matrixFor(ds) {
  const cols = ds.map((d) => P.datasets.indexOf(d));
  const models = [], values = [];
  P.entries.forEach((m, i) => {
    const row = cols.map((j) => P.values[i][j]);
    if (row.every((v) => v !== null)) { models.push(m); values.push(row); }
  });
  return { models, datasets: ds, values };
}
function customInputs(d) {
  return [document.querySelector('input.xs-min[data-dataset="' + d + '"]'), document.querySelector('input.xs-max[data-dataset="' + d + '"]')];
}
function boundsFor(matrix) {
  const mode = boundsSel.value;
  if (mode === "observed") return undefined;
  if (mode === "reference") {
    const b = matrix.datasets.map((d) => P.reference[P.datasets.indexOf(d)]);
    const missing = matrix.datasets.filter((d, k) => !b[k]);
    if (missing.length) throw new Error("Table 3 has no anchors for " + missing.join(", "));
    return { min: b.map((x) => x.min), max: b.map((x) => x.max) };
  }
  const min = [], max = [];
  for (const d of matrix.datasets) {
    const [lo, hi] = customInputs(d);
    const a = Number(lo.value), z = Number(hi.value);
    if (lo.value === "" || hi.value === "" || !Number.isFinite(a) || !Number.isFinite(z)) throw new Error("bounds of " + d + " are not numbers");
    min.push(a); max.push(z);
  }
  return { min, max };
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = text;
  return e;
}
function draw(rows) {
  while (chart.firstChild) chart.removeChild(chart.firstChild);
  const W = 620, rowH = 22, left = 150, H = 30 + rowH * rows.length + 10;
  chart.setAttribute("width", W); chart.setAttribute("height", H); chart.setAttribute("viewBox", "0 0 " + W + " " + H);
  const vals = rows.map((r) => r.xscore);
  const lo = Math.min(0, ...vals), hi = Math.max(0.001, ...vals);
  const sx = (v) => left + (v - lo) / (hi - lo) * (W - left - 60);
  chart.appendChild(svg("rect", { width: W, height: H, fill: "white" }));
  chart.appendChild(svg("text", { x: W / 2, y: 18, "text-anchor": "middle", "font-weight": "bold" }, "xScore, λ = " + P.fmtLambda(Number(lambdaInput.value))));
  rows.forEach((r, i) => {
    const y = 30 + i * rowH;
    chart.appendChild(svg("text", { x: left - 6, y: y + rowH / 2, "text-anchor": "end", "dominant-baseline": "middle" }, r.rank + ". " + r.model));
    chart.appendChild(svg("rect", { class: "xs-bar", x: Math.min(sx(0), sx(r.xscore)), y: y + 3, width: Math.max(1, Math.abs(sx(r.xscore) - sx(0))), height: rowH - 6, fill: "#9ab6e0" }));
    chart.appendChild(svg("text", { x: Math.max(sx(0), sx(r.xscore)) + 4, y: y + rowH / 2, "dominant-baseline": "middle" }, r.xscore.toFixed(3)));
  });
}
function update() {
  const lambda = Number(lambdaInput.value);
  lambdaOut.textContent = P.fmtLambda(lambda);
  document.querySelectorAll(".xs-custom").forEach((e) => { e.hidden = boundsSel.value !== "custom"; });
  const ds = selected();
  tbody.textContent = "";
  try {
    if (ds.length < 2) throw new Error("select at least 2 datasets (V is a sample variance)");
    const matrix = matrixFor(ds);
    if (matrix.models.length < 2) throw new Error("fewer than 2 models have a result on every selected dataset");
    const result = XS.computeXScore(matrix, { lambda, bounds: boundsFor(matrix) });
    const rows = result.scores.slice().sort((a, b) => a.rank - b.rank);
    for (const s of rows) {
      const tr = document.createElement("tr");
      tr.dataset.model = s.model; tr.dataset.rank = String(s.rank); tr.dataset.xscore = String(s.xscore);
      for (const v of [s.rank, s.model, s.G.toFixed(3), s.V.toFixed(3), s.xscore.toFixed(3)]) {
        const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
      }
      tbody.appendChild(tr);
    }
    draw(rows);
    status.textContent = matrix.models.length + " models × " + ds.length + " datasets, λ = " + P.fmtLambda(lambda) + ", bounds " + boundsSel.value +
      (result.outsideUnitRange ? "; " + result.outsideUnitRange + " normalised values outside [0, 1] (kept)" : "");
    status.dataset.ok = "1";
  } catch (err) {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    status.textContent = "cannot rank: " + err.message;
    status.dataset.ok = "0";
  }
}
P.fmtLambda = (v) => String(Math.round(v * 100) / 100);
function fillCustom() {
  for (const d of P.datasets) {
    const j = P.datasets.indexOf(d);
    const col = P.values.map((row) => row[j]).filter((v) => v !== null);
    const [lo, hi] = customInputs(d);
    if (lo && lo.value === "" && col.length) lo.value = String(Math.min(...col));
    if (hi && hi.value === "" && col.length) hi.value = String(Math.max(...col));
  }
}
fillCustom();
for (const e of [lambdaInput, boundsSel, ...boxes, ...document.querySelectorAll("input.xs-min, input.xs-max")]) {
  e.addEventListener("input", update);
  e.addEventListener("change", update);
}
update();
})();
`;
}
