// Typed gRPC from protobuf-es service descriptors on @grpc/grpc-js: messages travel as protobuf
// binary (toBinary / fromBinary), errors as a gRPC status plus `tandem-error-*` trailers so the
// caller gets back the same TandemError class, and an AbortSignal cancels a call on either side.
import { once } from 'node:events';
import type { MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { create, type DescMessage, type DescService, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';
import {
  CancelledError,
  type ErrorCode,
  errorCodeMappings,
  errorCodes,
  errorFromWire,
  isErrorCode,
  isErrorReason,
  type TandemError,
  toTandemError,
  UnavailableError,
} from './errors.ts';
import { clientCallSpan, serverCallSpan, traceContextInterceptor } from './telemetry/grpc-tracing.ts';
import {
  type Context,
  endSpan,
  type Span,
  context as traceContexts,
  tracingEnabled,
  withContext,
} from './telemetry/tracing.ts';

function activeContext(): Context {
  return traceContexts.active();
}

export { grpc };

type Methods<S> = S extends GenService<infer M> ? M : never;
type Input<M> = M extends { input: infer I extends DescMessage } ? I : never;
type Output<M> = M extends { output: infer O extends DescMessage } ? O : never;

export interface CallOptions {
  /** Aborting cancels the call (the server sees a cancellation). */
  signal?: AbortSignal;
  /** Give up after this many milliseconds (DEADLINE_EXCEEDED). */
  timeoutMs?: number;
  metadata?: Record<string, string>;
}

/** A client method per RPC: unary ones return a promise, server-streaming ones an async iterable. */
export type GrpcClient<S extends GenService<GenServiceMethods>> = {
  [K in keyof Methods<S>]: Methods<S>[K] extends { methodKind: 'unary' }
    ? (
        request: MessageInitShape<Input<Methods<S>[K]>>,
        options?: CallOptions,
      ) => Promise<MessageShape<Output<Methods<S>[K]>>>
    : Methods<S>[K] extends { methodKind: 'server_streaming' }
      ? (
          request: MessageInitShape<Input<Methods<S>[K]>>,
          options?: CallOptions,
        ) => AsyncIterable<MessageShape<Output<Methods<S>[K]>>>
      : never;
} & { close(): void; readonly address: string };

export interface CallContext {
  /** Aborted when the client cancels, disconnects or its deadline passes. */
  signal: AbortSignal;
  metadata: grpc.Metadata;
  peer: string;
}

/** A handler per RPC. Throw a TandemError to fail the call with its code. */
export type GrpcServiceImpl<S extends GenService<GenServiceMethods>> = {
  [K in keyof Methods<S>]: Methods<S>[K] extends { methodKind: 'unary' }
    ? (
        request: MessageShape<Input<Methods<S>[K]>>,
        context: CallContext,
      ) => Promise<MessageInitShape<Output<Methods<S>[K]>>>
    : Methods<S>[K] extends { methodKind: 'server_streaming' }
      ? (
          request: MessageShape<Input<Methods<S>[K]>>,
          context: CallContext,
        ) => AsyncIterable<MessageInitShape<Output<Methods<S>[K]>>>
      : never;
};

/** The grpc-js service definition of a protobuf-es service (paths /package.Service/Method). */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: MessageShape<DescMessage>) =>
        Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  return definition;
}

const grpcStatusToCode = new Map<grpc.status, ErrorCode>(
  errorCodes.map((code) => [errorCodeMappings[code].grpcStatus, code] as const),
);

/** A TandemError as the status grpc-js sends (code, details, `tandem-error-*` trailers). */
export function toServiceError(error: unknown): Partial<grpc.StatusObject> & { code: grpc.status } {
  const tandemError = toTandemError(error);
  const metadata = new grpc.Metadata();
  metadata.set('tandem-error-code', tandemError.code);
  metadata.set('tandem-error-reason', tandemError.reason);
  metadata.set('tandem-error-name', tandemError.name);
  if (tandemError.param !== null) metadata.set('tandem-error-param', tandemError.param);
  return { code: tandemError.grpcStatus, details: tandemError.message, metadata };
}

