// Draws docs/dashboards.png from live data: the observed cluster of the tests (router, a prefill
// and a decode worker, a private Prometheus), the same load, then every panel of
// deploy/grafana/*.json queried over the Prometheus HTTP API and drawn as an SVG panel (lines per
// series, or the last values for stat panels), rasterized with @resvg/resvg-js.
//
//   node test/observe/render-dashboards.ts [--out docs/dashboards.png] [--seconds 30]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import { repoRoot } from '../e2e/router-cluster.ts';
import { dashboardSpecs } from './dashboards.ts';
import { driveLoad, queryRange, resolveVariables, startObservedCluster } from './observed-cluster.ts';

interface Series {
  label: string;
  points: [number, number][];
}

interface PanelData {
  title: string;
  unit: string;
  kind: string;
  series: Series[];
}

const palette = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0'];
const panelWidth = 400;
const panelHeight = 200;
const gap = 12;
const columns = 4;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `value` in the panel's unit, short. */
function formatValue(value: number, unit: string): string {
  const abs = Math.abs(value);
  const scaled = (v: number, suffixes: string[], base: number): string => {
    let i = 0;
    let x = v;
    while (Math.abs(x) >= base && i < suffixes.length - 1) {
      x /= base;
      i++;
    }
    const digits = Number.isInteger(x) || Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2;
    return `${x.toFixed(digits)}${suffixes[i]}`;
  };
  switch (unit) {
    case 's':
      if (abs === 0) return '0';
      if (abs < 1e-3) return `${(value * 1e6).toFixed(0)} µs`;
      if (abs < 1) return `${(value * 1e3).toFixed(abs < 0.01 ? 2 : 0)} ms`;
      return `${value.toFixed(2)} s`;
    case 'percentunit':
      return `${(value * 100).toFixed(abs < 0.1 ? 1 : 0)}%`;
    case 'bytes':
      return scaled(value, [' B', ' KiB', ' MiB', ' GiB'], 1024);
    case 'Bps':
      return scaled(value, [' B/s', ' KiB/s', ' MiB/s', ' GiB/s'], 1024);
    case 'reqps':
      return `${value.toFixed(abs >= 10 ? 0 : 2)} req/s`;
    default:
      return scaled(value, ['', 'k', 'M', 'G'], 1000);
  }
}

function legendOf(template: string, metric: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => metric[name] ?? '');
}

