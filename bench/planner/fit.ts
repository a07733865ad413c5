// The simulated worker's speed, fitted by least squares to executor timings measured on a GPU
// (bench/cuda/results/<run>/bench_8b.txt: Llama 8B, bf16, decode steps at batch 1-256 and
// context 512 / 4096, prefill of 512-8192 tokens). The planner never sees this model.
import { readFileSync } from 'node:fs';

export interface DecodePoint {
  batch: number;
  context: number;
  msPerStep: number;
  tokensPerSecond: number;
}

export interface PrefillPoint {
  tokens: number;
  ms: number;
  tokensPerSecond: number;
}

export interface Measured {
  file: string;
  device: string;
  kvPages: number;
  decode: DecodePoint[];
  prefill: PrefillPoint[];
}

/** Decode step ms = a + b * batch + c * batch * context / 1000 (weights, then KV reads). */
export interface DecodeModel {
  a: number;
  b: number;
  c: number;
}

/** Prefill ms = p0 + p1 * tokens + p2 * tokens^2 (GEMMs, then attention). */
export interface PrefillModel {
  p0: number;
  p1: number;
  p2: number;
}

export interface FitReport<P> {
  points: Array<P & { fittedMs: number; relError: number }>;
  meanAbsRelError: number;
  maxAbsRelError: number;
}

/** Reads the JSON lines of a bench_8b.txt: the default variants only (what ships). */
export function readMeasured(file: string): Measured {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const device = String(rows.find((r) => r.bench === 'ceilings')?.device ?? 'unknown');
  const kvPages = Number(rows.find((r) => r.bench === 'model')?.kvPages ?? 0);
  const decode = rows
    .filter((r) => r.bench === 'decode' && (r.variant === undefined || r.variant === 'default'))
    .map((r) => ({
      batch: Number(r.batch),
      context: Number(r.context),
      msPerStep: Number(r.msPerStep),
      tokensPerSecond: Number(r.tokensPerSecond),
    }));
  const prefill = rows
    .filter((r) => r.bench === 'prefill' && (r.attention === undefined || r.attention === 'mma'))
    .map((r) => ({ tokens: Number(r.tokens), ms: Number(r.ms), tokensPerSecond: Number(r.tokensPerSecond) }));
  return { file, device, kvPages, decode, prefill };
}

/** Least squares for y ~ X w (normal equations; three unknowns at most here). */
export function leastSquares(rows: number[][], y: number[], weights: number[]): number[] {
  const n = rows[0]?.length ?? 0;
  const a = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  rows.forEach((x, k) => {
    const w = weights[k] ?? 1;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) (a[i] as number[])[j] = (a[i]?.[j] ?? 0) + w * (x[i] ?? 0) * (x[j] ?? 0);
      (a[i] as number[])[n] = (a[i]?.[n] ?? 0) + w * (x[i] ?? 0) * (y[k] ?? 0);
    }
  });
  // Gauss-Jordan with partial pivoting.
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(a[r]?.[col] ?? 0) > Math.abs(a[pivot]?.[col] ?? 0)) pivot = r;
    [a[col], a[pivot]] = [a[pivot] as number[], a[col] as number[]];
    const p = a[col] as number[];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const row = a[r] as number[];
      const f = (row[col] ?? 0) / (p[col] ?? 1);
      for (let c = col; c <= n; c++) row[c] = (row[c] ?? 0) - f * (p[c] ?? 0);
    }
  }
  return a.map((row, i) => (row[n] ?? 0) / (row[i] ?? 1));
}

/** Fits relative error (each point weighted by 1/y^2), so small batches count as much as large. */
export function fitDecode(points: DecodePoint[]): { model: DecodeModel; report: FitReport<DecodePoint> } {
  const [a = 0, b = 0, c = 0] = leastSquares(
    points.map((p) => [1, p.batch, (p.batch * p.context) / 1000]),
    points.map((p) => p.msPerStep),
    points.map((p) => 1 / p.msPerStep ** 2),
  );
  const model = { a, b, c };
  return {
    model,
    report: report(
      points,
      (p) => decodeStepMs(model, p.batch, p.context),
      (p) => p.msPerStep,
    ),
  };
}

export function fitPrefill(points: PrefillPoint[]): { model: PrefillModel; report: FitReport<PrefillPoint> } {
  const [p0 = 0, p1 = 0, p2 = 0] = leastSquares(
    points.map((p) => [1, p.tokens, p.tokens ** 2]),
    points.map((p) => p.ms),
    points.map((p) => 1 / p.ms ** 2),
  );
  const model = { p0, p1, p2 };
  return {
    model,
    report: report(
      points,
      (p) => prefillMs(model, p.tokens),
      (p) => p.ms,
    ),
  };
}

function report<P>(points: P[], fitted: (p: P) => number, measured: (p: P) => number): FitReport<P> {
  const rows = points.map((p) => {
    const fittedMs = fitted(p);
    return { ...p, fittedMs: round(fittedMs), relError: round((fittedMs - measured(p)) / measured(p)) };
  });
  const errors = rows.map((r) => Math.abs(r.relError));
  return {
    points: rows,
    meanAbsRelError: round(errors.reduce((s, e) => s + e, 0) / Math.max(1, errors.length)),
    maxAbsRelError: round(Math.max(...errors)),
  };
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

/** Milliseconds of one decode step of `batch` sequences averaging `context` tokens. */
export function decodeStepMs(model: DecodeModel, batch: number, context: number): number {
  return model.a + model.b * batch + (model.c * batch * context) / 1000;
}

/** Milliseconds to prefill a prompt of `tokens` tokens. */
export function prefillMs(model: PrefillModel, tokens: number): number {
  return Math.max(0.5, model.p0 + model.p1 * tokens + model.p2 * tokens ** 2);
}
