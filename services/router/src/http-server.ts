// The router's HTTP face (node:http): OpenAI routes, health, metrics and routing records. Each
// request gets an x-request-id (the client's when it sends a sane one); errors leave as OpenAI
// error objects; a client that disconnects aborts its request (and so the worker's stream).
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CancelledError, type ErrorReason, type Logger, TimeoutError, withContext } from '@tandem/common';
import { type ApiKeyPolicy, type ApiKeyTable, bearerKey } from './auth/api-keys.ts';
import { priorityOf } from './cluster/admission.ts';
import type { DecisionLog } from './cluster/decision-log.ts';
import { type DebugListing, prometheusTargets } from './debug-listing.ts';
import { InvalidApiKeyError, InvalidRequestError, ModelNotFoundError, RouteNotFoundError } from './errors.ts';
import { mergeExpositions } from './exposition-merge.ts';
import type { RouterMetrics } from './metrics.ts';
import { renderError } from './openai/errors.ts';
import type { ProcessPeers } from './process-group.ts';
import { endHttpSpan, startHttpSpan } from './request-trace.ts';
import type { AdminAccess } from './router-options.ts';
import type { RequestContext, ResponseSink, RouterService } from './service.ts';

export interface HttpServerParams {
  service: RouterService;
  decisions: DecisionLog;
  metrics: RouterMetrics;
  logger: Logger;
  /** Health: whether at least one worker can take requests. */
  isReady: () => boolean;
  /** Per-request deadline. */
  requestTimeoutMs: number;
  maxBodyBytes: number;
  /** GET /debug: every process of the cluster and its metrics endpoint. */
  debug: () => DebugListing;
  /** Headers and body must arrive within this (slow-body connections are closed with 408). */
  bodyTimeoutMs: number;
  /** Client keys (null: the /v1 routes are open). */
  apiKeys: ApiKeyTable | null;
  /** /metrics and /debug/*: open, only with an admin key, or off. */
  adminAccess: AdminAccess;
  adminKeys: ApiKeyTable;
  /** The other processes of a --processes group (null: this router is alone). */
  peers?: ProcessPeers | null;
}

const knownRoutes = new Set([
  'POST /v1/chat/completions',
  'POST /v1/completions',
  'GET /v1/models',
  'GET /health',
  'GET /healthz',
  'GET /metrics',
  'GET /debug',
  'GET /debug/targets',
]);

/** Route label for metrics: known routes as they are, the rest grouped (bounded label set). */
function metricRoute(route: string): string {
  if (knownRoutes.has(route)) return route;
  if (route.startsWith('GET /debug/routing/')) return 'GET /debug/routing';
  if (route.startsWith('GET /v1/models/')) return 'GET /v1/models/{id}';
  return 'other';
}

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The path of a request target; a target WHATWG URL cannot parse is the client's error. */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'http://router').pathname;
  } catch {
    throw new InvalidRequestError('the request target is not a valid URL', null);
  }
}

/** A path segment with its percent-escapes decoded; a malformed escape is the client's error. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidRequestError('the path has a malformed percent-escape', null);
  }
}

class BodyTooLargeError extends InvalidRequestError {}

async function readJson(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        // Stop reading (the answer closes the connection: the rest is never parsed as a request).
        request.off('data', onData);
        request.pause();
        reject(new BodyTooLargeError(`the request body exceeds ${maxBytes} bytes`, null));
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
    // A client that hangs up mid-body: nothing more will come.
    request.once('close', () => {
      if (!request.complete) reject(new CancelledError('the client disconnected while sending the body'));
    });
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequestError(
      'We could not parse the JSON body of your request. The body must be valid JSON.',
      null,
    );
  }
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function sinkFor(response: ServerResponse): ResponseSink & { readonly started: boolean } {
  let started = false;
  return {
    get started() {
      return started;
    },
    json(body) {
      started = true;
      sendJson(response, 200, body);
    },
    event(data) {
      if (!started) {
        started = true;
        response.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        response.flushHeaders();
      }
      response.write(data);
    },
    end() {
      if (!response.writableEnded) response.end();
    },
    whenWritable() {
      if (!response.writableNeedDrain || response.destroyed) return null;
      return new Promise<void>((resolve) => {
        const done = (): void => {
          response.off('drain', done);
          response.off('close', done);
          resolve();
        };
        response.on('drain', done);
        response.on('close', done);
      });
    },
  };
}

/**
 * Malformed HTTP (a bad request line or header, headers too large) or a client too slow to send
 * its request never reaches a handler: node answers it here, in OpenAI's error shape too, and
 * closes the connection.
 */
