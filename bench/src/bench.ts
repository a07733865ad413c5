// One benchmark run from settings to result: build the seeded workload, drive it, summarize.
import { createAgent } from './client.ts';
import { summarizeRun } from './metrics.ts';
import type { RunSettings } from './options.ts';
import type { RequestRecord } from './request-record.ts';
import type { BenchResult } from './result.ts';
import { runWorkload } from './runner.ts';
import { buildWorkload } from './workload/index.ts';

export async function runBench(
  settings: RunSettings,
  onRecord: ((r: RequestRecord) => void) | null,
): Promise<BenchResult> {
  const { config } = settings;
  // Ids stay clear of the lowest ids, where vocabularies keep special and byte tokens.
  const conversations = buildWorkload(config.workload, config.seed, {
    format: config.promptFormat,
    minTokenId: Math.min(16, settings.vocabSize - 1),
    maxTokenId: settings.vocabSize - 1,
  });
  const url = new URL(config.endpoint, config.baseUrl);
  const agent = createAgent(url);
  const startedAt = new Date().toISOString();
  try {
    const output = await runWorkload(conversations, {
      api: config.api,
      client: {
        url,
        model: config.model,
        apiKey: settings.apiKey,
        ignoreEos: config.ignoreEos,
        temperature: config.temperature,
        timeoutMs: settings.timeoutMs,
        extraBody: settings.extraBody,
        agent,
      },
      requestRatePerS: config.requestRatePerS ?? Number.POSITIVE_INFINITY,
      burstiness: config.burstiness,
      maxConcurrency: config.maxConcurrency,
      seed: config.seed,
      thinkTimeMs: settings.thinkTimeMs,
      onRecord,
    });
    const durationS = (output.endedAtMs - output.startedAtMs) / 1000;
    return {
      type: 'tandem-bench-result',
      version: 1,
      config,
      startedAt,
      summary: summarizeRun(output.records, durationS, settings.slo),
      requests: output.records,
    };
  } finally {
    agent.destroy();
  }
}

/** The first model the endpoint lists at /v1/models; null when it lists none or fails. */
export async function discoverModel(baseUrl: string, apiKey: string | null): Promise<string | null> {
  try {
    const response = await fetch(new URL('/v1/models', baseUrl), {
      headers: apiKey === null ? {} : { authorization: `Bearer ${apiKey}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return null;
    const body = (await response.json()) as { data?: Array<{ id?: unknown }> };
    const id = body.data?.[0]?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}