/** The TandemError a failed call stands for (the server's class when it sent tandem trailers). */
export function fromServiceError(error: unknown, address: string): TandemError {
  const serviceError = error as Partial<grpc.ServiceError>;
  if (typeof serviceError.code !== 'number') return toTandemError(error);
  const sentCode = serviceError.metadata?.get('tandem-error-code')[0];
  const sentReason = serviceError.metadata?.get('tandem-error-reason')[0];
  const sentParam = serviceError.metadata?.get('tandem-error-param')[0];
  const details = serviceError.details ?? serviceError.message ?? 'unknown error';
  if (typeof sentCode === 'string' && isErrorCode(sentCode)) {
    const reason = typeof sentReason === 'string' && isErrorReason(sentReason) ? sentReason : null;
    return errorFromWire(sentCode, reason, details, {
      cause: error,
      param: typeof sentParam === 'string' ? sentParam : null,
    });
  }
  const code = grpcStatusToCode.get(serviceError.code) ?? 'internal';
  if (code === 'unavailable')
    return new UnavailableError(`worker at ${address}: ${details}`, { cause: error });
  return errorFromWire(code, null, `${address}: ${details}`, { cause: error });
}

export interface ClientOptions {
  /** grpc-js channel options (keepalive, message sizes). */
  channelOptions?: grpc.ChannelOptions;
  /** TLS (cluster-security.ts); default plaintext. */
  credentials?: grpc.ChannelCredentials;
  /** Cross-cutting concerns (request ids, tracing, auth) for every call of this client. */
  interceptors?: grpc.Interceptor[];
}

/** A typed client for `service` at host:port (plaintext unless `options.credentials` says TLS). */
export function createGrpcClient<S extends GenService<GenServiceMethods>>(
  service: S,
  address: string,
  options: ClientOptions = {},
): GrpcClient<S> {
  const client = new grpc.Client(address, options.credentials ?? grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    ...options.channelOptions,
    // W3C trace context into each call's metadata, when this process traces (set up at start).
    interceptors: [...(tracingEnabled() ? [traceContextInterceptor] : []), ...(options.interceptors ?? [])],
  });
  const methods: Record<string, unknown> = {
    close: () => client.close(),
    address,
  };
  for (const method of (service as DescService).methods) {
    const path = `/${(service as DescService).typeName}/${method.name}`;
    const serialize = (message: MessageShape<DescMessage>): Buffer =>
      Buffer.from(toBinary(method.input, message));
    const deserialize = (bytes: Buffer): MessageShape<DescMessage> => fromBinary(method.output, bytes);
    if (method.methodKind === 'unary') {
      methods[method.localName] = (request: MessageInitShape<DescMessage>, callOptions: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          if (callOptions.signal?.aborted) {
            reject(new CancelledError(`${method.name} cancelled before it started`));
            return;
          }
          const { span, ctx } = clientCallSpan(path, address);
          const call = withContext(ctx, () =>
            client.makeUnaryRequest(
              path,
              serialize,
              deserialize,
              create(method.input, request),
              toMetadata(callOptions.metadata),
              grpcCallOptions(callOptions),
              (error, response) => {
                callOptions.signal?.removeEventListener('abort', onAbort);
                if (error !== null || response === undefined) {
                  const failure = fromServiceError(error, address);
                  endSpan(span, failure);
                  reject(failure);
                } else {
                  endSpan(span);
                  resolve(response);
                }
              },
            ),
          );
          const onAbort = (): void => call.cancel();
          callOptions.signal?.addEventListener('abort', onAbort, { once: true });
        });
    } else if (method.methodKind === 'server_streaming') {
      methods[method.localName] = (request: MessageInitShape<DescMessage>, callOptions: CallOptions = {}) =>
        streamResponses(
          path,
          // The stream starts at the first read: its span's parent is the context of this call.
          activeContext(),
          () =>
            client.makeServerStreamRequest(
              path,
              serialize,
              deserialize,
              create(method.input, request),
              toMetadata(callOptions.metadata),
              grpcCallOptions(callOptions),
            ),
          callOptions.signal ?? null,
          address,
        );
    }
  }
  return methods as GrpcClient<S>;
}

