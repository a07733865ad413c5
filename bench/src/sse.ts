// Incremental Server-Sent Events parser (the WHATWG event-stream rules that OpenAI-compatible
// servers use): lines end in \n, \r\n or \r, `data:` lines of one event join with \n, a blank
// line dispatches, lines starting with ':' are comments. Chunks may split anywhere.

export type SseEvent = { event: string | null; data: string; id: string | null };

export class SseParser {
  #buffer = '';
  #dataLines: string[] = [];
  #event: string | null = null;
  #id: string | null = null;
  #sawCr = false;

  /** Feed decoded text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 10 && this.#sawCr && i === start && this.#buffer === '') {
        // The \n of a \r\n pair whose \r ended the previous line.
        this.#sawCr = false;
        start = i + 1;
        continue;
      }
      this.#sawCr = false;
      if (ch === 10 || ch === 13) {
        const line = this.#buffer + text.slice(start, i);
        this.#buffer = '';
        this.#line(line, events);
        if (ch === 13) {
          if (i + 1 < text.length && text.charCodeAt(i + 1) === 10) i++;
          else if (i + 1 === text.length) this.#sawCr = true;
        }
        start = i + 1;
      }
    }
    this.#buffer += text.slice(start);
    return events;
  }

  /** End of stream: an event without its closing blank line is dropped, as the spec says. */
  end(): void {
    this.#buffer = '';
    this.#dataLines = [];
    this.#event = null;
  }

  #line(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.#dataLines.length > 0) {
        events.push({ event: this.#event, data: this.#dataLines.join('\n'), id: this.#id });
      }
      this.#dataLines = [];
      this.#event = null;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#dataLines.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') this.#id = value;
  }
}
