/**
 * Pictures a person can read, as standalone SVG strings (pure functions, no dependencies):
 * the block × step heatmap of the change metric (like the paper's Fig. 3/4), a caching schedule
 * as a grid, and the speed-quality chart of the caching benchmark.
 *
 * Every drawn data element carries a class (`cell`, `computed`/`reused`, `point`) and a
 * `<title>` tooltip with its value, so the files are both viewable and checkable.
 *
 * @module
 */

/** Escapes text for SVG/XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}

/** Coordinates with at most 2 decimals. */
function n2(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/** A value for a label: 3 significant digits, no exponent for ordinary magnitudes. */
function label(x: number): string {
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return String(Number(x.toPrecision(3)));
  return x.toExponential(1);
}

const FONT = `font-family="DejaVu Sans, Arial, sans-serif"`;
/** Rough width of a character at 11 px, to size margins for labels. */
const CHAR_W = 6.4;

function svgOpen(width: number, height: number, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${n2(width)}" height="${n2(height)}" ` +
    `viewBox="0 0 ${n2(width)} ${n2(height)}" ${FONT} font-size="11">\n` +
    `<title>${escapeXml(title)}</title>\n` +
    `<rect x="0" y="0" width="${n2(width)}" height="${n2(height)}" fill="#ffffff"/>\n`;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${n2(x)}" y="${n2(y)}"${attrs ? " " + attrs : ""}>${escapeXml(s)}</text>`;
}

/** Viridis colour map stops (perceptually uniform, readable in grey and by colour-blind people). */
const VIRIDIS = [
  [68, 1, 84],
  [72, 40, 120],
  [62, 73, 137],
  [49, 104, 142],
  [38, 130, 142],
  [31, 158, 137],
  [53, 183, 121],
  [110, 206, 88],
  [181, 222, 43],
  [253, 231, 37],
];

/** Colour of `u` in [0, 1] on the viridis map, as `#rrggbb`. */
export function viridis(u: number): string {
  const v = Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(v));
  const f = v - i;
  const hex = (k: number) =>
    Math.round(VIRIDIS[i][k] + (VIRIDIS[i + 1][k] - VIRIDIS[i][k]) * f).toString(16).padStart(
      2,
      "0",
    );
  return `#${hex(0)}${hex(1)}${hex(2)}`;
}

/** Every how many steps an axis gets a label so that labels are >= `minGap` px apart. */
function labelEvery(cell: number, minGap: number): number {
  for (const k of [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]) if (k * cell >= minGap) return k;
  return 1000;
}

/** Options of {@link changeHeatmapSvg}. */
export interface HeatmapOptions {
  title: string;
  /** Colour scale of the values: linear (default) or log10. */
  scale?: "linear" | "log";
  /** Values at or above this are drawn with the top colour (default: the largest from step 1). */
  max?: number;
}

/**
 * Block × step heatmap of `L1_rel` (`curves[block][step]`) with block names on the y axis, step
 * numbers on the x axis and a colour legend. Step 0 (no previous value, always computed) is drawn
 * grey and left out of the colour range.
 */
