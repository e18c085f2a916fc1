/**
 * A hand-written SVG bar chart (no chart library): grouped bars with value labels, a y axis with
 * round ticks, and a legend. Enough for the retry-storm study's two panels.
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
