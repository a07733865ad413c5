// One benchmark run from settings to result: build the seeded workload, drive it, summarize.
import { type ClientOptions, createAgent } from './client.ts';
import { BenchWarmupError } from './errors.ts';
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
  const source = {
    format: config.promptFormat,
    minTokenId: Math.min(16, settings.vocabSize - 1),
    maxTokenId: settings.vocabSize - 1,
  };
  const url = new URL(config.endpoint, config.baseUrl);
  const agent = createAgent(url);
  const client: ClientOptions = {
    url,
    model: config.models[0]?.name ?? config.model,
    apiKey: settings.apiKey,
    ignoreEos: config.ignoreEos,
    temperature: config.temperature,
    timeoutMs: settings.timeoutMs,
    extraBody: settings.extraBody,
    agent,
  };
  try {
    if (config.warmupRequests > 0) {
      // Short unrelated prompts (their own seed: no workload prefix gets cached), one at a time,
      // so the measured run does not pay for cold code paths on either side.
      const warmup = buildWorkload(
        { type: 'random', numPrompts: config.warmupRequests, inputLen: 8, outputLen: 2, rangeRatio: 1 },
        config.seed ^ 0x3a7a,
        source,
      );
      const warm = await runWorkload(warmup, {
        api: config.api,
        client,
        requestRatePerS: Number.POSITIVE_INFINITY,
        burstiness: 1,
        maxConcurrency: 1,
        seed: config.seed,
        thinkTimeMs: 0,
        models: config.models,
        onRecord: null,
      });
      if (warm.records.every((r) => !r.ok)) {
        throw new BenchWarmupError(
          `every warm-up request failed; first: ${warm.records[0]?.error ?? 'none sent'}`,
        );
      }
    }
    const startedAt = new Date().toISOString();
    const output = await runWorkload(conversations, {
      api: config.api,
      client,
      requestRatePerS: config.requestRatePerS ?? Number.POSITIVE_INFINITY,
      burstiness: config.burstiness,
      maxConcurrency: config.maxConcurrency,
      seed: config.seed,
      thinkTimeMs: settings.thinkTimeMs,
      models: config.models,
      onRecord,
    });
    const durationS = (output.endedAtMs - output.startedAtMs) / 1000;
    const result: BenchResult = {
      type: 'tandem-bench-result',
      version: 1,
      config,
      startedAt,
      summary: summarizeRun(output.records, durationS, settings.slo),
      requests: output.records,
    };
    if (config.models.length > 1) {
      result.perModel = Object.fromEntries(
        config.models.map((m) => [
          m.name,
          summarizeRun(
            output.records.filter((r) => r.model === m.name),
            durationS,
            settings.slo,
          ),
        ]),
      );
    }
    return result;
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
