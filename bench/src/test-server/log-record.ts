// One JSONL line of the test server's log: the true times it applied to a request, taken on
// the server's clock at the moment each chunk was handed to the socket.
export type ServerLogRecord = {
  id: string;
  api: 'completions' | 'chat';
  /** Order of arrival at the server, from 0. */
  sequence: number;
  receivedAtMs: number;
  /** When each output-token chunk was written. */
  chunkAtMs: number[];
  /** When the response was ended (after usage and [DONE]). */
  endAtMs: number;
  plannedTtftMs: number;
  plannedItlMs: number[];
  slowTtft: boolean;
  slowItl: boolean;
  numPromptTokens: number;
  numOutputTokens: number;
  numCachedTokens: number;
  maxTokens: number;
  ignoreEos: boolean;
  /** Requests in flight at the server when this one arrived (itself included). */
  numInFlightAtArrival: number;
  /** False when the client went away before the end. */
  completed: boolean;
};
