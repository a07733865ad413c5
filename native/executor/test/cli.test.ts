// The `tandem` command as users and checks call it: one JSON line on stdout, exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { loadDemo, loadFixtures, repoRoot } from './helpers.ts';

const bin = `${repoRoot}services/cli/bin/tandem`;

function tandem(args: string[]) {
  return spawnSync(bin, args, { encoding: 'utf8', cwd: repoRoot, timeout: 60_000 });
}

test('generate --json prints exactly the golden greedy ids', () => {
  const fixture = loadFixtures()[0];
  const c = fixture?.cases[2];
  assert.ok(fixture && c);
  const args = ['--model', fixture.dir, '--prompt-ids', c.prompt_ids.join(','), '--max-tokens', '24'];
  const r = tandem(['generate', ...args, '--temperature', '0', '--ignore-eos', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${JSON.stringify({ token_ids: c.greedy_ids })}\n`);
});

test('generate on the demo model reproduces its 48 golden tokens, with logprobs', () => {
  const demo = loadDemo();
  const c = demo.cases[0];
  assert.ok(c);
  const r = tandem([
    'generate',
    '--model',
    demo.dir,
    '--prompt-ids',
    c.prompt_ids.join(','),
    '--max-tokens',
    '48',
    '--temperature',
    '0',
    '--ignore-eos',
    '--logprobs',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0] ?? '') as { token_ids: number[]; logprobs: number[] };
  assert.deepEqual(parsed.token_ids, c.greedy_ids);
  assert.equal(parsed.logprobs.length, 48);
  assert.ok(parsed.logprobs.every((l) => l <= 0));
});

test('generate stops at EOS unless --ignore-eos', () => {
  const fixture = loadFixtures()[0];
  assert.ok(fixture);
  // Find a case whose greedy continuation contains EOS (id 2) and check the cut.
  const c = fixture.cases.find((k) => k.greedy_ids.includes(2));
  assert.ok(c, 'tiny-llama has a case whose greedy continuation holds EOS');
  const prompt = c.prompt_ids;
  const r = tandem([
    'generate',
    '--model',
    fixture.dir,
    '--prompt-ids',
    prompt.join(','),
    '--max-tokens',
    '24',
    '--temperature',
    '0',
    '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const ids = (JSON.parse(r.stdout) as { token_ids: number[] }).token_ids;
  assert.deepEqual(ids, c.greedy_ids.slice(0, c.greedy_ids.indexOf(2) + 1));
});

test('seeded sampling from the command line is reproducible', () => {
  const fixture = loadFixtures()[3];
  assert.ok(fixture);
  const args = [
    'generate',
    '--model',
    fixture.dir,
    '--prompt-ids',
    '5,9,13',
    '--max-tokens',
    '16',
    '--seed',
    '11',
    '--top-k',
    '50',
    '--top-p',
    '0.95',
    '--json',
  ];
  const a = tandem(args);
  const b = tandem(args);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
});

test('score --json prints log p(ids[i+1] | ids[0..i]) matching the golden', () => {
  const fixture = loadFixtures()[4];
  const c = fixture?.cases[3];
  assert.ok(fixture && c?.sequence_logprobs);
  const ids = [...c.prompt_ids, ...c.greedy_ids];
  const r = tandem(['score', '--model', fixture.dir, '--ids', ids.join(','), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const { logprobs } = JSON.parse(r.stdout) as { logprobs: number[] };
  assert.equal(logprobs.length, ids.length - 1);
  logprobs.forEach((l, i) => {
    assert.ok(Math.abs(l - (c.sequence_logprobs?.[i] ?? 0)) < 1e-4, `entry ${i}`);
  });
});

test('bad arguments: a message on stderr and exit 2', () => {
  for (const args of [
    ['generate', '--prompt-ids', '1,2'],
    ['generate', '--model', 'x', '--prompt-ids', '1,a'],
    ['generate', '--model', 'x', '--prompt-ids', '1', '--temperature', 'hot'],
    ['generate', '--model', 'x', '--prompt-ids', '1', '--bogus'],
    ['score', '--model', 'x', '--ids', '1'],
  ]) {
    const r = tandem(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /tandem (generate|score): /);
  }
});

test('a broken model directory: a named error on stderr and exit 1', () => {
  const r = tandem(['generate', '--model', `${repoRoot}does-not-exist`, '--prompt-ids', '1', '--json']);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /ModelConfigError: .*config\.json/);
});
