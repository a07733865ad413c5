// The images' Dockerfiles pass the project's Dockerfile rules, and each rule catches what it is
// for (deploy/images/lint-dockerfiles.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lintDockerfile, lintDockerignore } from '../../deploy/images/lint-dockerfiles.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('deploy/images/Dockerfile.* and the .dockerignore pass', () => {
  const run = spawnSync(process.execPath, [join(repoRoot, 'deploy', 'images', 'lint-dockerfiles.ts')], {
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /3 Dockerfiles, 0 findings/);
});

const good = `FROM node:24.21.0-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
RUN sed -i "s/-march=native/-march=x86-64-v3/" CMakeLists.txt \\
 && cmake-js compile --CDTANDEM_MARCH=x86-64-v3
FROM nvidia/cuda@sha256:${'a'.repeat(64)} AS runtime
COPY --from=build /app /app
USER 10001:10001
`;

function rules(text: string): string[] {
  return lintDockerfile('Dockerfile.test', text).map((f) => f.rule);
}

test('a Dockerfile that keeps every rule has no finding', () => {
  assert.deepEqual(rules(good), []);
});

test('each rule fires on what it forbids', () => {
  assert.deepEqual(rules(good.replace('node:24.21.0-bookworm-slim', 'node:24')), ['pinned-base']);
  assert.deepEqual(rules(good.replace('node:24.21.0-bookworm-slim', 'node:latest')), ['pinned-base']);
  assert.deepEqual(rules(good.replace('node:24.21.0-bookworm-slim', 'node')), ['pinned-base']);
  assert.deepEqual(rules('FROM node:24.21.0\nUSER 1000\n'), ['multi-stage']);
  assert.deepEqual(rules(good.replace('USER 10001:10001\n', '')), ['non-root']);
  assert.deepEqual(rules(good.replace('USER 10001:10001', 'USER root')), ['non-root']);
  // A USER in the build stage does not count for the shipped one.
  assert.deepEqual(rules(`FROM a:1.0 AS b\nUSER 10001\nFROM c:2.0\n`), ['non-root']);
  assert.deepEqual(rules(good.replace('--CDTANDEM_MARCH=x86-64-v3', 'CXXFLAGS=-march=native')), [
    'no-march-native',
  ]);
  assert.deepEqual(rules(good.replace('--CDTANDEM_MARCH=x86-64-v3', '--CDTANDEM_MARCH=native')), [
    'no-march-native',
  ]);
  assert.deepEqual(rules(`${good}ARG TANDEM_MARCH=native\n`), ['no-march-native']);
  assert.deepEqual(rules(good.replace(' --no-install-recommends', '')), ['apt-hygiene']);
  assert.deepEqual(rules(good.replace(' && rm -rf /var/lib/apt/lists/*', '')), ['apt-hygiene']);
});

test('the .dockerignore must exclude .git, node_modules and build outputs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-dockerignore-'));
  assert.deepEqual(
    lintDockerignore(dir).map((f) => f.rule),
    ['dockerignore'],
  );
  writeFileSync(join(dir, '.dockerignore'), '.git\n**/node_modules\n');
  assert.deepEqual(
    lintDockerignore(dir).map((f) => f.message),
    ['.dockerignore does not exclude build'],
  );
  assert.deepEqual(lintDockerignore(repoRoot), []);
});
