import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  errorCodeMappings,
  errorCodes,
  errorFromCode,
  grpc,
  InvalidArgumentError,
  ResourceExhaustedError,
  TandemError,
  toTandemError,
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
    const rebuilt = errorFromCode(code, 'x');
    assert.ok(rebuilt instanceof TandemError);
    assert.equal(rebuilt.code, code);
  }
  const wrapped = toTandemError(new RangeError('boom'));
  assert.equal(wrapped.code, 'internal');
  assert.equal(wrapped.message, 'boom');
});
