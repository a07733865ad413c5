// A disaggregated cluster in simulated time: prefill workers (FCFS, fitted prefill time), decode
// workers (continuous batching, fitted step time, a KV pool and a running cap), pods that take
// `startupS` to become ready and drain before they go. It is also the planner's SignalSource
// and Scaler, so the planner's own decision loop drives it, tick by tick, as it drives a cluster.
import type { ClusterSignals, PoolName, PoolState, Scaler, SignalSource } from '@tandem/planner';
import { type DecodeModel, decodeStepMs, type PrefillModel, prefillMs } from './fit.ts';
import type { TraceRequest } from './trace.ts';

export interface SimOptions {
  decode: DecodeModel;
  prefill: PrefillModel;
  /** KV tokens one decode worker holds (kvPages x pageSize of the measured run). */
  kvTokensPerWorker: number;
  /** Sequences one decode worker runs at once (the worker's --max-running default). */
  maxRunning: number;
  /** KV bytes per token (Llama 8B bf16: 32 layers x 8 kv heads x 128 x 2 x 2) and the link's GB/s. */
  kvBytesPerToken: number;
  kvLinkGBs: number;
  /** Seconds from scale-up to a ready worker (scheduling, image, weights). */
  startupS: number;
  /** Window of the simulated Prometheus (rate and quantiles), seconds. */
  signalWindowS: number;
}

interface Request {
  trace: TraceRequest;
  /** When prefill finished and the KV arrived (the first token is ready), or null. */
  prefilledS: number | null;
  firstTokenS: number | null;
  generated: number;
}

interface Pod {
  id: string;
  pool: PoolName;
  createdS: number;
  readyS: number;
  drainingSinceS: number | null;
  goneS: number | null;
}

interface PrefillWorker extends Pod {
  queue: Request[];
  current: Request | null;
  busyUntilS: number;
}

interface DecodeWorker extends Pod {
  running: Request[];
  joining: Request[];
  kvTokens: number;
  stepEndS: number | null;
  stepMs: number;
}

export interface SimResult {
  durationS: number;
  completed: number;
  unfinished: number;
  ttftP90S: number;
  itlP90S: number;
  ttftP50S: number;
  itlP50S: number;
  replicaHours: { prefill: number; decode: number; total: number };
  /** Every 15 s: [time, prefill pods, decode pods] (pods that exist: starting, ready or draining). */
  timeline: Array<[number, number, number]>;
  /** Per minute: p90 TTFT and ITL of that minute (null: no samples). */
  perMinute: Array<{ minute: number; ttftP90S: number | null; itlP90S: number | null }>;
  /** The run stopped early: more than 10% of first tokens or of tokens were over the SLO. */
  stoppedOnMiss: boolean;
}

/** Weighted percentile of (value, weight) samples. */
function weightedPercentile(samples: Array<[number, number]>, p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((s, [, w]) => s + w, 0);
  let seen = 0;
  for (const [value, weight] of sorted) {
    seen += weight;
    if (seen >= p * total) return value;
  }
  return sorted[sorted.length - 1]?.[0] ?? null;
}

