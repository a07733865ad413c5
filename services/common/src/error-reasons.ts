// THE error map of the cluster: every failure any package reports has a reason here, and each
// reason belongs to one status class (ErrorCode). The class decides the gRPC status a worker
// returns and the HTTP status and OpenAI error type the router returns; the reason is what the
// client sees as OpenAI's `code` and what crosses gRPC in the `tandem-error-reason` trailer, so
// an executor's out-of-memory reaches the client as `out_of_memory`, not as an internal error.
// One casing (snake_case), one place: add a reason here before throwing it anywhere.

/** The status classes (gRPC's canonical codes, in snake_case). */
export type ErrorCode =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'unauthenticated'
  | 'permission_denied'
  | 'unimplemented'
  | 'internal';

export const errorReasons = {
  // The status classes themselves: a failure with no more specific reason.
  invalid_argument: 'invalid_argument',
  not_found: 'not_found',
  already_exists: 'already_exists',
  failed_precondition: 'failed_precondition',
  resource_exhausted: 'resource_exhausted',
  unavailable: 'unavailable',
  deadline_exceeded: 'deadline_exceeded',
  cancelled: 'cancelled',
  unauthenticated: 'unauthenticated',
  permission_denied: 'permission_denied',
  unimplemented: 'unimplemented',
  internal: 'internal',

  // @tandem/common: configuration and the processes it starts.
  bad_config: 'invalid_argument', // a flag or environment variable is missing or malformed
  dependency_missing: 'failed_precondition', // a program or package to install
  process_exited: 'internal', // a child that should keep running exited

  // @tandem/common: cluster security.
  cluster_token_invalid: 'unauthenticated', // a gRPC call without the token of the cluster secret

  // @tandem/router: the OpenAI surface and routing.
  invalid_value: 'invalid_argument', // a request field has a bad type or value
  malformed_http: 'invalid_argument', // not HTTP/1.1 (answered 400 before any handler)
  headers_too_large: 'invalid_argument', // answered 431 before any handler
  request_timeout: 'invalid_argument', // headers and body did not arrive within --body-timeout-ms (408)
  unsupported_parameter: 'invalid_argument', // a real OpenAI feature tandem does not implement
  context_length_exceeded: 'invalid_argument',
  model_not_found: 'not_found',
  route_not_found: 'not_found',
  rate_limit_exceeded: 'resource_exhausted', // the admission queue is full, or an API key is over a limit
  invalid_api_key: 'unauthenticated', // no Authorization: Bearer key, or an unknown one
  no_workers: 'unavailable',
  queue_timeout: 'unavailable', // waited in the admission queue past --queue-timeout-ms
  port_in_use: 'failed_precondition',
  worker_failed: 'internal', // a worker broke off a request for no reason it named
  first_byte_timeout: 'deadline_exceeded', // a worker sent no first token in time (the router tried elsewhere)
  request_not_encodable: 'internal', // the router could not encode a Generate call (its own bug, never a worker's fault)

  // @tandem/tokenizer
  tokenizer_load_failed: 'failed_precondition',
  chat_template_failed: 'invalid_argument', // the template rejected these messages
  chat_template_unusable: 'failed_precondition', // none in the checkpoint, or it does not parse

  // @tandem/structured: constrained decoding (each a 400 naming the field at fault).
  invalid_json_schema: 'invalid_argument', // a malformed schema or keyword value
  unsupported_json_schema: 'invalid_argument', // a keyword the constrained decoder does not generate for
  invalid_regex: 'invalid_argument',
  invalid_grammar: 'invalid_argument',
  invalid_choice: 'invalid_argument',
  unsatisfiable_constraint: 'invalid_argument', // no output (in this vocabulary) can satisfy it
  constraint_too_large: 'invalid_argument',
  constraint_violated: 'internal', // a sampled token the constraint did not allow (a bug)

  // @tandem/runtime: the engine and its scheduler.
  invalid_generate_request: 'invalid_argument',
  invalid_scheduler_options: 'invalid_argument',
  out_of_pages: 'resource_exhausted',
  duplicate_request: 'already_exists',
  engine_closed: 'unavailable',

  // @tandem/executor: the native model runner.
  model_config_invalid: 'failed_precondition', // config.json missing, malformed or unsupported
  checkpoint_invalid: 'failed_precondition', // safetensors missing, truncated, wrong shapes
  invalid_batch: 'invalid_argument', // a forward batch that cannot be computed
  device_failed: 'unavailable', // the GPU failed or does not exist
  out_of_memory: 'unavailable', // host or device memory ran out: another worker may have room
  executor_closed: 'unavailable',
  addon_missing: 'failed_precondition', // the native addon is not built
  executor_internal: 'internal',

  // @tandem/kvtransfer: KV pages between workers.
  kv_connect_failed: 'unavailable',
  kv_handshake_mismatch: 'failed_precondition', // model, layers, heads, dtype or page size differ
  kv_protocol: 'internal',
  kv_timeout: 'deadline_exceeded',
  kv_peer_closed: 'unavailable',
  kv_out_of_bounds: 'invalid_argument',
  kv_aborted: 'cancelled',
  kv_closed: 'unavailable',
  kv_commit_mismatch: 'internal',
  kv_io: 'unavailable',
  kv_addon_missing: 'failed_precondition',
  kv_device: 'internal', // a CUDA, NCCL or verbs call failed (the message names it)
  kv_transport_unavailable: 'failed_precondition', // the transport asked for cannot join these two pools

  // @tandem/worker, @tandem/prefill, @tandem/decode
  worker_draining: 'unavailable', // SIGTERM: takes no new requests
  prefill_cancelled: 'cancelled',
  prefill_lease_expired: 'deadline_exceeded',
  prefill_destination_failed: 'unavailable', // the decode worker's pages could not be written
  prefill_not_completed: 'unavailable',
  prefill_destination_unknown: 'permission_denied', // a Prefill call names a KV receiver no decode worker announced
  prefill_stalled: 'deadline_exceeded', // a prefill worker landed no KV and did not answer a health check

  // @tandem/bench
  bench_config: 'invalid_argument',
  bench_result_file: 'failed_precondition',
  bench_http: 'unavailable',
  bench_stream: 'unavailable',
  bench_warmup: 'unavailable',
  bench_test_server: 'internal',
} as const satisfies Record<string, ErrorCode>;

export type ErrorReason = keyof typeof errorReasons;

/** The reasons of one status class (what a class's subclasses may report). */
export type ReasonOf<C extends ErrorCode> = {
  [R in ErrorReason]: (typeof errorReasons)[R] extends C ? R : never;
}[ErrorReason];

export function isErrorReason(value: string): value is ErrorReason {
  return Object.hasOwn(errorReasons, value);
}
