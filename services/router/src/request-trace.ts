// What the router's spans say about a request (no-ops while tracing is off): GenAI semantic
// conventions on the HTTP span (operation, model, sampling, token usage), and one routing span
// per attempt whose attributes are the decision's terms; the worker call is its child.
import {
  activeSpan,
  type Context,
  contextFromHeaders,
  contextWithSpan,
  endSpan,
  type Span,
  SpanKind,
  startSpan,
  tracingEnabled,
} from '@tandem/common';
import type { ParsedRequest } from './openai/request.ts';
import type { PrefillDecision } from './policy/prefill-policy.ts';
import type { Decision } from './policy/types.ts';

/** The request's GenAI attributes, on the active (HTTP server) span. */
export function annotateRequest(request: ParsedRequest, responseId: string): void {
  if (!tracingEnabled()) return;
  const { options } = request;
  activeSpan().setAttributes({
    'gen_ai.operation.name': request.type === 'chat' ? 'chat' : 'text_completion',
    'gen_ai.provider.name': 'tandem',
    'gen_ai.request.model': request.model,
    'gen_ai.response.model': request.model,
    'gen_ai.response.id': responseId,
    'gen_ai.request.temperature': options.sampling.temperature,
    'gen_ai.request.top_p': options.sampling.topP,
    'gen_ai.request.choice.count': options.n,
    ...(options.maxTokens === null ? {} : { 'gen_ai.request.max_tokens': options.maxTokens }),
    ...(options.sampling.seed === null ? {} : { 'gen_ai.request.seed': options.sampling.seed }),
  });
}

/** Token usage of the whole response, on the active span. */
export function annotateUsage(usage: {
  numPromptTokens: number;
  numCompletionTokens: number;
  numCachedTokens: number;
}): void {
  if (!tracingEnabled()) return;
  activeSpan().setAttributes({
    'gen_ai.usage.input_tokens': usage.numPromptTokens,
    'gen_ai.usage.output_tokens': usage.numCompletionTokens,
    'tandem.usage.cached_tokens': usage.numCachedTokens,
  });
}

/** Candidates whose terms a routing span records: the chosen one and the next cheapest (span attribute limits). */
const maxTracedCandidates = 5;

/**
 * One routing attempt: the decision (policy, chosen worker, the cost terms of the chosen and the
 * cheapest other candidates) and the prefill choice.
 */
export function startRoutingSpan(
  decision: Decision,
  prefill: PrefillDecision | null,
  attempt: number,
): { span: Span; context: Context } {
  const span = startSpan('tandem.route');
  if (!tracingEnabled()) return { span, context: contextWithSpan(span) };
  const attributes: Record<string, string | number> = {
    'tandem.route.policy': decision.policy,
    'tandem.route.attempt': attempt,
    'tandem.route.worker': decision.workerId ?? '',
    'tandem.route.num_candidates': decision.candidates.length,
  };
  const traced = [...decision.candidates]
    .sort((a, b) =>
      a.workerId === decision.workerId
        ? -1
        : b.workerId === decision.workerId
          ? 1
          : (a.cost ?? Infinity) - (b.cost ?? Infinity),
    )
    .slice(0, maxTracedCandidates);
  for (const candidate of traced) {
    const prefix = `tandem.route.candidate.${candidate.workerId}`;
    if (candidate.cost !== null) attributes[`${prefix}.cost`] = candidate.cost;
    if (candidate.excluded !== null) attributes[`${prefix}.excluded`] = candidate.excluded;
    for (const [term, value] of Object.entries(candidate.terms)) attributes[`${prefix}.${term}`] = value;
  }
  if (prefill !== null) {
    attributes['tandem.prefill.type'] = prefill.type;
    if (prefill.type === 'remote') attributes['tandem.prefill.worker'] = prefill.workerId;
  }
  span.setAttributes(attributes);
  return { span, context: contextWithSpan(span) };
}

/** The router's HTTP server span for one request, a child of the client's W3C context when it sends one. */
export function startHttpSpan(
  name: string,
  headers: Record<string, string | string[] | undefined>,
  attributes: Record<string, string>,
): { span: Span; context: Context } {
  if (!tracingEnabled()) {
    const span = startSpan(name);
    return { span, context: contextWithSpan(span) };
  }
  const parent = contextFromHeaders(headers);
  const span = startSpan(name, { kind: SpanKind.SERVER, attributes, parent });
  return { span, context: contextWithSpan(span, parent) };
}

/** Ends the HTTP span with the response's status (5xx marks it failed). */
export function endHttpSpan(span: Span, status: number): void {
  if (!tracingEnabled()) return;
  span.setAttribute('http.response.status_code', status);
  endSpan(span, status >= 500 ? `HTTP ${status}` : null);
}