export function changeHeatmapSvg(
  curves: readonly (readonly number[])[],
  blocks: readonly string[],
  options: HeatmapOptions,
): string {
  if (curves.length === 0 || curves.length !== blocks.length) {
    throw new Error(`heatmap: ${curves.length} curves for ${blocks.length} block names`);
  }
  const steps = curves[0].length;
  if (steps === 0 || curves.some((c) => c.length !== steps)) {
    throw new Error("heatmap: curves must all have the same, non-zero number of steps");
  }
  const log = options.scale === "log";
  const vals = curves.flatMap((c) => c.slice(1)).filter((v) =>
    Number.isFinite(v) && (!log || v > 0)
  );
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = options.max ?? (vals.length ? Math.max(...vals) : 1);
  if (!log) lo = Math.min(0, lo);
  if (log && !(lo > 0)) lo = 1e-4;
  if (!(hi > lo)) hi = log ? lo * 10 : lo + 1;
  const tf = (v: number) => (log ? Math.log10(Math.max(v, lo)) : v);
  const norm = (v: number) => (tf(v) - tf(lo)) / (tf(hi) - tf(lo));

  const cellW = Math.max(8, Math.min(24, 640 / steps));
  const cellH = 16;
  const left = 12 + Math.max(...blocks.map((b) => b.length)) * CHAR_W;
  const top = 46;
  const gridW = cellW * steps;
  const gridH = cellH * blocks.length;
  const legendX = left + gridW + 24;
  const width = legendX + 16 + 70;
  const height = top + gridH + 44;
  const out: string[] = [svgOpen(width, height, options.title)];
  out.push(text(left, 20, options.title, `font-size="14" font-weight="bold"`));
  out.push(
    text(
      left,
      36,
      `relative L1 change of each block's output per step${log ? " (log colour scale)" : ""}`,
      `fill="#444"`,
    ),
  );
  out.push(`<g class="cells">`);
  for (const [i, c] of curves.entries()) {
    const y = top + i * cellH;
    for (let t = 0; t < steps; t++) {
      const x = left + t * cellW;
      const fill = t === 0 ? "#bbbbbb" : Number.isFinite(c[t]) ? viridis(norm(c[t])) : "#ff00ff";
      const tip = t === 0
        ? `${blocks[i]}, step 0: no previous value (always computed)`
        : `${blocks[i]}, step ${t}: L1_rel = ${label(c[t])}`;
      out.push(
        `<rect class="cell" x="${n2(x)}" y="${n2(y)}" width="${n2(cellW)}" height="${n2(cellH)}" ` +
          `fill="${fill}"><title>${escapeXml(tip)}</title></rect>`,
      );
    }
  }
  out.push(`</g>`);
  for (const [i, b] of blocks.entries()) {
    out.push(text(left - 6, top + i * cellH + cellH / 2 + 4, b, `text-anchor="end"`));
  }
  const every = labelEvery(cellW, 22);
  for (let t = 0; t < steps; t += every) {
    out.push(text(left + (t + 0.5) * cellW, top + gridH + 14, String(t), `text-anchor="middle"`));
  }
  out.push(text(left + gridW / 2, top + gridH + 34, "step", `text-anchor="middle"`));
  // Colour legend: a vertical gradient, top = hi.
  out.push(`<defs><linearGradient id="heat" x1="0" y1="1" x2="0" y2="0">`);
  for (let k = 0; k <= 10; k++) {
    out.push(`<stop offset="${k / 10}" stop-color="${viridis(k / 10)}"/>`);
  }
  out.push(`</linearGradient></defs>`);
  out.push(
    `<rect x="${n2(legendX)}" y="${top}" width="16" height="${
      n2(gridH)
    }" fill="url(#heat)" stroke="#666"/>`,
  );
  for (let k = 0; k <= 4; k++) {
    const u = k / 4;
    const v = log ? 10 ** (tf(lo) + u * (tf(hi) - tf(lo))) : lo + u * (hi - lo);
    const y = top + gridH * (1 - u);
    out.push(
      `<line x1="${n2(legendX + 16)}" y1="${n2(y)}" x2="${n2(legendX + 20)}" y2="${
        n2(y)
      }" stroke="#666"/>`,
    );
    out.push(
      text(legendX + 22, y + 4, (k === 4 && options.max !== undefined ? "≥" : "") + label(v)),
    );
  }
  out.push(text(legendX, top - 6, "L1_rel"));
  out.push(`</svg>\n`);
  return out.join("\n");
}

/** Options of {@link scheduleGridSvg}. */
export interface GridOptions {
  title: string;
}

/**
 * A schedule (`recompute[step][block]`) as a grid: a filled cell where the block is computed, an
 * empty one where its cached value is reused; each row ends with the block's computed count.
 */
