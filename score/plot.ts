/**
 * A dependency-free SVG scatter plot with labelled points and an optional regression line, for the
 * paper's Figure 1 (Imagenette-160 accuracy vs xScore). Labels are placed greedily around their point
 * so they overlap neither each other, the points, the legend, nor the frame.
 *
 * @module
 */

/** One labelled point. */
export interface ScatterPoint {
  label: string;
  x: number;
  y: number;
}

/** Input of {@link scatterSvg}. */
export interface ScatterOptions {
  title: string;
  /** A second, smaller title line (e.g. the correlation coefficients). */
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** A line y = intercept + slope·x drawn across the x range (clipped to the plot area). */
  line?: { slope: number; intercept: number; label: string };
  width?: number;
  height?: number;
}

/**
 * About `count` round tick values ("nice" steps of 1, 2, 2.5 or 5 × 10^k) covering [lo, hi]:
 * the first tick is ≤ lo and the last ≥ hi.
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    return niceTicks(lo - pad, lo + pad, count);
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999)!;
  const first = Math.floor(lo / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v < hi + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Fewest decimals (≤ 6) that print every tick exactly. */
export function tickDecimals(ticks: readonly number[]): number {
  let d = 0;
  while (d < 6 && ticks.some((t) => Math.abs(Number(t.toFixed(d)) - t) > 1e-9)) d++;
  return d;
}

/** Escapes text for XML/HTML content and attribute values. */
export const escapeXml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const overlapArea = (a: Box, b: Box) =>
  Math.max(0, Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0)) *
  Math.max(0, Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0));

/** Font size (px) of chart text. */
export const FONT = 12;
/** Generous average glyph width of a 12 px sans-serif: overestimating keeps labels apart. */
export const textWidth = (s: string, size: number = FONT): number => s.length * size * 0.6;

