// Finds where one JSON value ends in text that arrives piece by piece (a tool call's object, its
// arguments), without parsing it: string and escape state plus bracket depth. The value's text
// is then streamed as it comes and parsed once complete.

const closers = new Set(['}', ']']);
const scalarEnd = new Set([',', '}', ']', ' ', '\n', '\r', '\t']);

export class JsonValueScanner {
  #depth = 0;
  #inString = false;
  #escape = false;
  #kind: 'none' | 'nested' | 'string' | 'scalar' = 'none';
  #end: number | null = null;
  /** Characters fed so far. */
  #length = 0;

  /** Offset (in everything fed) just past the value, or null while it is not complete. */
  get end(): number | null {
    return this.#end;
  }

  /** Feeds more text; returns the value's end offset once known. Leading whitespace is skipped. */
  feed(text: string): number | null {
    for (let i = 0; i < text.length && this.#end === null; i++) {
      const c = text[i] as string;
      const at = this.#length + i;
      switch (this.#kind) {
        case 'none':
          if (c === ' ' || c === '\n' || c === '\r' || c === '\t') break;
          if (c === '{' || c === '[') {
            this.#kind = 'nested';
            this.#depth = 1;
          } else if (c === '"') this.#kind = 'string';
          else this.#kind = 'scalar';
          break;
        case 'string':
          if (this.#escape) this.#escape = false;
          else if (c === '\\') this.#escape = true;
          else if (c === '"') this.#end = at + 1;
          break;
        case 'scalar':
          if (scalarEnd.has(c)) this.#end = at;
          break;
        case 'nested':
          if (this.#inString) {
            if (this.#escape) this.#escape = false;
            else if (c === '\\') this.#escape = true;
            else if (c === '"') this.#inString = false;
          } else if (c === '"') this.#inString = true;
          else if (c === '{' || c === '[') this.#depth++;
          else if (closers.has(c)) {
            this.#depth--;
            if (this.#depth === 0) this.#end = at + 1;
          }
          break;
      }
    }
    this.#length += text.length;
    return this.#end;
  }

  /** At the end of the output: a scalar ends there; anything else is incomplete. */
  finish(): number | null {
    if (this.#end === null && this.#kind === 'scalar') this.#end = this.#length;
    return this.#end;
  }
}
