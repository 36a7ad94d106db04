/**
 * Dependency-free SVG charts for the report: the xScore ranking with confidence intervals, line
 * charts of training curves, and horizontal bars (parameters, FLOPs). Each chart is one `<svg>`
 * element that works both inline in HTML and as a standalone file.
 *
 * @module
 */
import { escapeXml, FONT, niceTicks, textWidth, tickDecimals } from "../plot.ts";

const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "0");

function open(W: number, H: number, name: string, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="xs-chart" data-chart="${escapeXml(name)}" width="${W}" ` +
    `height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="${FONT}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${
      escapeXml(title)
    }</text>`,
  ];
}

/** One model of the ranking chart. */
export interface RankingBar {
  label: string;
  value: number;
  /** Intervals drawn as whiskers, each with its legend name and colour. */
  intervals: { lo: number; hi: number; name: string; color: string }[];
}

/** A horizontal bar chart of xScores (best first) with interval whiskers. */
export function rankingSvg(
  opts: { title: string; xLabel: string; bars: readonly RankingBar[]; name?: string; width?: number },
): string {
  const bars = opts.bars;
  const labelW = Math.max(60, ...bars.map((b) => textWidth(b.label))) + 36;
  const legend = [...new Map(bars.flatMap((b) => b.intervals).map((i) => [i.name, i.color])).entries()];
  const W = opts.width ?? 760, rowH = 26, top = 34 + (legend.length ? 20 : 0), bottom = 44;
  const H = top + rowH * bars.length + bottom;
  const all = bars.flatMap((b) => [b.value, ...b.intervals.flatMap((i) => [i.lo, i.hi])]).filter(
    Number.isFinite,
  );
  const ticks = niceTicks(Math.min(0, ...all), Math.max(...all, 0.001), 6);
  const lo = ticks[0], hi = ticks[ticks.length - 1];
  const x0 = labelW, pw = W - labelW - 20;
  const sx = (v: number) => x0 + ((v - lo) / (hi - lo)) * pw;
  const out = open(W, H, opts.name ?? "ranking", opts.title);
  legend.forEach(([name, color], k) => {
    const lx = x0 + k * 230;
    out.push(
      `<line x1="${lx}" y1="${top - 12}" x2="${lx + 22}" y2="${
        top - 12
      }" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx + 28}" y="${top - 12}" dominant-baseline="middle">${escapeXml(name)}</text>`,
    );
  });
  const d = tickDecimals(ticks);
  for (const t of ticks) {
    const x = f(sx(t));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + rowH * bars.length}" stroke="#e6e6e6"/>`,
      `<text x="${x}" y="${top + rowH * bars.length + 16}" text-anchor="middle">${t.toFixed(d)}</text>`,
    );
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    out.push(
      `<text x="${x0 - 8}" y="${y + rowH / 2}" text-anchor="end" dominant-baseline="middle">${i + 1}. ${
        escapeXml(b.label)
      }</text>`,
      `<rect class="xs-bar" x="${f(Math.min(sx(0), sx(b.value)))}" y="${y + 5}" width="${
        f(Math.max(1, Math.abs(sx(b.value) - sx(0))))
      }" height="${rowH - 10}" fill="#9ab6e0"><title>${
        escapeXml(`${b.label}: ${b.value.toFixed(3)}`)
      }</title></rect>`,
    );
    b.intervals.forEach((iv, k) => {
      const yy = y + 8 + k * 5 + (b.intervals.length === 1 ? 5 : 0);
      out.push(
        `<line x1="${f(sx(iv.lo))}" y1="${yy}" x2="${
          f(sx(iv.hi))
        }" y2="${yy}" stroke="${iv.color}" stroke-width="2">` +
          `<title>${escapeXml(`${iv.name}: ${iv.lo.toFixed(3)} – ${iv.hi.toFixed(3)}`)}</title></line>`,
        `<line x1="${f(sx(iv.lo))}" y1="${yy - 3}" x2="${f(sx(iv.lo))}" y2="${
          yy + 3
        }" stroke="${iv.color}"/>`,
        `<line x1="${f(sx(iv.hi))}" y1="${yy - 3}" x2="${f(sx(iv.hi))}" y2="${
          yy + 3
        }" stroke="${iv.color}"/>`,
      );
    });
  });
  out.push(
    `<line x1="${f(sx(0))}" y1="${top}" x2="${f(sx(0))}" y2="${top + rowH * bars.length}" stroke="#333"/>`,
    `<text x="${x0 + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="13">${
      escapeXml(opts.xLabel)
    }</text>`,
    "</svg>",
  );
  return out.join("\n");
}