function drawPanel(panel: PanelData, x: number, y: number, startS: number, endS: number): string {
  const parts: string[] = [
    `<rect x="${x}" y="${y}" width="${panelWidth}" height="${panelHeight}" rx="3" fill="#181b1f" stroke="#2c3235"/>`,
    `<text x="${x + 10}" y="${y + 20}" font-size="13" font-weight="bold" fill="#d8d9da">${escapeXml(panel.title)}</text>`,
  ];
  const plot = { x: x + 56, y: y + 34, w: panelWidth - 68, h: panelHeight - 78 };
  const values = panel.series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  if (panel.kind === 'stat') {
    panel.series.slice(0, 3).forEach((series, i) => {
      const last = [...series.points].reverse().find(([, v]) => Number.isFinite(v));
      const cx = x + (panelWidth / Math.max(1, Math.min(3, panel.series.length))) * (i + 0.5);
      parts.push(
        `<text x="${cx}" y="${y + 110}" font-size="40" text-anchor="middle" fill="${palette[i % palette.length]}">${last === undefined ? '-' : formatValue(last[1], panel.unit)}</text>`,
        `<text x="${cx}" y="${y + 140}" font-size="12" text-anchor="middle" fill="#9fa7b3">${escapeXml(series.label)}</text>`,
      );
    });
    return parts.join('\n');
  }
  const max = Math.max(0, ...values);
  const top = max === 0 ? 1 : max * 1.1;
  for (let i = 0; i <= 2; i++) {
    const gy = plot.y + plot.h - (plot.h * i) / 2;
    parts.push(
      `<line x1="${plot.x}" y1="${gy}" x2="${plot.x + plot.w}" y2="${gy}" stroke="#2c3235"/>`,
      `<text x="${plot.x - 6}" y="${gy + 4}" font-size="10" text-anchor="end" fill="#9fa7b3">${escapeXml(formatValue((top * i) / 2, panel.unit))}</text>`,
    );
  }
  const toX = (t: number): number => plot.x + ((t - startS) / (endS - startS)) * plot.w;
  const toY = (v: number): number => plot.y + plot.h - (Math.max(0, v) / top) * plot.h;
  panel.series.forEach((series, i) => {
    const color = palette[i % palette.length];
    let path = '';
    let pen = false;
    for (const [t, v] of series.points) {
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${toX(t).toFixed(1)},${toY(v).toFixed(1)} `;
      pen = true;
    }
    if (path !== '') parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  });
  let lx = x + 10;
  for (const [i, series] of panel.series.slice(0, 4).entries()) {
    const label = series.label.length > 22 ? `${series.label.slice(0, 21)}…` : series.label;
    parts.push(
      `<rect x="${lx}" y="${y + panelHeight - 24}" width="10" height="3" fill="${palette[i % palette.length]}"/>`,
      `<text x="${lx + 14}" y="${y + panelHeight - 19}" font-size="10" fill="#c7d0d9">${escapeXml(label)}</text>`,
    );
    lx += 16 + label.length * 6;
    if (lx > x + panelWidth - 40) break;
  }
  return parts.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(repoRoot, 'docs', 'dashboards.png') },
      seconds: { type: 'string', default: '30' },
    },
  });
  const cluster = await startObservedCluster(1);
  try {
    const deadline = Date.now() + 20_000;
    while (
      (
        await queryRange(
          cluster.prometheus.url,
          'up{job="tandem"} == 1',
          Date.now() / 1000 - 1,
          Date.now() / 1000,
        )
      ).length < 3
    ) {
      if (Date.now() > deadline) throw new Error('prometheus does not scrape all three processes');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const load = await driveLoad(cluster.router.url, Number(values.seconds));
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const startS = load.startedAtS - 5;
    const endS = load.endedAtS + 3;
    const sections: { title: string; panels: PanelData[] }[] = [];
    for (const spec of dashboardSpecs) {
      const json = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'grafana', spec.file), 'utf8')) as {
        title: string;
        panels: {
          type: string;
          title: string;
          fieldConfig?: { defaults: { unit?: string } };
          targets?: { expr: string; legendFormat: string }[];
        }[];
      };
      const panels: PanelData[] = [];
      for (const panel of json.panels) {
        if (panel.type === 'row') continue;
        const series: Series[] = [];
        for (const target of panel.targets ?? []) {
          const result = await queryRange(
            cluster.prometheus.url,
            resolveVariables(target.expr, 4),
            startS,
            endS,
            1,
          );
          for (const item of result) {
            series.push({
              label: legendOf(target.legendFormat, item.metric),
              points: item.values.map(([t, v]) => [t, Number(v)]),
            });
          }
        }
        panels.push({
          title: panel.title,
          unit: panel.fieldConfig?.defaults.unit ?? 'short',
          kind: panel.type,
          series,
        });
      }
      sections.push({ title: json.title, panels });
    }
    const width = columns * panelWidth + (columns + 1) * gap;
    const body: string[] = [];
    let y = 50;
    for (const section of sections) {
      body.push(
        `<text x="${gap}" y="${y + 22}" font-size="18" font-weight="bold" fill="#d8d9da">${escapeXml(section.title)}</text>`,
      );
      y += 34;
      section.panels.forEach((panel, i) => {
        const px = gap + (i % columns) * (panelWidth + gap);
        const py = y + Math.floor(i / columns) * (panelHeight + gap);
        body.push(drawPanel(panel, px, py, startS, endS));
      });
      y += Math.ceil(section.panels.length / columns) * (panelHeight + gap) + 10;
    }
    const statuses = [...load.statuses].map(([status, n]) => `${n} x ${status}`).join(', ');
    const header = `<text x="${gap}" y="30" font-size="14" fill="#9fa7b3">tandem dashboards on live data: 1 prefill + 1 decode worker (demo model, CPU), ${Math.round(load.endedAtS - load.startedAtS)} s of load (${statuses}); Prometheus scraping every 1 s</text>`;
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + gap}" font-family="DejaVu Sans, sans-serif"><rect width="100%" height="100%" fill="#111217"/>${header}${body.join('\n')}</svg>`;
    const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } })
      .render()
      .asPng();
    writeFileSync(values.out, png);
    process.stdout.write(`wrote ${values.out} (${png.length} bytes)\n`);
  } finally {
    await cluster.stop();
  }
}

await main();