export function scheduleGridSvg(
  recompute: readonly (readonly boolean[])[],
  blocks: readonly string[],
  options: GridOptions,
): string {
  const steps = recompute.length;
  if (steps === 0 || recompute.some((r) => r.length !== blocks.length) || blocks.length === 0) {
    throw new Error(`schedule grid: every row must have ${blocks.length} entries (one per block)`);
  }
  const cellW = Math.max(8, Math.min(24, 640 / steps));
  const cellH = 16;
  const left = 12 + Math.max(...blocks.map((b) => b.length)) * CHAR_W;
  const top = 46;
  const gridW = cellW * steps;
  const gridH = cellH * blocks.length;
  const width = left + gridW + 70;
  const height = top + gridH + 64;
  let reused = 0;
  for (const row of recompute) for (const r of row) if (!r) reused++;
  const frac = reused / (steps * blocks.length);
  const out: string[] = [svgOpen(width, height, options.title)];
  out.push(text(left, 20, options.title, `font-size="14" font-weight="bold"`));
  out.push(
    text(
      left,
      36,
      `${reused} of ${steps * blocks.length} block evaluations reused (${
        (frac * 100).toFixed(1)
      }%)`,
      `fill="#444"`,
    ),
  );
  out.push(`<g class="cells">`);
  for (const [j, b] of blocks.entries()) {
    const y = top + j * cellH;
    for (let t = 0; t < steps; t++) {
      const x = left + t * cellW;
      const on = recompute[t][j];
      out.push(
        `<rect class="${on ? "computed" : "reused"}" x="${n2(x + 1)}" y="${n2(y + 1)}" ` +
          `width="${n2(cellW - 2)}" height="${n2(cellH - 2)}" ` +
          (on ? `fill="#1f4e99" stroke="#1f4e99"` : `fill="#ffffff" stroke="#b0b0b0"`) +
          `><title>${escapeXml(`${b}, step ${t}: ${on ? "computed" : "reused"}`)}</title></rect>`,
      );
    }
  }
  out.push(`</g>`);
  for (const [j, b] of blocks.entries()) {
    const y = top + j * cellH + cellH / 2 + 4;
    out.push(text(left - 6, y, b, `text-anchor="end"`));
    const computed = recompute.reduce((s, r) => s + (r[j] ? 1 : 0), 0);
    out.push(text(left + gridW + 6, y, `${computed}/${steps}`, `fill="#444"`));
  }
  const every = labelEvery(cellW, 22);
  for (let t = 0; t < steps; t += every) {
    out.push(text(left + (t + 0.5) * cellW, top + gridH + 14, String(t), `text-anchor="middle"`));
  }
  out.push(text(left + gridW / 2, top + gridH + 30, "step", `text-anchor="middle"`));
  const ly = top + gridH + 40;
  out.push(`<rect x="${n2(left)}" y="${n2(ly)}" width="12" height="12" fill="#1f4e99"/>`);
  out.push(text(left + 16, ly + 10, "computed"));
  out.push(
    `<rect x="${n2(left + 90)}" y="${
      n2(ly)
    }" width="12" height="12" fill="#ffffff" stroke="#b0b0b0"/>`,
  );
  out.push(text(left + 106, ly + 10, "reused from cache"));
  out.push(`</svg>\n`);
  return out.join("\n");
}

/** One point of a speed-quality chart. */
export interface ChartPoint {
  x: number;
  y: number;
  /** Short text drawn beside the point (e.g. `δ=0.5`, `14 steps`). */
  label?: string;
}

/** One named series: points joined by a line in the given order (unless `line: false`). */
export interface ChartSeries {
  name: string;
  points: readonly ChartPoint[];
  line?: boolean;
  dashed?: boolean;
}

/** Options of {@link speedQualitySvg}. */
export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Horizontal reference lines (e.g. the uncached full-step FD). */
  hLines?: readonly { y: number; label: string }[];
  /** A logarithmic x axis (ticks at 1, 2 and 5 times powers of ten); x values must be > 0. */
  xLog?: boolean;
}

/** Ticks 1, 2, 5 × 10^k covering [lo, hi] (0 < lo <= hi): from the last at or below lo. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi >= lo)) throw new Error(`log axis: need 0 < lo <= hi, got ${lo}, ${hi}`);
  const all: number[] = [];
  for (let e = Math.floor(Math.log10(lo)) - 1; all.length === 0 || all[all.length - 1] < hi; e++) {
    for (const m of [1, 2, 5]) all.push(Number((m * 10 ** e).toPrecision(12)));
  }
  return all.slice(all.findLastIndex((v) => v <= lo), all.findIndex((v) => v >= hi) + 1);
}

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  if (ticks[ticks.length - 1] < hi) {
    ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  }
  return ticks;
}

const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/**
 * A scatter/line chart of speed against quality (e.g. x = speedup, y = FD) with one colour per
 * series, point labels, a legend, axes with round ticks and optional horizontal reference lines.
 */