/** One line of a line chart. */
export interface Series {
  label: string;
  color: string;
  points: readonly { x: number; y: number }[];
  /** Draw markers at the points (epoch values) rather than a bare line (step values). */
  markers?: boolean;
}

/** A line chart with a shared x axis; series with no points are left out of the legend. */
export function lineChartSvg(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  name?: string;
  width?: number;
  height?: number;
}): string {
  const W = opts.width ?? 460, H = opts.height ?? 280;
  const series = opts.series.filter((s) => s.points.length > 0);
  const m = { left: 58, right: 14, top: 34 + 16 * Math.ceil(series.length / 2), bottom: 42 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const xs = series.flatMap((s) => s.points.map((p) => p.x)),
    ys = series.flatMap((s) => s.points.map((p) => p.y));
  const out = open(W, H, opts.name ?? "curve", opts.title);
  if (xs.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#777">no data</text>`, "</svg>");
    return out.join("\n");
  }
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), 5),
    yt = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const [xlo, xhi, ylo, yhi] = [xt[0], xt[xt.length - 1], yt[0], yt[yt.length - 1]];
  const sx = (v: number) => m.left + ((v - xlo) / (xhi - xlo || 1)) * pw;
  const sy = (v: number) => m.top + ph - ((v - ylo) / (yhi - ylo || 1)) * ph;
  const xd = tickDecimals(xt), yd = tickDecimals(yt);
  for (const t of xt) {
    out.push(
      `<line x1="${f(sx(t))}" y1="${m.top}" x2="${f(sx(t))}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${f(sx(t))}" y="${m.top + ph + 16}" text-anchor="middle">${t.toFixed(xd)}</text>`,
    );
  }
  for (const t of yt) {
    out.push(
      `<line x1="${m.left}" y1="${f(sy(t))}" x2="${m.left + pw}" y2="${f(sy(t))}" stroke="#eee"/>`,
      `<text x="${m.left - 6}" y="${f(sy(t))}" text-anchor="end" dominant-baseline="middle">${
        t.toFixed(yd)
      }</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
    `<text transform="translate(14 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${
      escapeXml(opts.yLabel)
    }</text>`,
  );
  series.forEach((s, k) => {
    const lx = m.left + (k % 2) * (pw / 2), ly = 34 + 16 * Math.floor(k / 2);
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${lx + 22}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`,
    );
    const d = s.points.map((p, i) => `${i ? "L" : "M"}${f(sx(p.x))},${f(sy(p.y))}`).join("");
    out.push(`<path class="xs-line" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"/>`);
    if (s.markers) {
      for (const p of s.points) {
        out.push(
          `<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="2.8" fill="${s.color}"><title>${
            escapeXml(`${s.label}: ${p.y.toFixed(4)} at ${p.x}`)
          }</title></circle>`,
        );
      }
    }
  });
  out.push("</svg>");
  return out.join("\n");
}

/** Horizontal bars (one value per label), e.g. parameters per model. */
export function barsSvg(opts: {
  title: string;
  xLabel: string;
  bars: readonly { label: string; value: number }[];
  name?: string;
  width?: number;
}): string {
  const labelW = Math.max(60, ...opts.bars.map((b) => textWidth(b.label))) + 14;
  const W = opts.width ?? 460, rowH = 22, top = 32, bottom = 40, H = top + rowH * opts.bars.length + bottom;
  const ticks = niceTicks(0, Math.max(...opts.bars.map((b) => b.value), 1e-9), 4);
  const hi = ticks[ticks.length - 1], pw = W - labelW - 20;
  const sx = (v: number) => labelW + (v / hi) * pw;
  const out = open(W, H, opts.name ?? "bars", opts.title);
  const d = tickDecimals(ticks);
  for (const t of ticks) {
    out.push(
      `<line x1="${f(sx(t))}" y1="${top}" x2="${f(sx(t))}" y2="${
        top + rowH * opts.bars.length
      }" stroke="#eee"/>`,
      `<text x="${f(sx(t))}" y="${top + rowH * opts.bars.length + 14}" text-anchor="middle">${
        t.toFixed(d)
      }</text>`,
    );
  }
  opts.bars.forEach((b, i) => {
    const y = top + i * rowH;
    out.push(
      `<text x="${labelW - 6}" y="${y + rowH / 2}" text-anchor="end" dominant-baseline="middle">${
        escapeXml(b.label)
      }</text>`,
      `<rect class="xs-bar" x="${labelW}" y="${y + 4}" width="${
        f(Math.max(1, sx(b.value) - labelW))
      }" height="${rowH - 8}" fill="#9ab6e0"><title>${escapeXml(`${b.label}: ${b.value}`)}</title></rect>`,
    );
  });
  out.push(
    `<text x="${labelW + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
    "</svg>",
  );
  return out.join("\n");
}
