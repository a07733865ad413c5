// W3C trace context across gRPC: a client interceptor writes the calling context's traceparent
// into the call's metadata; each call gets a CLIENT span on the caller's side and a SERVER span
// (a child of the caller's, from the metadata) around the handler on the callee's. All of it is a
// pass-through while tracing is off.
import type * as grpc from '@grpc/grpc-js';
import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import {
  type Context,
  contextFromHeaders,
  contextWithSpan,
  type Span,
  SpanKind,
  startSpan,
  traceHeaders,
  tracingEnabled,
} from './tracing.ts';

/** Adds traceparent / tracestate of the context the call starts in to its metadata. */
export const traceContextInterceptor: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      if (tracingEnabled())
        for (const [key, value] of Object.entries(traceHeaders())) metadata.set(key, value);
      next(metadata, listener);
    },
  });

/** `/pkg.Service/Method` -> rpc.* attributes (OpenTelemetry's RPC conventions). */
function rpcAttributes(path: string): Record<string, string> {
  const [, service = '', method = ''] = path.split('/');
  return { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method };
}

/**
 * The caller's span for one call to `path` at `address` (a child of `parent`, default the active
 * context), and the context the call starts in.
 */
export function clientCallSpan(
  path: string,
  address: string,
  parent?: Context,
): { span: Span; ctx: Context } {
  const span = startSpan(path.slice(1), {
    kind: SpanKind.CLIENT,
    attributes: { ...rpcAttributes(path), 'server.address': address },
    ...(parent === undefined ? {} : { parent }),
  });
  return { span, ctx: contextWithSpan(span, parent) };
}

/** The callee's span for a call whose metadata may carry the caller's trace context. */
export function serverCallSpan(path: string, metadata: grpc.Metadata): { span: Span; ctx: Context } {
  if (!tracingEnabled()) {
    const span = startSpan(path);
    return { span, ctx: contextWithSpan(span) };
  }
  const headers: Record<string, string> = {};
  for (const key of ['traceparent', 'tracestate']) {
    const value = metadata.get(key)[0];
    if (typeof value === 'string') headers[key] = value;
  }
  const parent = contextFromHeaders(headers);
  const span = startSpan(path.slice(1), { kind: SpanKind.SERVER, attributes: rpcAttributes(path), parent });
  return { span, ctx: contextWithSpan(span, parent) };
}