async function* streamResponses(
  path: string,
  parent: Context,
  start: () => grpc.ClientReadableStream<MessageShape<DescMessage>>,
  signal: AbortSignal | null,
  address: string,
): AsyncGenerator<MessageShape<DescMessage>> {
  if (signal?.aborted) throw new CancelledError('stream cancelled before it started');
  const { span, ctx } = clientCallSpan(path, address, parent);
  const call = withContext(ctx, start);
  let ended = false;
  let failure: unknown = null;
  const onAbort = (): void => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const message of call) yield message as MessageShape<DescMessage>;
    ended = true;
  } catch (error) {
    ended = true;
    failure = fromServiceError(error, address);
    throw failure;
  } finally {
    endSpan(span, failure);
    signal?.removeEventListener('abort', onAbort);
    // The consumer stopped early (break / throw): tell the server.
    if (!ended) call.cancel();
  }
}

function toMetadata(values: Record<string, string> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values ?? {})) metadata.set(key, value);
  return metadata;
}

function grpcCallOptions(options: CallOptions): grpc.CallOptions {
  return options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
}

export interface ServiceOptions {
  /** Checked before every call: an error refuses the call (e.g. no valid cluster token). */
  authorize?: ((metadata: grpc.Metadata) => TandemError | null) | null;
}

/** Registers `impl` for `service` on a grpc-js server. */
export function addGrpcService<S extends GenService<GenServiceMethods>>(
  server: grpc.Server,
  service: S,
  impl: GrpcServiceImpl<S>,
  options: ServiceOptions = {},
): void {
  const authorize = options.authorize ?? null;
  const handlers: grpc.UntypedServiceImplementation = {};
  const handlerOf = impl as Record<string, (request: unknown, context: CallContext) => unknown>;
  for (const method of (service as DescService).methods) {
    const handler = handlerOf[method.localName];
    if (handler === undefined) continue;
    const path = `/${(service as DescService).typeName}/${method.name}`;
    if (method.methodKind === 'unary') {
      handlers[method.localName] = (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ): void => {
        const refusal = authorize?.(call.metadata) ?? null;
        if (refusal !== null) {
          callback(toServiceError(refusal));
          return;
        }
        const context = contextOf(call);
        const { span, ctx } = serverCallSpan(path, call.metadata);
        withContext(ctx, () => handler(call.request, context) as Promise<MessageInitShape<DescMessage>>).then(
          (response) => {
            endSpan(span);
            callback(null, create(method.output, response));
          },
          (error: unknown) => {
            endSpan(span, error);
            callback(toServiceError(error));
          },
        );
      };
    } else if (method.methodKind === 'server_streaming') {
      handlers[method.localName] = (call: grpc.ServerWritableStream<unknown, unknown>): void => {
        const refusal = authorize?.(call.metadata) ?? null;
        if (refusal !== null) {
          call.emit('error', toServiceError(refusal));
          return;
        }
        const { span, ctx } = serverCallSpan(path, call.metadata);
        withContext(ctx, () =>
          serveStream(
            call,
            handler(call.request, contextOf(call)) as AsyncIterable<unknown>,
            method.output,
            span,
          ),
        );
      };
    }
  }
  server.addService(serviceDefinition(service), handlers);
}

function contextOf(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
) {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new CancelledError('the client cancelled the call'));
  if (call.cancelled) abort();
  call.once('cancelled', abort);
  return { signal: controller.signal, metadata: call.metadata, peer: call.getPeer() } satisfies CallContext;
}

async function serveStream(
  call: grpc.ServerWritableStream<unknown, unknown>,
  responses: AsyncIterable<unknown>,
  output: DescMessage,
  span: Span,
): Promise<void> {
  let failure: unknown = null;
  try {
    for await (const response of responses) {
      if (call.cancelled) return;
      if (!call.write(create(output, response as MessageInitShape<DescMessage>))) {
        await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
      }
    }
    if (!call.cancelled) call.end();
  } catch (error) {
    failure = error;
    if (!call.cancelled) call.emit('error', toServiceError(error));
  } finally {
    endSpan(span, failure);
  }
}

/** Binds a server to host:port (port 0: any free one) and returns the bound port. */
export function bindGrpcServer(
  server: grpc.Server,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (error, boundPort) => {
      if (error !== null) reject(new UnavailableError(`cannot listen on ${host}:${port}`, { cause: error }));
      else resolve(boundPort);
    });
  });
}

/** Graceful shutdown, forced after graceMs. */
export function shutdownGrpcServer(server: grpc.Server, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
