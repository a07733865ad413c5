// One prompt's generation as the client sees it: the worker's token batches per choice go through
// incremental detokenization and stop strings (openai/choice-output.ts); stop tokens are dropped
// from the text; when every choice has ended, the worker's stream is cancelled.
import { FinishReason as WireFinishReason } from '@tandem/proto';
import type { Dispatcher, DispatchRequest } from './cluster/dispatcher.ts';
import { WorkerFailedError } from './errors.ts';
import type { ServedModel } from './model.ts';
import { ChoiceOutput, type ReleasedToken } from './openai/choice-output.ts';
import type { OpenAiFinishReason } from './openai/format.ts';
import type { TokenTimer } from './token-timer.ts';

export interface ChoiceEvent {
  /** Index of the choice within the whole response. */
  index: number;
  text: string;
  tokens: ReleasedToken[];
  /** Set on the choice's last event. */
  finishReason: OpenAiFinishReason | null;
  /** The stop string or stop token id that ended it (vLLM's stop_reason), or null. */
  stopReason: string | number | null;
}

export interface PromptUsage {
  numPromptTokens: number;
  numCachedTokens: number;
  numCompletionTokens: number;
}

export interface PromptRun {
  dispatch: Omit<DispatchRequest, 'signal'>;
  /** Global index of this prompt's first choice. */
  firstChoiceIndex: number;
  model: ServedModel;
  onEvent(event: ChoiceEvent): void;
  /** Backpressure: a promise while the client cannot take more (see ResponseSink.whenWritable). */
  whenWritable?: () => Promise<void> | null;
  signal: AbortSignal;
  /** Records inter-token latency and TPOT (null: not measured). */
  timing: TokenTimer | null;
}

interface ChoiceState {
  output: ChoiceOutput;
  done: boolean;
  /** The worker sent this choice's last delta (it may still run after a stop string here). */
  workerFinished: boolean;
  /** Tokens generated but not shown (a dropped stop token). */
  numHiddenTokens: number;
}

export async function runPrompt(dispatcher: Dispatcher, run: PromptRun): Promise<PromptUsage> {
  const { options } = run.dispatch;
  const choices: ChoiceState[] = Array.from({ length: options.n }, () => ({
    output: new ChoiceOutput(
      run.model.createDecoder(options.skipSpecialTokens),
      options.stop,
      options.includeStopStrInOutput,
    ),
    done: false,
    workerFinished: false,
    numHiddenTokens: 0,
  }));
  const usage: PromptUsage = {
    numPromptTokens: run.dispatch.promptTokenIds.length,
    numCachedTokens: 0,
    numCompletionTokens: 0,
  };
  // Our own controller: cancels the worker stream once every choice ended on a stop string.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(run.signal.reason);
  if (run.signal.aborted) onAbort();
  else run.signal.addEventListener('abort', onAbort, { once: true });
  let numDone = 0;
  /** Choices whose last delta the worker sent. */
  let numWorkerFinished = 0;
  let sawFirst = false;
  try {
    const stream = dispatcher.generate({ ...run.dispatch, signal: controller.signal });
    for await (const response of stream) {
      const atMs = run.timing === null ? 0 : performance.now();
      if (!sawFirst) {
        sawFirst = true;
        usage.numPromptTokens = response.numPromptTokens || usage.numPromptTokens;
        usage.numCachedTokens = response.numCachedTokens;
      }
      for (const delta of response.choices) {
        const state = choices[delta.index];
        if (state === undefined) continue;
        run.timing?.onTokens(delta.index, delta.tokenIds.length, atMs);
        if (delta.finishReason !== WireFinishReason.UNSPECIFIED && !state.workerFinished) {
          state.workerFinished = true;
          numWorkerFinished++;
        }
        if (state.done) continue;
        let tokenIds = delta.tokenIds;
        let logprobs: number[] | null = delta.logprobs.length > 0 ? delta.logprobs : null;
        let topLogprobs =
          delta.topLogprobs.length > 0
            ? delta.topLogprobs.map((top) =>
                top.entries.map((e) => ({ tokenId: e.tokenId, logprob: e.logprob })),
              )
            : null;
        const finished = delta.finishReason !== WireFinishReason.UNSPECIFIED;
        if (finished && delta.finishReason === WireFinishReason.ABORT) {
          throw new WorkerFailedError(`the worker aborted choice ${delta.index}`);
        }
        const stoppedOnToken = delta.finishReason === WireFinishReason.STOP && tokenIds.length > 0;
        if (stoppedOnToken && !options.includeStopStrInOutput) {
          // The last token is the stop token (EOS or a stop id): counted, not shown.
          tokenIds = tokenIds.slice(0, -1);
          logprobs = logprobs?.slice(0, -1) ?? null;
          topLogprobs = topLogprobs?.slice(0, -1) ?? null;
          state.numHiddenTokens++;
        }
        const release = state.output.push(tokenIds, logprobs, topLogprobs);
        let finishReason: OpenAiFinishReason | null = null;
        let stopReason: string | number | null = null;
        let { text, tokens } = release;
        if (release.matchedStop !== null) {
          finishReason = 'stop';
          stopReason = release.matchedStop;
          state.numHiddenTokens = 0;
        } else if (finished) {
          const tail = state.output.finish();
          text += tail.text;
          tokens = [...tokens, ...tail.tokens];
          if (tail.matchedStop !== null) {
            finishReason = 'stop';
            stopReason = tail.matchedStop;
            state.numHiddenTokens = 0;
          } else {
            finishReason = delta.finishReason === WireFinishReason.LENGTH ? 'length' : 'stop';
            stopReason = delta.matchedStopTokenId ?? null;
          }
        }
        if (text.length > 0 || tokens.length > 0 || finishReason !== null) {
          run.onEvent({ index: run.firstChoiceIndex + delta.index, text, tokens, finishReason, stopReason });
        }
        if (finishReason !== null) {
          state.done = true;
          numDone++;
        }
      }
      // Every choice is over. If the worker finished them all, its stream is ending anyway: read
      // to the end rather than cancel a call that is completing. If a stop string ended one
      // here, the worker is still generating: leave, which cancels the call.
      if (numDone === choices.length && numWorkerFinished < choices.length) break;
      const writable = run.whenWritable?.() ?? null;
      if (writable !== null) await writable;
    }
  } finally {
    run.timing?.finish();
    run.signal.removeEventListener('abort', onAbort);
    // Stops the worker's stream when we left early (a stop string, or an error).
    if (numWorkerFinished < choices.length) controller.abort();
  }
  if (numDone < choices.length) {
    throw new WorkerFailedError(
      `the worker's stream ended with ${choices.length - numDone} choice(s) unfinished`,
    );
  }
  for (const state of choices)
    usage.numCompletionTokens += state.output.numReleasedTokens + state.numHiddenTokens;
  return usage;
}