export function speedQualitySvg(series: readonly ChartSeries[], options: ChartOptions): string {
  if (series.length === 0) throw new Error("chart: no series");
  for (const [i, s] of series.entries()) {
    if (s.points.length === 0) throw new Error(`chart: series ${i} (${s.name}) has no points`);
    for (const [k, p] of s.points.entries()) {
      if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) {
        throw new Error(`chart: series ${i} (${s.name}) point ${k} is not finite (${p.x}, ${p.y})`);
      }
    }
  }
  const width = options.width ?? 720;
  const height = options.height ?? 440;
  const legendW = 16 + Math.max(...series.map((s) => s.name.length)) * CHAR_W + 24;
  const pl = 64;
  const pt = 40;
  const pr = legendW + 16;
  const pb = 48;
  const pw = width - pl - pr;
  const ph = height - pt - pb;
  if (pw < 100 || ph < 100) throw new Error("chart: width/height too small for the plot");
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y))
    .concat((options.hLines ?? []).map((h) => h.y));
  if (options.xLog && xs.some((x) => !(x > 0))) throw new Error("chart: a log x axis needs x > 0");
  const xt = options.xLog
    ? logTicks(Math.min(...xs), Math.max(...xs))
    : niceTicks(Math.min(...xs), Math.max(...xs));
  const yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const x0 = xt[0];
  const x1 = xt[xt.length - 1];
  const y0 = yt[0];
  const y1 = yt[yt.length - 1];
  const sx = options.xLog
    ? (x: number) => pl + (Math.log(x / x0) / Math.log(x1 / x0)) * pw
    : (x: number) => pl + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => pt + ph - ((y - y0) / (y1 - y0)) * ph;
  const out: string[] = [svgOpen(width, height, options.title)];
  out.push(text(pl, 22, options.title, `font-size="14" font-weight="bold"`));
  out.push(`<g class="axes" stroke="#dddddd">`);
  for (const v of xt) {
    out.push(`<line x1="${n2(sx(v))}" y1="${pt}" x2="${n2(sx(v))}" y2="${n2(pt + ph)}"/>`);
  }
  for (const v of yt) {
    out.push(`<line x1="${pl}" y1="${n2(sy(v))}" x2="${n2(pl + pw)}" y2="${n2(sy(v))}"/>`);
  }
  out.push(`</g>`);
  out.push(
    `<rect x="${pl}" y="${pt}" width="${n2(pw)}" height="${n2(ph)}" fill="none" stroke="#444"/>`,
  );
  for (const v of xt) {
    out.push(text(sx(v), pt + ph + 16, label(v), `text-anchor="middle"`));
  }
  for (const v of yt) out.push(text(pl - 6, sy(v) + 4, label(v), `text-anchor="end"`));
  out.push(text(pl + pw / 2, height - 12, options.xLabel, `text-anchor="middle"`));
  out.push(
    text(
      16,
      pt + ph / 2,
      options.yLabel,
      `text-anchor="middle" transform="rotate(-90 16 ${n2(pt + ph / 2)})"`,
    ),
  );
  for (const h of options.hLines ?? []) {
    const y = sy(h.y);
    out.push(
      `<line class="hline" x1="${pl}" y1="${n2(y)}" x2="${n2(pl + pw)}" y2="${n2(y)}" ` +
        `stroke="#777" stroke-dasharray="2 3"/>`,
    );
    out.push(
      text(pl + pw - 4, y - 4, `${h.label} (${label(h.y)})`, `text-anchor="end" fill="#555"`),
    );
  }
  for (const [i, s] of series.entries()) {
    const color = PALETTE[i % PALETTE.length];
    out.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if ((s.line ?? true) && s.points.length > 1) {
      const pts = s.points.map((p) => `${n2(sx(p.x))},${n2(sy(p.y))}`).join(" ");
      out.push(
        `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.5"` +
          (s.dashed ? ` stroke-dasharray="5 3"` : "") + `/>`,
      );
    }
    for (const p of s.points) {
      const tip = `${s.name}${p.label ? " " + p.label : ""}: ${options.xLabel} ${label(p.x)}, ` +
        `${options.yLabel} ${label(p.y)}`;
      out.push(
        `<circle class="point" cx="${n2(sx(p.x))}" cy="${n2(sy(p.y))}" r="4" fill="${color}" ` +
          `stroke="#ffffff"><title>${escapeXml(tip)}</title></circle>`,
      );
      if (p.label) {
        out.push(text(sx(p.x) + 6, sy(p.y) - 6, p.label, `fill="${color}" font-size="10"`));
      }
    }
    out.push(`</g>`);
  }
  const lx = pl + pw + 16;
  for (const [i, s] of series.entries()) {
    const color = PALETTE[i % PALETTE.length];
    const y = pt + 8 + i * 18;
    if ((s.line ?? true) && s.points.length > 1) {
      const dash = s.dashed ? ` stroke-dasharray="5 3"` : "";
      out.push(
        `<line x1="${n2(lx)}" y1="${n2(y)}" x2="${n2(lx + 16)}" y2="${n2(y)}" ` +
          `stroke="${color}" stroke-width="2"${dash}/>`,
      );
    }
    out.push(`<circle cx="${n2(lx + 8)}" cy="${n2(y)}" r="3.5" fill="${color}"/>`);
    out.push(text(lx + 22, y + 4, s.name));
  }
  out.push(`</svg>\n`);
  return out.join("\n");
}
