// Tool calls out of a choice's text, incrementally: the text arrives as the router releases it
// and comes out as OpenAI's pieces: content, a call's opening (index, id, name), and fragments
// of its arguments as they are generated. Non-streaming responses run the same parser over the
// whole text, so both shapes agree exactly. Two layouts (formats.ts):
//   tagged  (Hermes / Qwen): content, then calls each between `<tool_call>` and `</tool_call>`;
//   leading (Llama 3.x JSON): the output is the calls themselves, `{...}; {...}`, when it starts
//           with `{` (or `<|python_tag|>`); otherwise it is all content.
// A call is a JSON object {"name": ..., "arguments" | "parameters": {...}}. Its arguments stream
// once the name is known; a call whose keys come in another order is sent whole when it ends;
// text that is not a well-formed call stays content.
import { JsonValueScanner } from './json-scanner.ts';

export type ToolDelta =
  | { type: 'content'; text: string }
  | { type: 'call'; index: number; id: string; name: string }
  | { type: 'arguments'; index: number; text: string };

export type CallLayout =
  | { type: 'tagged'; open: string; close: string }
  | { type: 'leading'; prefixes: readonly string[]; separator: string };

export interface CallSyntax {
  layout: CallLayout;
  /** The keys that may hold a call's arguments, in the order tried. */
  argumentKeys: readonly string[];
}

type Mode = 'start' | 'text' | 'call' | 'afterCall' | 'plain';

interface CallState {
  /** What preceded the body (a marker, a separator): content again if the call is malformed. */
  rawPrefix: string;
  body: string;
  scanner: JsonValueScanner;
  /** Set once the name is known: the call's index and where its arguments start in body. */
  header: { index: number; argsStart: number } | null;
  argsScanner: JsonValueScanner | null;
  argsFed: number;
  argsSent: number;
}

