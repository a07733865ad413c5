// The common streaming chunk (one choice's new text, no logprobs, no finish reason) as a string
// built from a per-request, per-choice prefix and suffix around the JSON-escaped text: byte for
// byte what JSON.stringify makes of the whole chunk object, without building that object for
// every token (issue 17: the per-token work of a router at 100k tokens/s).

export interface ChunkHeader {
  id: string;
  object: 'chat.completion.chunk' | 'text_completion';
  created: number;
  model: string;
  /** The `usage` key on every chunk (null until the last): stream_options.include_usage. */
  usageNull: boolean;
}

export class TextChunkFramer {
  readonly #header: string;
  readonly #chat: boolean;
  readonly #tail: string;
  /** Per choice index: the text up to the opening quote of the text. */
  readonly #prefixes: string[] = [];

  constructor(header: ChunkHeader) {
    const { id, object, created, model } = header;
    this.#header = `data: {"id":${JSON.stringify(id)},"object":"${object}","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":[{"index":`;
    this.#chat = object === 'chat.completion.chunk';
    const usage = header.usageNull ? ',"usage":null' : '';
    this.#tail = this.#chat
      ? `},"logprobs":null,"finish_reason":null}]${usage}}\n\n`
      : `,"logprobs":null,"finish_reason":null}]${usage}}\n\n`;
  }

  /** The SSE event of choice `index`'s new text (chat: delta.content; completion: text). */
  event(index: number, text: string): string {
    let prefix = this.#prefixes[index];
    if (prefix === undefined) {
      prefix = `${this.#header}${index},${this.#chat ? '"delta":{"content":' : '"text":'}`;
      this.#prefixes[index] = prefix;
    }
    return prefix + JSON.stringify(text) + this.#tail;
  }
}
