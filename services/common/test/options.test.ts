// The configuration layer: flag > environment > default, every value checked, usage from the
// same declarations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, defineOptions } from '@tandem/common';

const options = defineOptions('demo', '[options]', {
  port: { type: 'int', default: 8000, min: 0, max: 65535, env: 'DEMO_PORT', doc: 'HTTP port' },
  ratio: { type: 'number', default: 0.2, min: 0, max: 1, doc: 'a ratio' },
  policy: { type: 'string', default: 'a', choices: ['a', 'b', 'c'], doc: 'which one' },
  redis: { type: 'string', default: null, env: 'DEMO_REDIS', valueName: 'URL', doc: 'where' },
  verbose: { type: 'boolean', default: false, env: 'DEMO_VERBOSE', doc: 'more' },
  'api-key': { type: 'list', env: 'DEMO_KEYS', doc: 'keys' },
});

test('defaults, then the environment, then flags', () => {
  const none = options.parse([], {});
  assert.deepEqual(
    { ...none },
    { help: false, port: 8000, ratio: 0.2, policy: 'a', redis: null, verbose: false, 'api-key': [] },
  );
  const env = { DEMO_PORT: '9000', DEMO_REDIS: 'redis://x', DEMO_VERBOSE: 'yes', DEMO_KEYS: 'k1, k2' };
  const fromEnv = options.parse([], env);
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.redis, 'redis://x');
  assert.equal(fromEnv.verbose, true);
  assert.deepEqual(fromEnv['api-key'], ['k1', 'k2']);
  const fromFlags = options.parse(['--port', '1', '--api-key', 'a', '--api-key', 'b', '--policy', 'c'], env);
  assert.equal(fromFlags.port, 1);
  assert.deepEqual(fromFlags['api-key'], ['a', 'b']);
  assert.equal(fromFlags.policy, 'c');
  assert.equal(options.parse(['-h'], {}).help, true);
});

test('a bad value is a ConfigError naming the flag or variable', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--port', '12abc'], {}, /--port must be an integer, got '12abc'/],
    [['--port', '70000'], {}, /--port must be <= 65535/],
    [['--ratio', '2'], {}, /--ratio must be <= 1/],
    [['--ratio', 'x'], {}, /--ratio must be a number/],
    [['--policy', 'd'], {}, /--policy must be a, b or c, got 'd'/],
    [[], { DEMO_PORT: '-1' }, /DEMO_PORT must be >= 0/],
    [[], { DEMO_VERBOSE: 'maybe' }, /DEMO_VERBOSE must be a boolean/],
    [['--nope'], {}, /Unknown option '--nope'/],
  ];
  for (const [argv, env, message] of cases) {
    assert.throws(
      () => options.parse(argv, env),
      (error) => error instanceof ConfigError && message.test(error.message),
      argv.join(' '),
    );
  }
});

test('the usage lists every option with its default and variable', () => {
  for (const name of ['port', 'ratio', 'policy', 'redis', 'verbose', 'api-key']) {
    assert.match(options.usage, new RegExp(`--${name}\\b`));
  }
  assert.match(options.usage, /--port N +HTTP port \[default 8000; \$DEMO_PORT\]/);
  assert.match(options.usage, /--policy a\|b\|c/);
});