/** The longest suffix of `text` that is a proper prefix of `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(marker.slice(0, n))) return n;
  }
  return 0;
}

export class ToolCallParser {
  readonly #syntax: CallSyntax;
  readonly #newId: () => string;
  readonly #header: RegExp;
  #mode: Mode;
  #pending = '';
  #call: CallState | null = null;
  #numCalls = 0;
  #out: ToolDelta[] = [];

  constructor(syntax: CallSyntax, newId: () => string) {
    this.#syntax = syntax;
    this.#newId = newId;
    const keys = syntax.argumentKeys.map((k) => k.replace(/[^A-Za-z0-9_]/g, '')).join('|');
    this.#header = new RegExp(
      `^\\s*\\{\\s*"name"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"\\s*,\\s*"(?:${keys})"\\s*:\\s*(?=\\S)`,
    );
    this.#mode = syntax.layout.type === 'tagged' ? 'text' : 'start';
  }

  /** Calls opened so far. */
  get numCalls(): number {
    return this.#numCalls;
  }

  push(text: string): ToolDelta[] {
    this.#pending += text;
    this.#run(false);
    return this.#take();
  }

  /** The output ended: whatever is held goes out. */
  finish(): ToolDelta[] {
    this.#run(true);
    const pending = this.#pending;
    this.#pending = '';
    switch (this.#mode) {
      case 'call': {
        const call = this.#call as CallState;
        // A truncated call: its arguments went out as far as they came; one never opened is content.
        if (call.header === null) this.#content(call.rawPrefix + call.body);
        break;
      }
      case 'text':
        if (this.#numCalls === 0 || pending.trim() !== '') this.#content(pending);
        break;
      case 'afterCall':
        break;
      default:
        this.#content(pending);
    }
    return this.#take();
  }

  #take(): ToolDelta[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #content(text: string): void {
    if (text.length > 0) this.#out.push({ type: 'content', text });
  }

  /** Consumes #pending as far as it can be decided. */
  #run(atEnd: boolean): void {
    for (;;) {
      const before = `${this.#mode}:${this.#pending.length}`;
      switch (this.#mode) {
        case 'start':
          this.#start(atEnd);
          break;
        case 'text':
          this.#text();
          break;
        case 'call':
          this.#callStep(atEnd);
          break;
        case 'afterCall':
          this.#afterCall(atEnd);
          break;
        case 'plain':
          this.#content(this.#pending);
          this.#pending = '';
          break;
      }
      if (`${this.#mode}:${this.#pending.length}` === before) return;
    }
  }

  /** Leading layout, before anything is decided: calls if the output opens with one. */
  #start(atEnd: boolean): void {
    const layout = this.#syntax.layout as Extract<CallLayout, { type: 'leading' }>;
    let rest = this.#pending.trimStart();
    for (;;) {
      const prefix = layout.prefixes.find((p) => rest.startsWith(p));
      if (prefix === undefined) break;
      rest = rest.slice(prefix.length).trimStart();
    }
    if (rest.length === 0 || (!atEnd && layout.prefixes.some((p) => p.startsWith(rest) && p !== rest))) {
      if (atEnd) this.#mode = 'plain';
      return; // undecided: wait for more
    }
    if (rest.startsWith('{'))
      this.#openCall(this.#pending.slice(0, this.#pending.length - rest.length), rest);
    else this.#mode = 'plain';
  }

  /** Tagged layout: content up to the next opening marker (a possible marker and trailing spaces held). */
  #text(): void {
    const { open } = this.#syntax.layout as Extract<CallLayout, { type: 'tagged' }>;
    const at = this.#pending.indexOf(open);
    if (at !== -1) {
      // Spaces before a call are dropped with it (kept if it turns out not to be one).
      const before = this.#pending.slice(0, at);
      const kept = before.trimEnd();
      this.#content(kept);
      this.#openCall(before.slice(kept.length) + open, this.#pending.slice(at + open.length));
      return;
    }
    const held = partialSuffix(this.#pending, open);
    const ready = this.#pending.slice(0, this.#pending.length - held);
    const emit = ready.trimEnd();
    this.#content(emit);
    this.#pending = this.#pending.slice(emit.length);
  }

  #openCall(rawPrefix: string, rest: string): void {
    this.#mode = 'call';
    this.#pending = rest;
    this.#call = {
      rawPrefix,
      body: '',
      scanner: new JsonValueScanner(),
      header: null,
      argsScanner: null,
      argsFed: 0,
      argsSent: 0,
    };
  }

  #callStep(atEnd: boolean): void {
    const call = this.#call as CallState;
    if (this.#pending.length > 0) {
      const start = call.body.length;
      call.body += this.#pending;
      this.#pending = '';
      const end = call.scanner.feed(call.body.slice(start));
      if (end !== null && end < call.body.length) {
        this.#pending = call.body.slice(end);
        call.body = call.body.slice(0, end);
      }
    }
    const first = call.body.trimStart()[0];
    if (first !== undefined && first !== '{') {
      this.#malformed(call);
      return;
    }
    this.#streamArguments(call);
    if (call.scanner.end !== null) this.#closeCall(call);
    else if (atEnd) return; // truncated: finish() decides
  }

  #streamArguments(call: CallState): void {
    if (call.header === null) {
      const match = this.#header.exec(call.body);
      if (match === null) return;
      let name: string;
      try {
        name = JSON.parse(`"${match[1] ?? ''}"`) as string;
      } catch {
        return;
      }
      call.header = { index: this.#numCalls++, argsStart: match[0].length };
      call.argsScanner = new JsonValueScanner();
      this.#out.push({ type: 'call', index: call.header.index, id: this.#newId(), name });
    }
    const { index, argsStart } = call.header;
    const scanner = call.argsScanner as JsonValueScanner;
    const available = call.body.length - argsStart;
    if (available > call.argsFed && scanner.end === null) {
      scanner.feed(call.body.slice(argsStart + call.argsFed));
      call.argsFed = available;
    }
    const upTo = call.scanner.end !== null ? scanner.finish() : scanner.end;
    const limit = upTo ?? available;
    if (limit > call.argsSent) {
      this.#out.push({
        type: 'arguments',
        index,
        text: call.body.slice(argsStart + call.argsSent, argsStart + limit),
      });
      call.argsSent = limit;
    }
  }

  #closeCall(call: CallState): void {
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(call.body);
    } catch {
      parsed = null;
    }
    if (call.header === null) {
      const object =
        typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : null;
      if (object === null || typeof object.name !== 'string') {
        this.#malformed(call);
        return;
      }
      const key = this.#syntax.argumentKeys.find((k) => object[k] !== undefined);
      const args = key === undefined ? {} : object[key];
      const index = this.#numCalls++;
      this.#out.push({ type: 'call', index, id: this.#newId(), name: object.name });
      this.#out.push({
        type: 'arguments',
        index,
        text: typeof args === 'string' ? args : JSON.stringify(args),
      });
    }
    this.#call = null;
    this.#mode = 'afterCall';
  }

  /** Not a call after all: its text is content, and parsing goes on after it. */
  #malformed(call: CallState): void {
    this.#content(call.rawPrefix + call.body);
    this.#call = null;
    this.#mode = this.#syntax.layout.type === 'tagged' ? 'text' : 'plain';
  }

  #afterCall(atEnd: boolean): void {
    const layout = this.#syntax.layout;
    const rest = this.#pending.trimStart();
    const marker = layout.type === 'tagged' ? layout.close : layout.separator;
    if (rest.startsWith(marker)) {
      const after = rest.slice(marker.length);
      if (layout.type === 'tagged') {
        this.#mode = 'text';
        this.#pending = after;
      } else {
        const body = after.trimStart();
        if (body.length === 0 && !atEnd) return; // wait for the next call
        if (body.startsWith('{'))
          this.#openCall(this.#pending.slice(0, this.#pending.length - body.length), body);
        else {
          this.#mode = 'plain';
          this.#pending = after;
        }
      }
      return;
    }
    if (rest.length === 0 || (marker.startsWith(rest) && !atEnd)) return; // wait
    // Something else follows the call: content again (tagged) or to the end (leading).
    this.#mode = layout.type === 'tagged' ? 'text' : 'plain';
  }
}

/** A whole output's deltas, merged: content (null when empty) and the calls. */
export function collectToolDeltas(deltas: readonly ToolDelta[]): {
  content: string | null;
  calls: { id: string; name: string; arguments: string }[];
} {
  let content = '';
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const delta of deltas) {
    if (delta.type === 'content') content += delta.text;
    else if (delta.type === 'call') calls[delta.index] = { id: delta.id, name: delta.name, arguments: '' };
    else {
      const call = calls[delta.index];
      if (call !== undefined) call.arguments += delta.text;
    }
  }
  return { content: content.length === 0 && calls.length > 0 ? null : content, calls };
}
