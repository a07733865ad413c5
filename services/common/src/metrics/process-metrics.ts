// The standard process_* series (CPU, memory, start time) and the event loop's delay, read at
// scrape time: what the per-worker dashboard shows beside the serving metrics.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MetricsRegistry } from './registry.ts';

/** Registers the process metrics on `registry`; returns a stop function (the loop monitor). */
export function registerProcessMetrics(registry: MetricsRegistry): () => void {
  if (!registry.enabled) return () => {};
  const startTimeS = Math.round(performance.timeOrigin / 1000);
  registry.counter('process_cpu_seconds_total', 'User and system CPU time spent, seconds').track({}, () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  });
  registry
    .gauge('process_resident_memory_bytes', 'Resident memory size, bytes')
    .track({}, () => process.memoryUsage.rss());
  registry
    .gauge('process_start_time_seconds', 'Start time of the process, Unix seconds')
    .track({}, () => startTimeS);
  registry
    .gauge('nodejs_heap_used_bytes', 'V8 heap in use, bytes')
    .track({}, () => process.memoryUsage().heapUsed);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  registry
    .gauge('nodejs_eventloop_delay_p99_seconds', 'Event loop delay, 99th percentile since the last scrape')
    .track({}, () => {
      const p99 = loop.percentile(99) / 1e9;
      loop.reset();
      return Number.isFinite(p99) ? p99 : 0;
    });
  return () => loop.disable();
}
