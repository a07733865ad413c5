// A small SVG line-chart writer (no browser, no dependencies): axes with "nice" ticks, one
// polyline per series, optional step drawing for CDFs, and a legend.

export type Series = { name: string; points: Array<[number, number]> };

export type LineChart = {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Draw as a right-continuous step function (empirical CDFs). */
  step: boolean;
  /** Mark every point with a dot (sweeps). */
  markers: boolean;
  width: number;
  height: number;
};

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Tick values covering [lo, hi] with a 1, 2 or 5 x 10^k step, about `count` of them. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 10000 || abs < 0.01) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function range(values: number[], includeZero: boolean): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (includeZero) lo = Math.min(lo, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
  const ticks = niceTicks(lo, hi, 6);
  const step = ticks.length > 1 ? (ticks[1] as number) - (ticks[0] as number) : 1;
  return [Math.min(lo, ticks[0] as number), Math.max(hi, Math.ceil(hi / step - 1e-9) * step)];
}

export function renderLineChart(chart: LineChart): string {
  const { width, height } = chart;
  const margin = { left: 70, right: 20, top: 40, bottom: 55 };
  const legendWidth = 170;
  const plotW = width - margin.left - margin.right - legendWidth;
  const plotH = height - margin.top - margin.bottom;
  const all = chart.series.flatMap((s) => s.points);
  const [xLo, xHi] = range(all.length === 0 ? [0, 1] : all.map((p) => p[0]), true);
  const [yLo, yHi] = range(all.length === 0 ? [0, 1] : all.map((p) => p[1]), true);
  const sx = (x: number): number => margin.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const sy = (y: number): number => margin.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;
  const f = (v: number): string => v.toFixed(1);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(
    `<text x="${f(margin.left + plotW / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
  );
  for (const x of niceTicks(xLo, xHi, 6)) {
    parts.push(
      `<line x1="${f(sx(x))}" y1="${margin.top}" x2="${f(sx(x))}" y2="${margin.top + plotH}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${f(sx(x))}" y="${margin.top + plotH + 16}" text-anchor="middle">${formatTick(x)}</text>`,
    );
  }
  for (const y of niceTicks(yLo, yHi, 5)) {
    parts.push(
      `<line x1="${margin.left}" y1="${f(sy(y))}" x2="${margin.left + plotW}" y2="${f(sy(y))}" stroke="#e5e5e5"/>`,
    );
    parts.push(`<text x="${margin.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end">${formatTick(y)}</text>`);
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  parts.push(
    `<text x="${f(margin.left + plotW / 2)}" y="${height - 14}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(18 ${f(margin.top + plotH / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  );

  chart.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const coords: string[] = [];
    let previous: [number, number] | null = null;
    for (const [x, y] of series.points) {
      if (chart.step && previous !== null) coords.push(`${f(sx(x))},${f(sy(previous[1]))}`);
      else if (chart.step && previous === null) coords.push(`${f(sx(x))},${f(sy(0))}`);
      coords.push(`${f(sx(x))},${f(sy(y))}`);
      previous = [x, y];
    }
    if (coords.length > 0) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${coords.join(' ')}"/>`);
    }
    if (chart.markers) {
      for (const [x, y] of series.points)
        parts.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="3.5" fill="${color}"/>`);
    }
    const ly = margin.top + 10 + i * 20;
    const lx = margin.left + plotW + 15;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 28}" y="${ly + 4}">${escapeXml(series.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export type BarChart = {
  title: string;
  yLabel: string;
  /** Groups along x (e.g. metrics); each has one value per series (e.g. runs). */
  groups: Array<{ name: string; values: number[] }>;
  seriesNames: string[];
  width: number;
  height: number;
};

/** Grouped vertical bars with value labels; series colors match renderLineChart's. */
export function renderBarChart(chart: BarChart): string {
  const { width, height } = chart;
  const margin = { left: 70, right: 20, top: 40, bottom: 55 };
  const legendWidth = 170;
  const plotW = width - margin.left - margin.right - legendWidth;
  const plotH = height - margin.top - margin.bottom;
  const all = chart.groups.flatMap((g) => g.values).filter((v) => Number.isFinite(v));
  const [, yHi] = range(all.length === 0 ? [0, 1] : all, true);
  const sy = (y: number): number => margin.top + plotH - (y / yHi) * plotH;
  const f = (v: number): string => v.toFixed(1);
  const groupW = plotW / Math.max(1, chart.groups.length);
  const barW = (groupW * 0.8) / Math.max(1, chart.seriesNames.length);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(
    `<text x="${f(margin.left + plotW / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
  );
  for (const y of niceTicks(0, yHi, 5)) {
    parts.push(
      `<line x1="${margin.left}" y1="${f(sy(y))}" x2="${margin.left + plotW}" y2="${f(sy(y))}" stroke="#e5e5e5"/>`,
    );
    parts.push(`<text x="${margin.left - 6}" y="${f(sy(y) + 4)}" text-anchor="end">${formatTick(y)}</text>`);
  }
  chart.groups.forEach((group, g) => {
    const x0 = margin.left + g * groupW + groupW * 0.1;
    group.values.forEach((value, s) => {
      if (!Number.isFinite(value)) return;
      const color = COLORS[s % COLORS.length] as string;
      const x = x0 + s * barW;
      parts.push(
        `<rect x="${f(x)}" y="${f(sy(value))}" width="${f(barW * 0.92)}" height="${f(sy(0) - sy(value))}" fill="${color}"/>`,
      );
      parts.push(
        `<text x="${f(x + barW * 0.46)}" y="${f(sy(value) - 4)}" text-anchor="middle" font-size="10">${formatTick(value)}</text>`,
      );
    });
    parts.push(
      `<text x="${f(margin.left + g * groupW + groupW / 2)}" y="${margin.top + plotH + 16}" text-anchor="middle">${escapeXml(group.name)}</text>`,
    );
  });
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  parts.push(
    `<text transform="translate(18 ${f(margin.top + plotH / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  );
  chart.seriesNames.forEach((name, i) => {
    const ly = margin.top + 10 + i * 20;
    const lx = margin.left + plotW + 15;
    parts.push(
      `<rect x="${lx}" y="${ly - 6}" width="22" height="12" fill="${COLORS[i % COLORS.length] as string}"/>`,
    );
    parts.push(`<text x="${lx + 28}" y="${ly + 4}">${escapeXml(name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
