/**
 * Hand-written SVG charts (no chart library), shared by the benchmarks:
 *  - renderBarChart: grouped vertical bars with value labels and a reference line (the retry-storm
 *    study's panels);
 *  - renderHBarChart: one horizontal bar per case, grouped series, linear or log axis, with
 *    reference lines (a floor, a baseline) drawn across;
 *  - renderCdfChart: empirical cumulative distributions, one line per series, log x axis.
 */

export interface BarSeries {
  /** Legend label. */
  readonly name: string;
  readonly color: string;
  /** Draw the bar hatched (used for the "with budget" variants). */
  readonly hatched?: boolean;
}

export interface BarPanel {
  readonly title: string;
  readonly yLabel: string;
  /** One label per group (x axis). */
  readonly groups: readonly string[];
  readonly series: readonly BarSeries[];
  /** values[group][series] */
  readonly values: ReadonlyArray<ReadonlyArray<number>>;
  /** How a value is printed above its bar. */
  readonly format: (value: number) => string;
  /** A dashed horizontal reference line (say, 1.1x load). */
  readonly reference?: { readonly value: number; readonly label: string } | undefined;
}

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const fmt = (n: number): string => String(Math.round(n * 100) / 100);

/** A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks up to `max`. */
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

function panel(p: BarPanel, x0: number, y0: number, width: number, height: number): string[] {
  const out: string[] = [];
  const left = x0 + 70;
  const right = x0 + width - 20;
  const top = y0 + 40;
  const legendRows = Math.ceil((p.series.length + (p.reference === undefined ? 0 : 1)) / 4);
  const bottom = y0 + height - 40 - legendRows * 20;
  const max = Math.max(...p.values.flat(), p.reference?.value ?? 0, Number.MIN_VALUE);
  const step = tickStep(max, 5);
  const yMax = Math.ceil((max * 1.08) / step) * step;
  const y = (v: number): number => bottom - (v / yMax) * (bottom - top);

  out.push(
    `<text x="${x0 + width / 2}" y="${y0 + 22}" text-anchor="middle" class="title">${esc(p.title)}</text>`,
  );
  // y axis, grid and ticks
  for (let v = 0; v <= yMax + step / 2; v += step) {
    out.push(
      `<line x1="${left}" y1="${fmt(y(v))}" x2="${right}" y2="${fmt(y(v))}" class="grid"/>`,
      `<text x="${left - 6}" y="${fmt(y(v) + 4)}" text-anchor="end" class="tick">${esc(fmt(v))}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" class="axis"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="axis"/>`,
    `<text transform="translate(${x0 + 16} ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${esc(p.yLabel)}</text>`,
  );
  // bars
  const groupWidth = (right - left) / p.groups.length;
  const barWidth = (groupWidth * 0.84) / p.series.length;
  p.groups.forEach((group, g) => {
    const gx = left + g * groupWidth + groupWidth * 0.08;
    p.series.forEach((s, i) => {
      const value = p.values[g]?.[i] ?? 0;
      const bx = gx + i * barWidth;
      const by = y(value);
      const h = bottom - by;
      out.push(
        `<rect x="${fmt(bx + 1)}" y="${fmt(by)}" width="${fmt(barWidth - 2)}" height="${fmt(h)}" fill="${s.color}"${s.hatched ? ' fill-opacity="0.55"' : ''}><title>${esc(`${group}, ${s.name}: ${p.format(value)}`)}</title></rect>`,
      );
      if (s.hatched)
        out.push(
          `<rect x="${fmt(bx + 1)}" y="${fmt(by)}" width="${fmt(barWidth - 2)}" height="${fmt(h)}" fill="url(#hatch)"/>`,
        );
      out.push(
        `<text x="${fmt(bx + barWidth / 2)}" y="${fmt(by - 4)}" text-anchor="middle" class="value">${esc(p.format(value))}</text>`,
      );
    });
    out.push(
      `<text x="${fmt(left + (g + 0.5) * groupWidth)}" y="${bottom + 18}" text-anchor="middle" class="label">${esc(group)}</text>`,
    );
  });
  if (p.reference !== undefined) {
    const ry = fmt(y(p.reference.value));
    out.push(`<line x1="${left}" y1="${ry}" x2="${right}" y2="${ry}" class="reference"/>`);
  }
  // legend
  const legendTop = bottom + 34;
  const columnWidth = (right - left) / 4;
  if (p.reference !== undefined) {
    // In the legend rather than on the line, where it would cover the bars' value labels.
    const i = p.series.length;
    const lx = left + (i % 4) * columnWidth;
    const ly = legendTop + Math.floor(i / 4) * 20;
    out.push(
      `<line x1="${fmt(lx)}" y1="${ly - 4}" x2="${fmt(lx + 14)}" y2="${ly - 4}" class="reference"/>`,
      `<text x="${fmt(lx + 20)}" y="${ly}" class="legend reference-label">${esc(p.reference.label)}</text>`,
    );
  }
  p.series.forEach((s, i) => {
    const lx = left + (i % 4) * columnWidth;
    const ly = legendTop + Math.floor(i / 4) * 20;
    out.push(
      `<rect x="${fmt(lx)}" y="${ly - 10}" width="14" height="12" fill="${s.color}"${s.hatched ? ' fill-opacity="0.55"' : ''}/>`,
    );
    if (s.hatched)
      out.push(`<rect x="${fmt(lx)}" y="${ly - 10}" width="14" height="12" fill="url(#hatch)"/>`);
    out.push(`<text x="${fmt(lx + 20)}" y="${ly}" class="legend">${esc(s.name)}</text>`);
  });
  return out;
}

/** Renders panels stacked vertically into one SVG document. */
export function renderBarChart(
  title: string,
  panels: ReadonlyArray<BarPanel>,
  width = 1000,
  panelHeight = 420,
): string {
  const height = 40 + panels.length * panelHeight;
  const body = panels.flatMap((p, i) => panel(p, 0, 40 + i * panelHeight, width, panelHeight));
  return svgDocument(title, width, height, body);
}

function svgDocument(title: string, width: number, height: number, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif">`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>',
    '<style>.title{font-size:16px;font-weight:600}.label{font-size:12px}.tick{font-size:11px;fill:#555}.value{font-size:9px;fill:#333}.legend{font-size:12px}.grid{stroke:#e5e5e5}.axis{stroke:#333}.reference{stroke:#c00;stroke-dasharray:6 4}.reference-label{fill:#c00}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" class="title" font-size="18">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Colours that stay apart from each other (the Tableau 10 palette). */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
] as const;

/** An axis from lo to hi, linear or log10, mapped onto [from, to] pixels, with its tick values. */
interface Axis {
  readonly map: (v: number) => number;
  readonly ticks: readonly number[];
}

function linearAxis(max: number, from: number, to: number): Axis {
  const step = tickStep(Math.max(max, Number.MIN_VALUE), 5);
  const top = Math.ceil((max * 1.05) / step) * step || step;
  const ticks: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
  return { map: (v) => from + (Math.max(0, v) / top) * (to - from), ticks };
}

/** Log axis over [lo, hi] widened to the 1-2-5 ticks around them; values below lo are drawn at lo. */
function logAxis(lo: number, hi: number, from: number, to: number): Axis {
  const all: number[] = [];
  for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)) + 1; e++)
    for (const m of [1, 2, 5]) all.push(m * 10 ** e);
  const first = all.filter((t) => t <= lo * (1 + 1e-9)).pop() ?? all[0]!;
  const last = all.find((t) => t >= hi * (1 - 1e-9)) ?? all[all.length - 1]!;
  // Over more than three decades the 2s and 5s crowd the axis: keep the powers of ten.
  const wide = last / first > 2000;
  const ticks = all.filter(
    (t) =>
      t >= first &&
      t <= last &&
      (!wide || Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9),
  );
  const l0 = Math.log10(first);
  const l1 = Math.log10(last) === l0 ? l0 + 1 : Math.log10(last);
  return {
    map: (v) => from + ((Math.log10(Math.max(v, first)) - l0) / (l1 - l0)) * (to - from),
    ticks,
  };
}

