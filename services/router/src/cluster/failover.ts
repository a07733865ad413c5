// Mid-stream failover (Dynamo's request migration): the router remembers, per choice, the tokens
// a worker has streamed; when the worker dies mid-stream, each unfinished choice continues on
// another worker as a new request whose prompt is the original prompt plus those tokens, with the
// tokens left of its budget. Greedy decoding then yields exactly the text an uninterrupted run
// would; sampled choices continue from the same text (presence and frequency penalties see only
// the continuation's own tokens). The client sees one stream: the continuation's choice 0 is
// renamed to the choice it continues.
import { FinishReason, type GenerateResponse } from '@tandem/proto';

interface ChoiceTrack {
  tokenIds: number[];
  finished: boolean;
}

export class ChoiceProgress {
  readonly #choices: ChoiceTrack[];

  constructor(numChoices: number) {
    this.#choices = Array.from({ length: numChoices }, () => ({ tokenIds: [], finished: false }));
  }

  /**
   * Records a response. A choice the worker aborted (finish ABORT: it is shutting down) is not
   * finished: the delta loses its finish reason and the choice continues elsewhere.
   */
  observe(response: GenerateResponse): GenerateResponse {
    for (const delta of response.choices) {
      const choice = this.#choices[delta.index];
      if (choice === undefined) continue;
      choice.tokenIds.push(...delta.tokenIds);
      if (delta.finishReason === FinishReason.ABORT) delta.finishReason = FinishReason.UNSPECIFIED;
      else if (delta.finishReason !== FinishReason.UNSPECIFIED) choice.finished = true;
    }
    return response;
  }

  get allFinished(): boolean {
    return this.#choices.every((choice) => choice.finished);
  }

  /** The choices still running, with the tokens generated so far. */
  unfinished(): { index: number; tokenIds: readonly number[] }[] {
    const open: { index: number; tokenIds: readonly number[] }[] = [];
    this.#choices.forEach((choice, index) => {
      if (!choice.finished) open.push({ index, tokenIds: choice.tokenIds });
    });
    return open;
  }
}

/** A continuation's responses as the original choice `index` (its only choice is 0). */
export function renameChoice(response: GenerateResponse, index: number): GenerateResponse {
  for (const delta of response.choices) delta.index = index;
  return response;
}

/** Several streams as one, in arrival order; a failure of any ends the whole (the others stop). */
export async function* mergeStreams<T>(streams: AsyncGenerator<T>[]): AsyncGenerator<T> {
  if (streams.length === 1) {
    yield* streams[0]!;
    return;
  }
  type Pulled = { at: number; result: IteratorResult<T> } | { at: number; error: unknown };
  // Pulls never reject: a stream's failure is rethrown here, in order, not left unhandled.
  const pending = new Map<number, Promise<Pulled>>();
  const pull = (at: number): void => {
    pending.set(
      at,
      streams[at]!.next().then(
        (result): Pulled => ({ at, result }),
        (error: unknown): Pulled => ({ at, error }),
      ),
    );
  };
  for (let at = 0; at < streams.length; at++) pull(at);
  try {
    while (pending.size > 0) {
      const pulled = await Promise.race(pending.values());
      const { at } = pulled;
      if ('error' in pulled) {
        pending.delete(at);
        throw pulled.error;
      }
      const { result } = pulled;
      if (result.done) {
        pending.delete(at);
        continue;
      }
      pull(at);
      yield result.value;
    }
  } finally {
    // Stop the streams still running (a failure or a consumer that left early).
    await Promise.allSettled(
      streams.map((stream, at) => (pending.has(at) ? stream.return(undefined) : null)),
    );
  }
}
