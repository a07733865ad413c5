// The Prometheus rules of deploy/prometheus: `promtool check rules` accepts them and
// `promtool test rules` runs their unit tests (alerts fire, and stay quiet, where they should).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './router-cluster.ts';

const rulesDir = join(repoRoot, 'deploy', 'prometheus');

function promtool(args: string[]): string {
  try {
    return execFileSync('promtool', args, { cwd: rulesDir, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    assert.fail(`promtool ${args.join(' ')} failed:\n${stdout}${stderr}`);
  }
}

test('promtool check rules: the recording and alerting rules are valid', () => {
  assert.match(promtool(['check', 'rules', 'tandem.rules.yml']), /SUCCESS: \d+ rules found/);
});

test('promtool test rules: burn-rate, KV-exhaustion, flapping and no-worker alerts fire as specified', () => {
  assert.match(promtool(['test', 'rules', 'tests/tandem.rules.test.yml']), /SUCCESS/);
});