const tickLabel = (v: number): string =>
  v >= 1000
    ? v.toLocaleString('en-US', { maximumFractionDigits: 0 })
    : String(Number(v.toPrecision(3)));

export interface HBarChart {
  readonly title: string;
  /** The x axis label, e.g. "ns per call (log scale)". */
  readonly xLabel: string;
  /** One label per bar group (y axis), top to bottom. */
  readonly rows: readonly string[];
  readonly series: readonly { readonly name: string; readonly color: string }[];
  /** values[row][series]; NaN = no bar (the case cannot be expressed). */
  readonly values: ReadonlyArray<ReadonlyArray<number>>;
  readonly format: (value: number) => string;
  readonly log?: boolean;
  /** Per row, a colour that replaces the series' colour (to set some cases apart). */
  readonly rowColors?: ReadonlyArray<string | undefined>;
  /** Vertical lines across the bars, e.g. the floor. */
  readonly references?: readonly {
    readonly value: number;
    readonly label: string;
    readonly color: string;
  }[];
}

/** Horizontal bars, one group per row (cases with long names read better this way). */
export function renderHBarChart(c: HBarChart, width = 1100): string {
  const barH = 14;
  const groupH = c.series.length * barH + 10;
  const labelW = Math.min(520, 20 + 6.6 * Math.max(...c.rows.map((r) => r.length)));
  const left = labelW + 10;
  const right = width - 70;
  const top = 50;
  const bottom = top + c.rows.length * groupH;
  const refs = c.references ?? [];
  const legendItems = [
    ...c.series.map((s) => ({ ...s, line: false })),
    ...refs.map((r) => ({ name: r.label, color: r.color, line: true })),
  ];
  const longest = Math.max(...legendItems.map((item) => item.name.length));
  const columns = Math.max(1, Math.min(3, Math.floor((width - 40) / (longest * 6.6 + 40))));
  const height = bottom + 50 + Math.ceil(legendItems.length / columns) * 20;
  const finite = c.values.flat().filter((v) => Number.isFinite(v) && v > 0);
  const all = [...finite, ...refs.map((r) => r.value)];
  const max = Math.max(...all, Number.MIN_VALUE);
  const axis = c.log ? logAxis(Math.min(...all), max, left, right) : linearAxis(max, left, right);
  const out: string[] = [];
  for (const t of axis.ticks) {
    const x = fmt(axis.map(t));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" class="grid"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle" class="tick">${esc(tickLabel(t))}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" class="axis"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="axis"/>`,
    `<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle" class="label">${esc(c.xLabel)}</text>`,
  );
  c.rows.forEach((row, r) => {
    const gy = top + r * groupH + 5;
    out.push(
      `<text x="${labelW}" y="${fmt(gy + (c.series.length * barH) / 2 + 4)}" text-anchor="end" class="label">${esc(row)}</text>`,
    );
    c.series.forEach((s, i) => {
      const v = c.values[r]?.[i] ?? Number.NaN;
      const y = gy + i * barH;
      if (!Number.isFinite(v)) {
        out.push(`<text x="${left + 4}" y="${fmt(y + barH - 3)}" class="value">n/a</text>`);
        return;
      }
      const x1 = axis.map(v);
      out.push(
        `<rect x="${left}" y="${fmt(y + 1)}" width="${fmt(Math.max(1, x1 - left))}" height="${barH - 2}" fill="${c.rowColors?.[r] ?? s.color}"><title>${esc(`${row}, ${s.name}: ${c.format(v)}`)}</title></rect>`,
        `<text x="${fmt(x1 + 4)}" y="${fmt(y + barH - 3)}" class="value">${esc(c.format(v))}</text>`,
      );
    });
  });
  for (const ref of refs) {
    const x = fmt(axis.map(ref.value));
    out.push(
      `<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${bottom}" stroke="${ref.color}" stroke-width="1.5" stroke-dasharray="6 4"/>`,
    );
  }
  const legendTop = bottom + 58;
  const columnW = (width - 40) / columns;
  legendItems.forEach((item, i) => {
    const lx = 20 + (i % columns) * columnW;
    const ly = legendTop + Math.floor(i / columns) * 20;
    out.push(
      item.line
        ? `<line x1="${fmt(lx)}" y1="${ly - 4}" x2="${fmt(lx + 14)}" y2="${ly - 4}" stroke="${item.color}" stroke-width="1.5" stroke-dasharray="4 3"/>`
        : `<rect x="${fmt(lx)}" y="${ly - 10}" width="14" height="12" fill="${item.color}"/>`,
      `<text x="${fmt(lx + 20)}" y="${ly}" class="legend">${esc(item.name)}</text>`,
    );
  });
  return svgDocument(c.title, width, height, out);
}

