// OpenTelemetry traces, configured by the standard OTEL_* variables and off unless they ask for
// it: with no OTLP endpoint and no OTEL_TRACES_EXPORTER the SDK is never even loaded, the API's
// tracer stays a no-op and the helpers below skip span work entirely (one boolean check).
//
// On: OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or
// OTEL_TRACES_EXPORTER names an exporter (otlp, console); OTEL_SDK_DISABLED=true wins. The rest
// (protocol, headers, sampler, batch delays, resource attributes, OTEL_SERVICE_NAME) is the SDK's.
import {
  type Attributes,
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TimeInput,
  trace,
} from '@opentelemetry/api';
import type { Logger } from '../logger.ts';

export { type Context, context, type Span, SpanKind, SpanStatusCode, trace };

/** tandem's tracer (a proxy: a no-op until the SDK registers a provider). */
export const tracer = trace.getTracer('tandem');

let enabled = false;

/** Whether spans are recorded in this process (startTracing found an exporter configured). */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Whether the environment asks for traces (see the file comment). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (exporters.length > 0) return exporters.some((name) => name !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts the OpenTelemetry SDK when the environment asks for traces; returns the shutdown that
 * flushes what is buffered (call it before the process exits). `serviceName` is the default for
 * OTEL_SERVICE_NAME.
 */
export async function startTracing(serviceName: string, logger: Logger): Promise<() => Promise<void>> {
  if (enabled || !tracingConfigured()) return async () => {};
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME || serviceName,
    // Traces only: no OpenTelemetry metrics (Prometheus has them) or log export.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  enabled = true;
  logger.info('tracing on', {
    serviceName: process.env.OTEL_SERVICE_NAME || serviceName,
    endpoint:
      process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? null,
  });
  return async () => {
    enabled = false;
    try {
      await sdk.shutdown();
    } catch (error) {
      logger.warn('trace export at shutdown failed', { error });
    }
  };
}

/** A span that records nothing: what the helpers return while tracing is off. */
const offSpan = trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 });

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  startTime?: TimeInput;
  /** Parent context (default: the active one). */
  parent?: Context;
}

/** Starts a span (a shared no-op span while tracing is off). */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  if (!enabled) return offSpan;
  return tracer.startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
      ...(options.startTime === undefined ? {} : { startTime: options.startTime }),
    },
    options.parent ?? context.active(),
  );
}

/** The context with `span` as the parent of what starts in it. */
export function contextWithSpan(span: Span, parent: Context = context.active()): Context {
  return enabled ? trace.setSpan(parent, span) : parent;
}

/** Ends `span`, marking it failed (with the error recorded) when `error` is not null. */
export function endSpan(span: Span, error: unknown = null, endTime?: TimeInput): void {
  if (!enabled) return;
  if (error !== null) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end(endTime);
}

/** The active span, to add attributes to (a no-op span while tracing is off). */
export function activeSpan(): Span {
  if (!enabled) return offSpan;
  return trace.getActiveSpan() ?? offSpan;
}

/** W3C trace context (traceparent, tracestate) of `ctx` as string headers. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const headers: Record<string, string> = {};
  if (enabled) propagation.inject(ctx, headers);
  return headers;
}

/** The context a request's W3C headers carry (the active one when tracing is off or none). */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  if (!enabled) return context.active();
  return propagation.extract(context.active(), headers, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => {
      const value = carrier[key];
      return Array.isArray(value) ? value[0] : value;
    },
  });
}

/** Runs `fn` with `ctx` active (directly while tracing is off). */
export function withContext<T>(ctx: Context, fn: () => T): T {
  return enabled ? context.with(ctx, fn) : fn();
}