/** Samples in a trailing window, in time order, dropped as the window moves. */
class Window<T> {
  readonly items: Array<{ atS: number; value: T }> = [];
  #start = 0;
  push(atS: number, value: T): void {
    this.items.push({ atS, value });
  }
  since(fromS: number): Array<{ atS: number; value: T }> {
    while (this.#start < this.items.length && (this.items[this.#start]?.atS ?? 0) < fromS) this.#start++;
    // Compact now and then so memory stays bounded.
    if (this.#start > 50_000) {
      this.items.splice(0, this.#start);
      this.#start = 0;
    }
    return this.items.slice(this.#start);
  }
}

export class ClusterSim {
  readonly #o: SimOptions;
  readonly #prefill: PrefillWorker[] = [];
  readonly #decode: DecodeWorker[] = [];
  readonly #gone: Pod[] = [];
  readonly #decodeWait: Request[] = [];
  readonly #prefillWait: Request[] = [];
  #nextId = 0;
  nowS = 0;
  // Windows of the simulated Prometheus.
  readonly #ttftWindow = new Window<number>();
  readonly #itlWindow = new Window<[number, number]>();
  readonly #promptWindow = new Window<number>();
  readonly #tokenWindow = new Window<number>();
  /** Queued prefill tokens sampled every few seconds, as Prometheus scrapes the gauge. */
  readonly #queuedWindow = new Window<number>();
  #nextScrapeS = 0;
  // Whole-run records.
  readonly #ttfts: Array<[number, number]> = [];
  readonly #itls: Array<[number, number]> = [];
  readonly #perMinuteTtft = new Map<number, Array<[number, number]>>();
  readonly #perMinuteItl = new Map<number, Array<[number, number]>>();
  #completed = 0;
  /** Samples before this time (the warm-up) are not measured. */
  #fromS = 0;
  /** With an SLO to check: measured first tokens and tokens over it, and the budgets (10%). */
  #slo: { ttftS: number; itlS: number } | null = null;
  #ttftOver = 0;
  #itlOver = 0;
  #ttftBudget = Number.POSITIVE_INFINITY;
  #itlBudget = Number.POSITIVE_INFINITY;

  constructor(options: SimOptions, initial: { prefill: number; decode: number }) {
    this.#o = options;
    for (let i = 0; i < initial.prefill; i++) this.#addPod('prefill', -options.startupS);
    for (let i = 0; i < initial.decode; i++) this.#addPod('decode', -options.startupS);
  }

  #addPod(pool: PoolName, atS: number): void {
    const base = {
      id: `${pool}-${this.#nextId++}`,
      createdS: atS,
      readyS: atS + this.#o.startupS,
      drainingSinceS: null,
      goneS: null,
    };
    if (pool === 'prefill') this.#prefill.push({ ...base, pool, queue: [], current: null, busyUntilS: 0 });
    else
      this.#decode.push({ ...base, pool, running: [], joining: [], kvTokens: 0, stepEndS: null, stepMs: 0 });
  }

  #usable(pod: Pod): boolean {
    return pod.readyS <= this.nowS && pod.drainingSinceS === null;
  }

  #queuedTokens(w: PrefillWorker): number {
    const current =
      w.current === null
        ? 0
        : w.current.trace.promptTokens *
          Math.max(
            0,
            (w.busyUntilS - this.nowS) /
              Math.max(1e-9, prefillMs(this.#o.prefill, w.current.trace.promptTokens) / 1000),
          );
    return w.queue.reduce((s, r) => s + r.trace.promptTokens, 0) + current;
  }

  // --- the request path -------------------------------------------------------------------

  #arrive(trace: TraceRequest): void {
    const request: Request = { trace, prefilledS: null, firstTokenS: null, generated: 0 };
    this.#promptWindow.push(this.nowS, trace.promptTokens);
    this.#routePrefill(request);
  }

  #routePrefill(request: Request): void {
    let best: PrefillWorker | null = null;
    let bestQueued = Number.POSITIVE_INFINITY;
    for (const w of this.#prefill) {
      if (!this.#usable(w)) continue;
      const queued = this.#queuedTokens(w);
      if (queued < bestQueued) {
        best = w;
        bestQueued = queued;
      }
    }
    if (best === null) {
      this.#prefillWait.push(request);
      return;
    }
    best.queue.push(request);
    this.#startPrefill(best);
  }

  #startPrefill(w: PrefillWorker): void {
    if (w.current !== null) return;
    const next = w.queue.shift();
    if (next === undefined) return;
    w.current = next;
    const tokens = next.trace.promptTokens;
    const transferS = (tokens * this.#o.kvBytesPerToken) / (this.#o.kvLinkGBs * 1e9);
    w.busyUntilS = this.nowS + prefillMs(this.#o.prefill, tokens) / 1000 + transferS;
  }

  #finishPrefill(w: PrefillWorker): void {
    const request = w.current;
    w.current = null;
    if (request !== null) {
      request.prefilledS = this.nowS;
      this.#admitDecode(request);
    }
    this.#startPrefill(w);
  }

  /** A decode worker with room takes it (least KV used first), else it waits. */
  #admitDecode(request: Request): boolean {
    const need = request.trace.promptTokens + request.trace.outputTokens;
    let best: DecodeWorker | null = null;
    for (const w of this.#decode) {
      if (!this.#usable(w)) continue;
      if (w.running.length + w.joining.length >= this.#o.maxRunning) continue;
      if (w.kvTokens + need > this.#o.kvTokensPerWorker) continue;
      if (best === null || w.kvTokens < best.kvTokens) best = w;
    }
    if (best === null) {
      this.#decodeWait.push(request);
      return false;
    }
    best.kvTokens += need;
    // The first token (sampled by the prefill worker) reaches the client now.
    request.firstTokenS = this.nowS;
    request.generated = 1;
    const ttft = this.nowS - request.trace.arrivalS;
    this.#ttftWindow.push(this.nowS, ttft);
    if (request.trace.arrivalS >= this.#fromS) {
      this.#ttfts.push([ttft, 1]);
      if (this.#slo !== null && ttft > this.#slo.ttftS) this.#ttftOver++;
      this.#minute(this.#perMinuteTtft).push([ttft, 1]);
    }
    this.#tokenWindow.push(this.nowS, 1);
    if (request.generated >= request.trace.outputTokens) {
      best.kvTokens -= need;
      if (request.trace.arrivalS >= this.#fromS) this.#completed++;
      return true;
    }
    best.joining.push(request);
    if (best.stepEndS === null) this.#startStep(best);
    return true;
  }

  #minute<T>(map: Map<number, T[]>): T[] {
    const minute = Math.floor((this.nowS - this.#fromS) / 60);
    let list = map.get(minute);
    if (list === undefined) {
      list = [];
      map.set(minute, list);
    }
    return list;
  }

  #startStep(w: DecodeWorker): void {
    w.running.push(...w.joining);
    w.joining = [];
    if (w.running.length === 0) {
      w.stepEndS = null;
      return;
    }
    const context = w.running.reduce((s, r) => s + r.trace.promptTokens + r.generated, 0) / w.running.length;
    w.stepMs = decodeStepMs(this.#o.decode, w.running.length, context);
    w.stepEndS = this.nowS + w.stepMs / 1000;
  }

  #finishStep(w: DecodeWorker): void {
    const batch = w.running.length;
    const stepS = w.stepMs / 1000;
    this.#itlWindow.push(this.nowS, [stepS, batch]);
    if (this.nowS >= this.#fromS) {
      this.#itls.push([stepS, batch]);
      if (this.#slo !== null && stepS > this.#slo.itlS) this.#itlOver += batch;
      this.#minute(this.#perMinuteItl).push([stepS, batch]);
    }
    this.#tokenWindow.push(this.nowS, batch);
    const still: Request[] = [];
    for (const r of w.running) {
      r.generated++;
      if (r.generated >= r.trace.outputTokens) {
        w.kvTokens -= r.trace.promptTokens + r.trace.outputTokens;
        if (r.trace.arrivalS >= this.#fromS) this.#completed++;
      } else {
        still.push(r);
      }
    }
    w.running = still;
    // Freed room: waiting requests go first, in order.
    while (this.#decodeWait.length > 0) {
      const head = this.#decodeWait[0] as Request;
      this.#decodeWait.shift();
      if (!this.#admitDecode(head)) {
        // #admitDecode queued it at the back; put it back at the front.
        this.#decodeWait.unshift(this.#decodeWait.pop() as Request);
        break;
      }
    }
    this.#startStep(w);
  }

  #retire(): void {
    for (const list of [this.#prefill, this.#decode] as Array<Array<PrefillWorker | DecodeWorker>>) {
      for (let i = list.length - 1; i >= 0; i--) {
        const pod = list[i] as PrefillWorker | DecodeWorker;
        if (pod.drainingSinceS === null) continue;
        const idle =
          'queue' in pod
            ? pod.current === null && pod.queue.length === 0
            : pod.running.length === 0 && pod.joining.length === 0;
        if (idle) {
          pod.goneS = this.nowS;
          this.#gone.push(pod);
          list.splice(i, 1);
        }
      }
    }
  }

  #onReady(): void {
    while (this.#prefillWait.length > 0 && this.#prefill.some((w) => this.#usable(w))) {
      this.#routePrefill(this.#prefillWait.shift() as Request);
    }
    while (this.#decodeWait.length > 0) {
      const head = this.#decodeWait.shift() as Request;
      if (!this.#admitDecode(head)) {
        this.#decodeWait.unshift(this.#decodeWait.pop() as Request);
        break;
      }
    }
  }

  // --- the event loop ---------------------------------------------------------------------

  /**
   * Replays the trace; `onTick(nowS)` runs every `tickS` (the planner, or nothing for a static
   * split). Replica-hours count pods that exist (starting, ready or draining) during the trace.
   */
  async run(
    trace: TraceRequest[],
    window: { fromS: number; toS: number },
    tickS: number,
    onTick: (nowS: number) => Promise<void>,
    /** Stop as soon as a p90 can no longer meet this (more than 10% over): a sweep's shortcut. */
    stopOnMiss: { ttftS: number; itlS: number } | null = null,
  ): Promise<SimResult> {
    this.#fromS = window.fromS;
    this.#slo = stopOnMiss;
    const measuredTrace = trace.filter((r) => r.arrivalS >= window.fromS);
    this.#ttftBudget = 0.1 * measuredTrace.length;
    // First tokens come from prefill; decode steps make the rest.
    this.#itlBudget = 0.1 * measuredTrace.reduce((s, r) => s + Math.max(0, r.outputTokens - 1), 0);
    let stopped = false;
    const durationS = window.toS;
    let next = 0;
    let nextTickS = 0;
    let nextSampleS = window.fromS;
    const timeline: SimResult['timeline'] = [];
    const drainLimitS = durationS + 900;
    const pendingReady = (): number => {
      let t = Number.POSITIVE_INFINITY;
      for (const w of [...this.#prefill, ...this.#decode])
        if (w.readyS > this.nowS && w.readyS < t) t = w.readyS;
      return t;
    };
    for (;;) {
      let t = next < trace.length ? (trace[next] as TraceRequest).arrivalS : Number.POSITIVE_INFINITY;
      let kind: 'arrival' | 'prefill' | 'decode' | 'tick' | 'ready' | 'sample' = 'arrival';
      let worker: PrefillWorker | DecodeWorker | null = null;
      for (const w of this.#prefill) {
        if (w.current !== null && w.busyUntilS < t) {
          t = w.busyUntilS;
          kind = 'prefill';
          worker = w;
        }
      }
      for (const w of this.#decode) {
        if (w.stepEndS !== null && w.stepEndS < t) {
          t = w.stepEndS;
          kind = 'decode';
          worker = w;
        }
      }
      const ready = pendingReady();
      if (ready < t) {
        t = ready;
        kind = 'ready';
      }
      if (nextSampleS <= durationS && nextSampleS < t) {
        t = nextSampleS;
        kind = 'sample';
      }
      if (nextTickS <= durationS && nextTickS < t) {
        t = nextTickS;
        kind = 'tick';
      }
      if (!Number.isFinite(t) || t > drainLimitS) break;
      if (this.#ttftOver > this.#ttftBudget || this.#itlOver > this.#itlBudget) {
        stopped = true;
        break;
      }
      this.nowS = Math.max(this.nowS, t);
      if (kind === 'arrival') this.#arrive(trace[next++] as TraceRequest);
      else if (kind === 'prefill') this.#finishPrefill(worker as PrefillWorker);
      else if (kind === 'decode') this.#finishStep(worker as DecodeWorker);
      else if (kind === 'ready') this.#onReady();
      else if (kind === 'sample') {
        timeline.push([this.nowS - window.fromS, this.#prefill.length, this.#decode.length]);
        nextSampleS += 15;
      } else {
        await onTick(this.nowS);
        nextTickS += tickS;
      }
      this.#retire();
      if (this.nowS >= this.#nextScrapeS) {
        const queued =
          this.#prefill.reduce((s, w) => s + this.#queuedTokens(w), 0) +
          this.#prefillWait.reduce((s, r) => s + r.trace.promptTokens, 0);
        this.#queuedWindow.push(this.nowS, queued);
        this.#nextScrapeS = this.nowS + 5;
      }
    }
    return { ...this.#result(window, measuredTrace.length, timeline), stoppedOnMiss: stopped };
  }

  #result(window: { fromS: number; toS: number }, total: number, timeline: SimResult['timeline']): SimResult {
    const durationS = window.toS - window.fromS;
    const hours = (pool: PoolName): number => {
      let seconds = 0;
      for (const pod of [...this.#prefill, ...this.#decode, ...this.#gone]) {
        if (pod.pool !== pool) continue;
        const from = Math.max(window.fromS, pod.createdS);
        const to = Math.min(window.toS, pod.goneS ?? window.toS);
        seconds += Math.max(0, to - from);
      }
      return seconds / 3600;
    };
    const minutes = Math.ceil(durationS / 60);
    const perMinute: SimResult['perMinute'] = [];
    for (let m = 0; m < minutes; m++) {
      perMinute.push({
        minute: m,
        ttftP90S: weightedPercentile(this.#perMinuteTtft.get(m) ?? [], 0.9),
        itlP90S: weightedPercentile(this.#perMinuteItl.get(m) ?? [], 0.9),
      });
    }
    const prefill = hours('prefill');
    const decode = hours('decode');
    return {
      durationS,
      completed: this.#completed,
      unfinished: total - this.#completed,
      ttftP90S: weightedPercentile(this.#ttfts, 0.9) ?? 0,
      itlP90S: weightedPercentile(this.#itls, 0.9) ?? 0,
      ttftP50S: weightedPercentile(this.#ttfts, 0.5) ?? 0,
      itlP50S: weightedPercentile(this.#itls, 0.5) ?? 0,
      replicaHours: { prefill, decode, total: prefill + decode },
      timeline,
      perMinute,
      stoppedOnMiss: false,
    };
  }

  /** The planner's view of this cluster: its Prometheus ... */
  get signalSource(): SignalSource {
    return { read: () => this.readSignals(), workerLoads: (pool) => this.workerLoads(pool) };
  }

  /** ... and its Scale subresource. */
  get scaler(): Scaler {
    return { read: (pool) => this.readPool(pool), scale: (pool, n, victims) => this.scale(pool, n, victims) };
  }

  // --- SignalSource: what Prometheus would return over the trailing window -----------------

  async readSignals(): Promise<ClusterSignals> {
    const from = this.nowS - this.#o.signalWindowS;
    const span = Math.min(this.#o.signalWindowS, Math.max(1, this.nowS));
    const ttfts = this.#ttftWindow.since(from).map((s) => [s.value, 1] as [number, number]);
    const itls = this.#itlWindow.since(from).map((s) => s.value);
    const sum = (w: Window<number>): number => w.since(from).reduce((s, x) => s + x.value, 0);
    const ready = this.#decode.filter((w) => w.readyS <= this.nowS);
    const usage = ready.map((w) => w.kvTokens / this.#o.kvTokensPerWorker);
    const scraped = this.#queuedWindow.since(from);
    const queued = scraped.length === 0 ? 0 : scraped.reduce((s, x) => s + x.value, 0) / scraped.length;
    return {
      ttftP90S: weightedPercentile(ttfts, 0.9),
      itlP90S: weightedPercentile(itls, 0.9),
      queueP90S: null,
      prefillTokensPerS: sum(this.#promptWindow) / span,
      decodeTokensPerS: sum(this.#tokenWindow) / span,
      queuedPrefillTokens: queued,
      kvUsageSum: usage.length === 0 ? null : usage.reduce((s, u) => s + u, 0),
      kvUsageMax: usage.length === 0 ? null : Math.max(...usage),
      decodeRequestsWaiting: this.#decodeWait.length,
      decodeRequestsRunning: this.#decode.reduce((s, w) => s + w.running.length + w.joining.length, 0),
    };
  }

  async workerLoads(pool: PoolName): Promise<Map<string, number>> {
    const loads = new Map<string, number>();
    if (pool === 'prefill') {
      for (const w of this.#prefill) loads.set(w.id, w.queue.length + (w.current === null ? 0 : 1));
    } else {
      for (const w of this.#decode) loads.set(w.id, w.running.length + w.joining.length);
    }
    return loads;
  }

  // --- Scaler ------------------------------------------------------------------------------

  async readPool(pool: PoolName): Promise<PoolState> {
    const pods: Pod[] = pool === 'prefill' ? this.#prefill : this.#decode;
    const alive = pods.filter((p) => p.drainingSinceS === null);
    const ready = alive.filter((p) => p.readyS <= this.nowS).length;
    return { desired: alive.length, current: alive.length, ready, terminating: pods.length - alive.length };
  }

  async scale(pool: PoolName, replicas: number, victims: readonly string[]): Promise<void> {
    const pods: Pod[] = pool === 'prefill' ? this.#prefill : this.#decode;
    const alive = pods.filter((p) => p.drainingSinceS === null);
    for (let i = alive.length; i < replicas; i++) this.#addPod(pool, this.nowS);
    let excess = alive.length - replicas;
    // As the ReplicaSet ranks them: pods not ready yet first, then the named victims.
    const order = [
      ...alive.filter((p) => p.readyS > this.nowS),
      ...victims.map((v) => alive.find((p) => p.id === v)).filter((p): p is Pod => p !== undefined),
      ...alive,
    ];
    for (const pod of order) {
      if (excess <= 0) break;
      if (pod.drainingSinceS !== null) continue;
      pod.drainingSinceS = this.nowS;
      excess--;
    }
    this.#retire();
  }
}
