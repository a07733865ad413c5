// Sends fuzz cases (cases.ts) to a router and checks every answer: no 5xx (and no error inside a
// 200 stream), every 4xx in OpenAI's shape ({error: {message, type, param, code}}) naming the
// `param` the case knows is at fault, every valid request served. Cases that hang up on purpose
// are checked only for what arrived before. The report counts by kind and keeps the first
// failures with the case that caused them.
import { connect } from 'node:net';
import { type CaseParams, type FuzzCase, fuzzCases } from './cases.ts';

export interface FuzzOptions extends CaseParams {
  baseUrl: string;
  seed: number;
  numRequests: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** One valid request every this many. */
  validEvery: number;
}

export interface FuzzFailure {
  index: number;
  kind: string;
  reason: string;
  status: number | null;
  /** The start of the case (method, path, body) and of the answer. */
  request: string;
  answer: string;
}

export interface FuzzReport {
  numRequests: number;
  numValid: number;
  numValidOk: number;
  /** Answers by status (0: none, the case hung up or the router closed the connection). */
  byStatus: Record<string, number>;
  byKind: Record<string, number>;
  /** Milliseconds spent per kind (summed over requests). */
  msByKind: Record<string, number>;
  num5xx: number;
  numBadShape: number;
  numWrongParam: number;
  failures: FuzzFailure[];
  elapsedMs: number;
}

interface Answer {
  status: number | null;
  contentType: string;
  text: string;
}

const answerTimeoutMs = 60_000;

async function sendFetch(baseUrl: string, testCase: FuzzCase): Promise<Answer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), answerTimeoutMs);
  let early: NodeJS.Timeout | null = null;
  if (testCase.abort?.type === 'early') early = setTimeout(() => controller.abort(), testCase.abort.afterMs);
  try {
    const response = await fetch(`${baseUrl}${testCase.path}`, {
      method: testCase.method,
      headers: testCase.headers,
      ...(testCase.body === null ? {} : { body: testCase.body }),
      signal: controller.signal,
    });
    const contentType = response.headers.get('content-type') ?? '';
    if (testCase.abort?.type === 'first-byte') {
      const reader = response.body?.getReader();
      await reader?.read().catch(() => null);
      controller.abort();
      return { status: response.status, contentType, text: '' };
    }
    const text = await response.text().catch(() => '');
    return { status: response.status, contentType, text };
  } catch {
    return { status: null, contentType: '', text: '' };
  } finally {
    clearTimeout(timer);
    if (early !== null) clearTimeout(early);
  }
}

/** A raw request over a socket; the answer's status line and body. */
function sendRaw(baseUrl: string, raw: Buffer): Promise<Answer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (data: Buffer) => chunks.push(data));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const headerEnd = text.indexOf('\r\n\r\n');
      const headers = headerEnd === -1 ? '' : text.slice(0, headerEnd);
      const contentType = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] ?? '';
      resolve({
        status: match === null ? null : Number(match[1]),
        contentType,
        text: headerEnd === -1 ? '' : text.slice(headerEnd + 4),
      });
    });
    // Our side ends with the request: the router answers, then closes.
    socket.end(raw);
  });
}

interface OpenAiError {
  error: { message: unknown; type: unknown; param: unknown; code: unknown };
}

function errorShape(text: string): OpenAiError['error'] | null {
  try {
    const body = JSON.parse(text) as Partial<OpenAiError>;
    const error = body.error;
    if (typeof error !== 'object' || error === null) return null;
    const keys = Object.keys(error).sort().join(',');
    if (keys !== 'code,message,param,type') return null;
    if (typeof error.message !== 'string' || typeof error.type !== 'string') return null;
    if (error.param !== null && typeof error.param !== 'string') return null;
    if (error.code !== null && typeof error.code !== 'string') return null;
    return error;
  } catch {
    return null;
  }
}

/** Why the answer is wrong for the case, or null. */
export function judge(testCase: FuzzCase, answer: Answer): string | null {
  const { status } = answer;
  if (status === null) {
    if (testCase.abort !== null) return null;
    // A body over the limit may be cut off while it is still being sent.
    if (testCase.kind === 'huge-body') return null;
    return 'no answer';
  }
  if (status >= 500) return `status ${status}`;
  if (testCase.valid) {
    if (status !== 200) return `a valid request got ${status}`;
    if (answer.contentType.startsWith('text/event-stream')) {
      if (answer.text.includes('"error"')) return 'an error inside the stream';
      if (!answer.text.includes('data: [DONE]')) return 'the stream did not end with [DONE]';
      return null;
    }
    try {
      const body = JSON.parse(answer.text) as { choices?: unknown[] };
      if (!Array.isArray(body.choices) || body.choices.length === 0) return 'no choices';
    } catch {
      return 'a valid request got a body that is not JSON';
    }
    return null;
  }
  if (status === 200) {
    if (answer.contentType.startsWith('text/event-stream') && testCase.abort === null) {
      if (answer.text.includes('data: {"error"')) return 'an error inside the stream';
    }
    return null;
  }
  if (status >= 400) {
    if (testCase.method === 'HEAD') return null; // no body by definition
    const error = errorShape(answer.text);
    if (error === null) return `status ${status} without OpenAI's error shape`;
    const expected = testCase.expectParam;
    if (expected !== null && status !== 429 && status !== 401) {
      const param = error.param;
      if (typeof param !== 'string' || !(param === expected || param.startsWith(`${expected}.`))) {
        return `param ${JSON.stringify(param)}, expected ${expected}`;
      }
    }
  }
  return null;
}

function describe(testCase: FuzzCase): string {
  if (testCase.raw !== null) return testCase.raw.toString('latin1').slice(0, 200);
  const body = testCase.body === null ? '' : testCase.body.toString().slice(0, 300);
  return `${testCase.method} ${testCase.path.slice(0, 100)} ${body}`;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const startedAt = performance.now();
  const report: FuzzReport = {
    numRequests: 0,
    numValid: 0,
    numValidOk: 0,
    byStatus: {},
    byKind: {},
    msByKind: {},
    num5xx: 0,
    numBadShape: 0,
    numWrongParam: 0,
    failures: [],
    elapsedMs: 0,
  };
  const cases = fuzzCases(options.seed, options.numRequests, options.validEvery, options);
  let index = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = cases.next();
      if (next.done) return;
      const testCase = next.value;
      const at = index++;
      const sentAt = performance.now();
      const answer =
        testCase.raw !== null
          ? await sendRaw(options.baseUrl, testCase.raw)
          : await sendFetch(options.baseUrl, testCase);
      report.numRequests++;
      report.byKind[testCase.kind] = (report.byKind[testCase.kind] ?? 0) + 1;
      report.msByKind[testCase.kind] = Math.round(
        (report.msByKind[testCase.kind] ?? 0) + performance.now() - sentAt,
      );
      const statusKey = String(answer.status ?? 0);
      report.byStatus[statusKey] = (report.byStatus[statusKey] ?? 0) + 1;
      if (testCase.valid) report.numValid++;
      const reason = judge(testCase, answer);
      if (reason === null) {
        if (testCase.valid) report.numValidOk++;
        continue;
      }
      if ((answer.status ?? 0) >= 500 || reason.includes('inside the stream')) report.num5xx++;
      else if (reason.startsWith('param')) report.numWrongParam++;
      else report.numBadShape++;
      if (report.failures.length < 50) {
        report.failures.push({
          index: at,
          kind: testCase.kind,
          reason,
          status: answer.status,
          request: describe(testCase),
          answer: answer.text.slice(0, 300),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  report.elapsedMs = performance.now() - startedAt;
  return report;
}
