// A worker's Prometheus series, every one labelled {worker, role, model} (the registry's constant
// labels). Occupancy and the engine's cumulative counters are read at scrape time; steps are
// recorded as they end (one listener on the engine), generated tokens as they are streamed.
// vLLM's names are aliases of the matching series (docs/observability.md has the table).
import { type MetricsRegistry, tokenBuckets } from '@tandem/common';
import type { Engine } from '@tandem/runtime';

export interface WorkerMetrics {
  /** Tokens one Generate call streamed (the worker's output). */
  onTokensGenerated(numTokens: number): void;
  /** Stops recording steps (the engine closes). */
  close(): void;
}

/** Step-time buckets: 1 ms to 10 s. */
const stepBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function registerWorkerMetrics(registry: MetricsRegistry, engine: Engine): WorkerMetrics {
  if (!registry.enabled) return { onTokensGenerated: () => {}, close: () => {} };
  // One load report per scrape, however many series read it.
  let load = engine.load();
  let loadAt = 0;
  const current = (): ReturnType<Engine['load']> => {
    const now = performance.now();
    if (now - loadAt > 100) {
      load = engine.load();
      loadAt = now;
    }
    return load;
  };
  const gauge = (name: string, help: string, read: () => number, aliases: string[] = []): void =>
    registry.gauge(name, help, { aliases }).track({}, read);
  const counter = (name: string, help: string, read: () => number, aliases: string[] = []): void =>
    registry.counter(name, help, { aliases }).track({}, read);

  gauge('tandem_worker_requests_running', 'Sequences holding KV pages', () => current().numRunning, [
    'vllm:num_requests_running',
  ]);
  gauge('tandem_worker_requests_waiting', 'Sequences waiting for admission', () => current().numWaiting, [
    'vllm:num_requests_waiting',
  ]);
  gauge(
    'tandem_worker_queued_prefill_tokens',
    'Prompt tokens still to compute: waiting prompts (less their cached prefix) and running prefills',
    () => current().numQueuedPrefillTokens,
  );
  gauge(
    'tandem_worker_running_tokens',
    'Tokens (prompt + output) of running sequences',
    () => current().numRunningTokens,
  );
  gauge('tandem_worker_kv_pages_total', 'KV pages in the pool', () => current().numTotalPages);
  gauge('tandem_worker_kv_pages_free', 'KV pages free', () => current().numFreePages);
  gauge(
    'tandem_worker_kv_pages_cached',
    'KV pages holding cached prefixes no running sequence uses (evictable)',
    () => current().numEvictablePages,
  );
  const usedPages = (): number => {
    const l = current();
    return l.numTotalPages - l.numFreePages - l.numEvictablePages;
  };
  gauge('tandem_worker_kv_pages_used', 'KV pages held by sequences', usedPages);
  gauge(
    'tandem_worker_kv_usage_ratio',
    'KV pages held by sequences / all pages (0..1; cached evictable pages count as free, as in vLLM)',
    () => {
      const total = current().numTotalPages;
      return total === 0 ? 0 : usedPages() / total;
    },
    ['vllm:kv_cache_usage_perc'],
  );

  // Cumulative engine counters (a snapshot per scrape).
  let stats = engine.stats();
  let statsAt = 0;
  const stat = (): ReturnType<Engine['stats']> => {
    const now = performance.now();
    if (now - statsAt > 100) {
      stats = engine.stats();
      statsAt = now;
    }
    return stats;
  };
  counter(
    'tandem_worker_prefix_cache_queried_tokens_total',
    'Prompt tokens looked up in the prefix cache (every admitted prompt)',
    () => stat().numPromptTokens,
    ['vllm:prefix_cache_queries_total', 'vllm:prompt_tokens_total'],
  );
  counter(
    'tandem_worker_prefix_cache_hit_tokens_total',
    'Prompt tokens served from the prefix cache',
    () => stat().numCachedPromptTokens,
    ['vllm:prefix_cache_hits_total'],
  );
  counter(
    'tandem_worker_preemptions_total',
    'Sequences preempted (pages retracted, recomputed later)',
    () => stat().numPreemptions,
    ['vllm:num_preemptions_total'],
  );
  counter(
    'tandem_worker_evicted_pages_total',
    'Cached pages evicted to make room',
    () => stat().numEvictedPages,
  );
  counter('tandem_worker_forward_passes_total', 'Executor forward passes', () => stat().numForwardCalls);

  const prefillTokens = registry.counter(
    'tandem_worker_prefill_tokens_total',
    'Prompt positions computed (prefill chunks, recomputation included)',
  );
  const decodeTokens = registry.counter('tandem_worker_decode_tokens_total', 'Generated positions computed');
  const batchSize = registry.histogram('tandem_worker_batch_size', 'Sequences per step', tokenBuckets);
  const batchTokens = registry.histogram(
    'tandem_worker_batch_tokens',
    'Tokens computed per step',
    tokenBuckets,
  );
  const stepSeconds = registry.histogram(
    'tandem_worker_step_seconds',
    'One step: schedule, forward pass, postprocess',
    stepBuckets,
  );
  const generated = registry.counter('tandem_worker_generated_tokens_total', 'Tokens streamed to callers', {
    aliases: ['vllm:generation_tokens_total'],
  });
  const onPrefill = prefillTokens.with({});
  const onDecode = decodeTokens.with({});
  const onBatchSize = batchSize.with({});
  const onBatchTokens = batchTokens.with({});
  const onStep = stepSeconds.with({});
  const onGenerated = generated.with({});
  const unsubscribe = engine.onStep((step) => {
    onPrefill.inc(step.numPrefillTokens);
    onDecode.inc(step.numDecodeTokens);
    onBatchSize.observe(step.numSequences);
    onBatchTokens.observe(step.numPrefillTokens + step.numDecodeTokens);
    onStep.observe(step.seconds);
  });
  return {
    onTokensGenerated: (numTokens) => onGenerated.inc(numTokens),
    close: unsubscribe,
  };
}
