// Drives a workload against an endpoint: conversations arrive on the arrival schedule, each
// turn waits for a concurrency slot, and a multi-turn conversation's next turn carries the
// history including the model's actual reply.
import { setTimeout as sleep } from 'node:timers/promises';
import { arrivalOffsetsMs } from './arrivals.ts';
import {
  type ApiKind,
  type ChatMessage,
  type ClientOptions,
  type OutgoingRequest,
  sendRequest,
} from './client.ts';
import { nowMs } from './clock.ts';
import type { RequestRecord } from './request-record.ts';
import type { ModelShare } from './result.ts';
import { createRng } from './rng.ts';
import { Semaphore } from './semaphore.ts';
import { joinParts, partText } from './workload/prompt.ts';
import type { Conversation, Turn } from './workload/types.ts';

export type RunOptions = {
  api: ApiKind;
  client: ClientOptions;
  requestRatePerS: number;
  /** Gamma shape of the arrival gaps; 1 is Poisson. */
  burstiness: number;
  maxConcurrency: number | null;
  seed: number;
  /** Pause between a reply and the next turn of the same conversation. */
  thinkTimeMs: number;
  /** The models conversations go to (a seeded draw by share); empty: the client's model. */
  models: readonly ModelShare[];
  onRecord: ((record: RequestRecord) => void) | null;
};

export type RunOutput = { records: RequestRecord[]; startedAtMs: number; endedAtMs: number };

type History = { messages: ChatMessage[] };

function buildRequest(
  conversation: Conversation,
  turnIndex: number,
  turn: Turn,
  history: History,
  api: ApiKind,
): OutgoingRequest {
  const base = {
    api,
    maxOutputTokens: turn.maxOutputTokens,
    numPlannedPromptTokens: turn.numPlannedPromptTokens,
    conversationId: conversation.id,
    turn: turnIndex,
    groupId: conversation.groupId,
  };
  if (api === 'chat') {
    const messages: ChatMessage[] = [];
    if (turn.system !== null) messages.push({ role: 'system', content: partText(turn.system) });
    messages.push(...history.messages, { role: 'user', content: partText(turn.user) });
    return { ...base, prompt: null, messages };
  }
  if (history.messages.length === 0) {
    const part = joinParts(turn.system, turn.user);
    return { ...base, prompt: part.type === 'token-ids' ? part.ids : part.text, messages: null };
  }
  // Completions with history: the transcript as plain text, one message per line.
  const lines = [...history.messages.map((m) => m.content), partText(turn.user)];
  return { ...base, prompt: lines.join('\n'), messages: null };
}

export async function runWorkload(conversations: Conversation[], options: RunOptions): Promise<RunOutput> {
  const arrivalsMs = arrivalOffsetsMs(
    conversations.length,
    options.requestRatePerS,
    options.burstiness,
    createRng(options.seed ^ 0x5eed),
  );
  const semaphore = options.maxConcurrency === null ? null : new Semaphore(options.maxConcurrency);
  // Each conversation's model, drawn by share from its own seeded stream (the same mix every run).
  const totalWeight = options.models.reduce((sum, m) => sum + m.weight, 0);
  const modelRng = createRng(options.seed ^ 0x70de1);
  const modelOf = conversations.map(() => {
    let u = modelRng.next() * totalWeight;
    for (const m of options.models) {
      u -= m.weight;
      if (u < 0) return m.name;
    }
    return options.models.at(-1)?.name ?? options.client.model;
  });
  const records: RequestRecord[] = [];
  const startedAtMs = nowMs();
  // Requests due at the same moment start one per event-loop turn, so the first one's bytes
  // leave while the others are still being built (otherwise 128 simultaneous requests all
  // wait for the whole synchronous burst, and that wait would count in their TTFT).
  let gate: Promise<void> = Promise.resolve();
  const nextTurn = (): Promise<void> => {
    gate = gate.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    return gate;
  };

  const runConversation = async (
    conversation: Conversation,
    arrivalMs: number,
    model: string,
  ): Promise<void> => {
    const client = model === options.client.model ? options.client : { ...options.client, model };
    const waitMs = startedAtMs + arrivalMs - nowMs();
    if (waitMs > 0) await sleep(waitMs);
    const history: History = { messages: [] };
    for (let t = 0; t < conversation.turns.length; t++) {
      const turn = conversation.turns[t] as Turn;
      if (t > 0 && options.thinkTimeMs > 0) await sleep(options.thinkTimeMs);
      const request = buildRequest(conversation, t, turn, history, options.api);
      if (semaphore !== null) await semaphore.acquire();
      await nextTurn();
      let result: Awaited<ReturnType<typeof sendRequest>>;
      try {
        result = await sendRequest(request, client);
      } finally {
        semaphore?.release();
      }
      records.push(result.record);
      options.onRecord?.(result.record);
      if (!result.record.ok) return; // a broken history would make later turns meaningless
      history.messages.push(
        { role: 'user', content: partText(turn.user) },
        { role: 'assistant', content: result.outputText },
      );
    }
  };

  await Promise.all(
    conversations.map((c, i) =>
      runConversation(c, arrivalsMs[i] as number, modelOf[i] ?? options.client.model),
    ),
  );
  const endedAtMs = nowMs();
  records.sort((a, b) => a.startedAtMs - b.startedAtMs);
  return { records, startedAtMs, endedAtMs };
}
