import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ConfigError,
  errorCodeMappings,
  errorCodes,
  errorFromWire,
  errorReasons,
  grpc,
  InvalidArgumentError,
  ResourceExhaustedError,
  TandemError,
  toTandemError,
  UnavailableError,
} from '@tandem/common';

test('every code maps to a distinct gRPC status and to an HTTP status and OpenAI type', () => {
  const statuses = new Set(errorCodes.map((code) => errorCodeMappings[code].grpcStatus));
  assert.equal(statuses.size, errorCodes.length);
  assert.equal(errorCodeMappings.invalid_argument.grpcStatus, grpc.status.INVALID_ARGUMENT);
  assert.equal(errorCodeMappings.resource_exhausted.httpStatus, 429);
  assert.equal(errorCodeMappings.not_found.openAiType, 'not_found_error');
});

test('errors carry name, code, param and cause', () => {
  const cause = new Error('root');
  const error = new InvalidArgumentError('temperature must be >= 0', { param: 'temperature', cause });
  assert.equal(error.name, 'InvalidArgumentError');
  assert.equal(error.code, 'invalid_argument');
  assert.equal(error.param, 'temperature');
  assert.equal(error.cause, cause);
  assert.equal(error.httpStatus, 400);
  assert.equal(new ResourceExhaustedError('queue full', { retryAfterMs: 1000 }).retryAfterMs, 1000);
  for (const code of errorCodes) {
    const rebuilt = errorFromWire(code, null, 'x');
    assert.ok(rebuilt instanceof TandemError);
    assert.equal(rebuilt.code, code);
    assert.equal(rebuilt.reason, code);
  }
  const wrapped = toTandemError(new RangeError('boom'));
  assert.equal(wrapped.code, 'internal');
  assert.equal(wrapped.message, 'boom');
});

test('every reason is snake_case and belongs to one status class; the wire keeps it', () => {
  for (const [reason, code] of Object.entries(errorReasons)) {
    assert.match(reason, /^[a-z][a-z0-9_]*$/, reason);
    assert.ok(errorCodes.includes(code), `${reason} -> ${code}`);
  }
  const oom = errorFromWire('unavailable', 'out_of_memory', 'CUDA out of memory');
  assert.ok(oom instanceof UnavailableError);
  assert.equal(oom.reason, 'out_of_memory');
  assert.equal(oom.httpStatus, 503);
  // A reason of another class is not believed: the class's own reason stands.
  assert.equal(errorFromWire('internal', 'out_of_memory', 'x').reason, 'internal');
  assert.equal(new ConfigError('--port must be an integer').reason, 'bad_config');
  assert.ok(new ConfigError('x') instanceof InvalidArgumentError);
});
