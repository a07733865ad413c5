import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, hostPortOf, Logger, parseIntStrict } from '@tandem/common';

test('parseIntStrict accepts whole integers in range and names the input otherwise', () => {
  assert.equal(parseIntStrict(' 42 ', '--port'), 42);
  assert.throws(
    () => parseIntStrict('12abc', '--port'),
    (e: unknown) => e instanceof ConfigError && e.param === '--port',
  );
  assert.throws(() => parseIntStrict('70000', '--port', { max: 65535 }), ConfigError);
  assert.throws(() => parseIntStrict('-1', '--num-pages', { min: 1 }), ConfigError);
});

test('hostPortOf reads host and port, with a default port', () => {
  assert.deepEqual(hostPortOf('nats://10.0.0.1:4333', 4222), { host: '10.0.0.1', port: 4333 });
  assert.deepEqual(hostPortOf('redis://cache', 6379), { host: 'cache', port: 6379 });
  assert.throws(() => hostPortOf('not a url', 1), ConfigError);
});

test('the logger writes JSON lines at or above its level, with child fields', () => {
  const lines: string[] = [];
  const logger = new Logger({ level: 'info', write: (line) => lines.push(line) });
  logger.debug('hidden');
  logger.child({ requestId: 'r1' }).info('shown', { numTokens: 3, hash: 5n });
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(record.msg, 'shown');
  assert.equal(record.level, 'info');
  assert.equal(record.requestId, 'r1');
  assert.equal(record.numTokens, 3);
  assert.equal(record.hash, '5');
});