function answerClientError(error: Error, socket: Duplex): void {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ECONNRESET' && socket.writable) {
    const [status, reason, message] =
      code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ([408, 'request_timeout', 'the request did not arrive in time'] as const)
        : code === 'HPE_HEADER_OVERFLOW'
          ? ([431, 'headers_too_large', 'the request headers are too large'] as const)
          : ([400, 'malformed_http', 'the request is not valid HTTP/1.1'] as const);
    const body = JSON.stringify({
      error: { message, type: 'invalid_request_error', param: null, code: reason satisfies ErrorReason },
    });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  socket.destroy();
}

/** The key a request presents, checked against `table`; 401 without a known one. */
function authenticate(request: IncomingMessage, table: ApiKeyTable): ApiKeyPolicy {
  const key = bearerKey(request.headers.authorization);
  if (key === null) {
    throw new InvalidApiKeyError(
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    );
  }
  const policy = table.lookup(key);
  if (policy === null) throw new InvalidApiKeyError('Incorrect API key provided.');
  return policy;
}

export class RouterHttpServer {
  readonly #params: HttpServerParams;
  readonly #server: Server;

  constructor(params: HttpServerParams) {
    this.#params = params;
    this.#server = createServer(
      // Timeouts are checked this often (node's default is every 30 s).
      { connectionsCheckingInterval: Math.min(1000, Math.max(100, params.bodyTimeoutMs / 4)) },
      (request, response) => {
        const method = request.method ?? 'GET';
        const path = (request.url ?? '/').split('?')[0] ?? '/';
        const route = metricRoute(`${method} ${path}`);
        const trace = startHttpSpan(route === 'other' ? method : route, request.headers, {
          'http.request.method': method,
          'url.path': path,
        });
        response.once('close', () => endHttpSpan(trace.span, response.statusCode));
        withContext(trace.context, () => void this.#handle(request, response));
      },
    );
    // A client that trickles its headers or body holds a connection and a buffer: cut it off.
    this.#server.headersTimeout = Math.min(params.bodyTimeoutMs, 60_000);
    this.#server.requestTimeout = params.bodyTimeoutMs;
    // An idle keep-alive connection must close before the headers deadline could fire on it (node
    // would answer its next request with a 408).
    this.#server.keepAliveTimeout = Math.min(65_000, Math.max(500, this.#server.headersTimeout - 1000));
    this.#server.on('clientError', (error, socket) => answerClientError(error, socket));
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      setTimeout(() => {
        this.#server.closeAllConnections();
        resolve();
      }, 2000).unref();
    });
  }

  /** /metrics, /debug and /debug/* as --admin-access says: open, an admin key, or not there at all. */
  #checkAdmin(request: IncomingMessage): void {
    const { adminAccess, adminKeys } = this.#params;
    if (adminAccess === 'off') throw new RouteNotFoundError('no such route');
    if (adminAccess === 'key') authenticate(request, adminKeys);
  }

  /** The routing records of a request another process of the group served, or null. */
  async #peerRecords(requestId: string): Promise<unknown[] | null> {
    const peers = this.#params.peers ?? null;
    if (peers === null) return null;
    const answers = await peers.gather({ kind: 'routing', requestId });
    return (answers.find((answer) => Array.isArray(answer)) as unknown[] | undefined) ?? null;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const headerId = request.headers['x-request-id'];
    const requestId =
      typeof headerId === 'string' && requestIdPattern.test(headerId)
        ? headerId
        : randomUUID().replaceAll('-', '');
    response.setHeader('x-request-id', requestId);
    let pathname = '/';
    let route = `${request.method ?? 'GET'} ?`;
    const { metrics, logger } = this.#params;
    const sink = sinkFor(response);
    const controller = new AbortController();
    const timeout = setTimeout(
      () =>
        controller.abort(
          new TimeoutError(`the request exceeded its ${this.#params.requestTimeoutMs} ms deadline`),
        ),
      this.#params.requestTimeoutMs,
    );
    timeout.unref();
    response.on('close', () => {
      if (!response.writableFinished) controller.abort(new CancelledError('the client disconnected'));
    });
    let status = 200;
    let code = '';
    try {
      pathname = pathOf(request.url);
      route = `${request.method ?? 'GET'} ${pathname}`;
      const routingKey = request.headers['x-routing-key'] ?? request.headers['x-session-id'];
      // Keys first: an unauthenticated client never gets its body read.
      const apiKeys = this.#params.apiKeys;
      const apiKey = pathname.startsWith('/v1/') && apiKeys !== null ? authenticate(request, apiKeys) : null;
      if (pathname === '/metrics' || pathname === '/debug' || pathname.startsWith('/debug/'))
        this.#checkAdmin(request);
      const context: RequestContext = {
        requestId,
        routingKey: typeof routingKey === 'string' ? routingKey : null,
        priority: priorityOf(request.headers['x-priority']),
        signal: controller.signal,
        apiKey,
      };
      switch (route) {
        case 'POST /v1/chat/completions':
          await this.#params.service.chat(await readJson(request, this.#params.maxBodyBytes), context, sink);
          break;
        case 'POST /v1/completions':
          await this.#params.service.completion(
            await readJson(request, this.#params.maxBodyBytes),
            context,
            sink,
          );
          break;
        case 'GET /v1/models':
          sendJson(response, 200, {
            object: 'list',
            data: this.#params.service
              .listModels()
              .map((model) => ({ ...model, object: 'model', owned_by: 'tandem' })),
          });
          break;
        case 'GET /health':
        case 'GET /healthz': {
          const ready = this.#params.isReady();
          status = ready ? 200 : 503;
          sendJson(response, status, { status: ready ? 'ok' : 'no_workers' });
          break;
        }
        case 'GET /metrics': {
          const peers = this.#params.peers ?? null;
          // A group answers for all its processes, whichever one took the scrape.
          const text =
            peers === null
              ? metrics.render()
              : mergeExpositions((await peers.gather({ kind: 'metrics' })).map(String));
          response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          response.end(text);
          break;
        }
        case 'GET /debug':
          sendJson(response, 200, this.#params.debug());
          break;
        case 'GET /debug/targets':
          sendJson(response, 200, prometheusTargets(this.#params.debug()));
          break;
        default:
          if (request.method === 'GET' && pathname.startsWith('/debug/routing/')) {
            const id = decodeSegment(pathname.slice('/debug/routing/'.length));
            const records = this.#params.decisions.get(id) ?? (await this.#peerRecords(id));
            if (records === null) throw new RouteNotFoundError(`no routing record for request '${id}'`);
            sendJson(response, 200, { request_id: id, decisions: records });
          } else if (request.method === 'GET' && pathname.startsWith('/v1/models/')) {
            const id = decodeSegment(pathname.slice('/v1/models/'.length));
            const model = this.#params.service.describeModel(id);
            if (model === null) throw new ModelNotFoundError(`The model \`${id}\` does not exist`, 'model');
            sendJson(response, 200, { ...model, object: 'model', owned_by: 'tandem' });
          } else {
            throw new RouteNotFoundError(`no route ${route}`);
          }
      }
    } catch (error) {
      const rendered = renderError(
        controller.signal.aborted && !(error instanceof InvalidRequestError)
          ? (controller.signal.reason ?? error)
          : error,
      );
      status = rendered.status;
      code = rendered.body.error.code ?? '';
      const clientGone = response.destroyed || controller.signal.reason instanceof CancelledError;
      if (rendered.status >= 500 && !clientGone) logger.warn('request failed', { requestId, route, error });
      if (clientGone) {
        status = 499;
        code = 'cancelled';
      } else if (sink.started) {
        // The stream is open (status 200 sent): the error travels as an event, as OpenAI does. The
        // client got a 200; the failure is counted on its own.
        status = 200;
        metrics.streamErrors.inc({ code: rendered.body.error.code ?? 'unknown' });
        sink.event(`data: ${JSON.stringify(rendered.body)}\n\n`);
        sink.end();
      } else {
        const headers: Record<string, string> = {};
        if (rendered.retryAfterS !== null) headers['retry-after'] = String(rendered.retryAfterS);
        // A body left unread (too large) must not be parsed as the connection's next request.
        if (!request.complete) headers.connection = 'close';
        sendJson(response, rendered.status, rendered.body, headers);
      }
    } finally {
      clearTimeout(timeout);
      metrics.requests.inc({ route: metricRoute(route), status: String(status), code });
      if (status === 429) metrics.rejected.inc();
    }
  }
}