export interface CdfChart {
  readonly title: string;
  readonly xLabel: string;
  /** Each series' values, ascending. */
  readonly series: readonly {
    readonly name: string;
    readonly color: string;
    readonly sorted: ArrayLike<number>;
  }[];
  /** Values below this are drawn at it (log axis); say so in xLabel. */
  readonly floor: number;
}

/** Empirical CDFs on a log x axis: how many of the values (y, 0..100%) are at most x. */
export function renderCdfChart(c: CdfChart, width = 1000, height = 520): string {
  const left = 70;
  const right = width - 30;
  const top = 50;
  const legendRows = Math.ceil(c.series.length / 2);
  const bottom = height - 76 - legendRows * 20;
  let hi = c.floor * 10;
  for (const s of c.series)
    if (s.sorted.length > 0) hi = Math.max(hi, s.sorted[s.sorted.length - 1]!);
  const x = logAxis(c.floor, hi, left, right);
  const y = (p: number) => bottom - p * (bottom - top);
  const out: string[] = [];
  for (const t of x.ticks) {
    const px = fmt(x.map(t));
    out.push(
      `<line x1="${px}" y1="${top}" x2="${px}" y2="${bottom}" class="grid"/>`,
      `<text x="${px}" y="${bottom + 16}" text-anchor="middle" class="tick">${esc(tickLabel(t))}</text>`,
    );
  }
  for (const p of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    out.push(
      `<line x1="${left}" y1="${fmt(y(p))}" x2="${right}" y2="${fmt(y(p))}" class="grid"/>`,
      `<text x="${left - 6}" y="${fmt(y(p) + 4)}" text-anchor="end" class="tick">${p * 100}%</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" class="axis"/>`,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" class="axis"/>`,
    `<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle" class="label">${esc(c.xLabel)}</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">share of executions at most this late</text>`,
  );
  for (const s of c.series) {
    const n = s.sorted.length;
    if (n === 0) continue;
    // At most ~400 steps: the quantiles at even steps, plus the first and last value.
    const points: string[] = [];
    const steps = Math.min(n, 400);
    let prevX = fmt(x.map(s.sorted[0]!));
    points.push(`${prevX},${fmt(y(0))}`);
    for (let k = 1; k <= steps; k++) {
      const rank = Math.min(n - 1, Math.ceil((k / steps) * n) - 1);
      const px = fmt(x.map(s.sorted[rank]!));
      const py = fmt(y((rank + 1) / n));
      if (px !== prevX)
        points.push(`${px},${points.length > 0 ? points[points.length - 1]!.split(',')[1] : py}`);
      points.push(`${px},${py}`);
      prevX = px;
    }
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${points.join(' ')}"><title>${esc(s.name)}</title></polyline>`,
    );
  }
  const columnW = (width - 40) / 2;
  c.series.forEach((s, i) => {
    const lx = 20 + (i % 2) * columnW;
    const ly = height - 30 - (legendRows - 1 - Math.floor(i / 2)) * 20;
    out.push(
      `<line x1="${fmt(lx)}" y1="${ly - 4}" x2="${fmt(lx + 16)}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"/>`,
      `<text x="${fmt(lx + 22)}" y="${ly}" class="legend">${esc(s.name)}</text>`,
    );
  });
  return svgDocument(c.title, width, height, out);
}