/** Renders the scatter plot as a standalone SVG document. */
export function scatterSvg(opts: ScatterOptions): string {
  const W = opts.width ?? 760, H = opts.height ?? 500;
  const m = { left: 72, right: 24, top: opts.subtitle ? 64 : 44, bottom: 56 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const xs = opts.points.map((p) => p.x), ys = opts.points.map((p) => p.y);
  const span = (v: number[]) => (Math.max(...v) - Math.min(...v)) || 1;
  // The axes span the data plus a margin; ticks are the round values inside that span.
  const [xmin, xmax] = [Math.min(...xs) - 0.06 * span(xs), Math.max(...xs) + 0.12 * span(xs)];
  const [ymin, ymax] = [Math.min(...ys) - 0.1 * span(ys), Math.max(...ys) + 0.1 * span(ys)];
  const inside = (lo: number, hi: number) => (t: number) => t >= lo - 1e-9 && t <= hi + 1e-9;
  const xt = niceTicks(xmin, xmax, 6).filter(inside(xmin, xmax));
  const yt = niceTicks(ymin, ymax, 6).filter(inside(ymin, ymax));
  const sx = (x: number) => m.left + ((x - xmin) / (xmax - xmin)) * pw;
  const sy = (y: number) => m.top + ph - ((y - ymin) / (ymax - ymin)) * ph;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="${FONT}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${
      escapeXml(opts.title)
    }</text>`,
  );
  if (opts.subtitle) {
    out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#444">${escapeXml(opts.subtitle)}</text>`);
  }
  out.push(
    `<defs><clipPath id="plot"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath></defs>`,
  );
  const xd = tickDecimals(xt), yd = tickDecimals(yt);
  for (const t of xt) {
    const x = f(sx(t));
    out.push(
      `<line x1="${x}" y1="${m.top}" x2="${x}" y2="${m.top + ph}" stroke="#e6e6e6"/>`,
      `<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${m.top + ph + 5}" stroke="#333"/>`,
      `<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${t.toFixed(xd)}</text>`,
    );
  }
  for (const t of yt) {
    const y = f(sy(t));
    out.push(
      `<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e6e6e6"/>`,
      `<line x1="${m.left - 5}" y1="${y}" x2="${m.left}" y2="${y}" stroke="#333"/>`,
      `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${t.toFixed(yd)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle" font-size="13">${
      escapeXml(opts.xLabel)
    }</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="13">` +
      `${escapeXml(opts.yLabel)}</text>`,
  );

  const LINE = "#1f5fbf";
  let lineSeg: [number, number, number, number] | undefined;
  if (opts.line) {
    const { slope, intercept } = opts.line;
    lineSeg = [sx(xmin), sy(intercept + slope * xmin), sx(xmax), sy(intercept + slope * xmax)];
    out.push(
      `<line x1="${f(lineSeg[0])}" y1="${f(lineSeg[1])}" x2="${f(lineSeg[2])}" y2="${f(lineSeg[3])}" ` +
        `stroke="${LINE}" stroke-width="2" clip-path="url(#plot)"/>`,
    );
  }

  const R = 4.5;
  const pts = opts.points.map((p) => ({ ...p, px: sx(p.x), py: sy(p.y) }));
  const pointBoxes: Box[] = pts.map((p) => ({
    x0: p.px - R - 2,
    y0: p.py - R - 2,
    x1: p.px + R + 2,
    y1: p.py + R + 2,
  }));
  const taken: Box[] = [];

  // Legend in the inner corner that covers the fewest points.
  if (opts.line) {
    const lw = 34 + textWidth(opts.line.label), lh = 24;
    const corners: Box[] = [
      { x0: m.left + pw - lw - 8, y0: m.top + ph - lh - 8, x1: m.left + pw - 8, y1: m.top + ph - 8 },
      { x0: m.left + 8, y0: m.top + 8, x1: m.left + 8 + lw, y1: m.top + 8 + lh },
      { x0: m.left + pw - lw - 8, y0: m.top + 8, x1: m.left + pw - 8, y1: m.top + 8 + lh },
      { x0: m.left + 8, y0: m.top + ph - lh - 8, x1: m.left + 8 + lw, y1: m.top + ph - 8 },
    ];
    const cost = (b: Box) =>
      pointBoxes.reduce((s, p) => s + overlapArea(b, p), 0) * 10 + (lineSeg ? segmentHits(lineSeg, b) : 0);
    const lg = corners.reduce((best, b) => (cost(b) < cost(best) ? b : best));
    taken.push(lg);
    const ly = (lg.y0 + lg.y1) / 2;
    out.push(
      `<rect x="${f(lg.x0)}" y="${f(lg.y0)}" width="${f(lw)}" height="${lh}" fill="white" stroke="#bbb"/>`,
      `<line x1="${f(lg.x0 + 6)}" y1="${f(ly)}" x2="${f(lg.x0 + 26)}" y2="${
        f(ly)
      }" stroke="${LINE}" stroke-width="2"/>`,
      `<text x="${f(lg.x0 + 30)}" y="${f(ly)}" dominant-baseline="middle">${
        escapeXml(opts.line.label)
      }</text>`,
    );
  }

  const frame: Box = { x0: m.left + 2, y0: m.top + 2, x1: m.left + pw - 2, y1: m.top + ph - 2 };
  const labels: string[] = [];
  // Place crowded points first: they have the fewest good spots.
  const order = pts.map((_, i) => i).sort((a, b) => crowd(pts, b) - crowd(pts, a));
  for (const i of order) {
    const p = pts[i];
    const w = textWidth(p.label), h = FONT + 2, g = R + 3;
    const candidates: { box: Box; anchor: string; tx: number; ty: number; pref: number }[] = [];
    const add = (dx: number, dy: number, anchor: "start" | "middle" | "end", pref: number) => {
      const tx = p.px + dx, ty = p.py + dy;
      const x0 = anchor === "start" ? tx : anchor === "end" ? tx - w : tx - w / 2;
      candidates.push({ box: { x0, y0: ty - h / 2, x1: x0 + w, y1: ty + h / 2 }, anchor, tx, ty, pref });
    };
    for (const [s, pref] of [[1, 0], [1.8, 3], [2.8, 6]] as const) {
      add(g * s, 0, "start", pref);
      add(-g * s, 0, "end", pref + 0.5);
      add(0, -(g + h / 2) * s, "middle", pref + 1);
      add(0, (g + h / 2) * s, "middle", pref + 1.5);
      add(g * s, -(g + h / 3) * s, "start", pref + 2);
      add(g * s, (g + h / 3) * s, "start", pref + 2.2);
      add(-g * s, -(g + h / 3) * s, "end", pref + 2.4);
      add(-g * s, (g + h / 3) * s, "end", pref + 2.6);
    }
    const score = (c: (typeof candidates)[number]) => {
      const outside = c.box.x0 < frame.x0 || c.box.x1 > frame.x1 || c.box.y0 < frame.y0 ||
        c.box.y1 > frame.y1;
      const hitLabels = taken.reduce((s, b) => s + overlapArea(c.box, b), 0);
      const hitPoints = pointBoxes.reduce((s, b, j) => s + (j === i ? 0 : overlapArea(c.box, b)), 0);
      const hitLine = lineSeg ? segmentHits(lineSeg, c.box) : 0;
      return (outside ? 1e6 : 0) + hitLabels * 100 + hitPoints * 100 + hitLine * 0.2 + c.pref;
    };
    const best = candidates.reduce((a, b) => (score(b) < score(a) ? b : a));
    taken.push(best.box);
    const far = Math.hypot(best.tx - p.px, best.ty - p.py) > g * 1.5;
    if (far) {
      // A leader line tells which point a displaced label belongs to.
      const cx = Math.min(Math.max(p.px, best.box.x0), best.box.x1),
        cy = Math.min(Math.max(p.py, best.box.y0), best.box.y1);
      labels.push(
        `<line x1="${f(p.px)}" y1="${f(p.py)}" x2="${f(cx)}" y2="${
          f(cy)
        }" stroke="#999" stroke-width="0.8"/>`,
      );
    }
    labels.push(
      `<text x="${f(best.tx)}" y="${f(best.ty)}" text-anchor="${best.anchor}" dominant-baseline="middle">` +
        `${escapeXml(p.label)}</text>`,
    );
  }
  for (const p of pts) {
    out.push(
      `<circle cx="${f(p.px)}" cy="${f(p.py)}" r="${R}" fill="#d9480f" stroke="white" stroke-width="1"/>`,
    );
  }
  out.push(...labels, "</svg>", "");
  return out.join("\n");
}

/** How many other points lie within 60 px: a proxy for how hard a label is to place. */
function crowd(pts: readonly { px: number; py: number }[], i: number): number {
  return pts.filter((q, j) => j !== i && Math.hypot(q.px - pts[i].px, q.py - pts[i].py) < 60).length;
}

/** Length of the part of segment `s` inside box `b` (0 if it misses), by Liang-Barsky clipping. */
function segmentHits(s: readonly [number, number, number, number], b: Box): number {
  const [x0, y0, x1, y1] = s;
  const dx = x1 - x0, dy = y1 - y0;
  let t0 = 0, t1 = 1;
  const clip = (p: number, q: number) => {
    if (p === 0) return q >= 0;
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    return t0 <= t1;
  };
  if (clip(-dx, x0 - b.x0) && clip(dx, b.x1 - x0) && clip(-dy, y0 - b.y0) && clip(dy, b.y1 - y0)) {
    return (t1 - t0) * Math.hypot(dx, dy);
  }
  return 0;
}
