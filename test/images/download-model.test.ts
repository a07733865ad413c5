// The chart's model downloader against a local server that answers the hub's two calls (the
// tree listing and /resolve/) with the demo checkpoint's files: full download, a restart that
// keeps what is there, --include filters, the token, and refusals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { globToRegExp } from '../../deploy/images/download-model.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const modelDir = join(repoRoot, 'deploy', 'models', 'tandem-demo-code');
const script = join(repoRoot, 'deploy', 'images', 'download-model.ts');
const files = readdirSync(modelDir).sort();
let server: Server;
let endpoint = '';
const served: string[] = [];
let lieAboutSize = false;

before(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (request.headers.authorization !== 'Bearer secret') {
      response.writeHead(401).end('{"error":"gated"}');
      return;
    }
    if (
      url.pathname === '/api/models/tandem/demo-code/tree/main' &&
      url.searchParams.get('recursive') === 'true'
    ) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          files.map((f) => ({
            type: 'file',
            path: f,
            size: statSync(join(modelDir, f)).size + (lieAboutSize ? 1 : 0),
          })),
        ),
      );
      return;
    }
    const m = /^\/tandem\/demo-code\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (m !== null && files.includes(m[1] ?? '')) {
      served.push(m[1] ?? '');
      response.writeHead(200).end(readFileSync(join(modelDir, m[1] ?? '')));
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
});

/** Runs the script as its own process (asynchronously: the hub above runs in this one). */
function run(
  args: string[],
  token: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, HF_TOKEN: token } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

function download(dest: string, extra: string[] = [], token = 'secret') {
  return run(['--repo', 'tandem/demo-code', '--endpoint', endpoint, '--dest', dest, ...extra], token);
}

test('globs match a whole name, in any folder', () => {
  assert.ok(globToRegExp('*.json').test('config.json'));
  assert.ok(globToRegExp('*.json').test('sub/tokenizer.json'));
  assert.ok(!globToRegExp('*.json').test('model.safetensors'));
  assert.ok(globToRegExp('tokenizer*').test('tokenizer_config.json'));
});

test('downloads every file byte for byte, then keeps them on a restart', async () => {
  const dest = mkdtempSync(join(tmpdir(), 'tandem-download-'));
  const first = await download(dest);
  assert.equal(first.status, 0, first.stderr);
  for (const f of files) assert.deepEqual(readFileSync(join(dest, f)), readFileSync(join(modelDir, f)), f);
  assert.match(first.stdout, new RegExp(`${files.length} fetched, 0 already there`));
  served.length = 0;
  const second = await download(dest);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, new RegExp(`0 fetched, ${files.length} already there`));
  assert.deepEqual(served, []);
  // A truncated file (a crash mid-download of an older version) is fetched again.
  writeFileSync(join(dest, 'config.json'), '{');
  const third = await download(dest);
  assert.match(third.stdout, /1 fetched/);
  assert.deepEqual(readFileSync(join(dest, 'config.json')), readFileSync(join(modelDir, 'config.json')));
});

test('--include fetches only the tokenizer files (the router)', async () => {
  const dest = mkdtempSync(join(tmpdir(), 'tandem-download-'));
  const result = await download(dest, ['--include', '*.json', '--include', '*.txt']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(readdirSync(dest).sort(), files.filter((f) => f.endsWith('.json')).sort());
});

test('refusals: a gated repository without the token, a size the hub does not list, a bad flag', async () => {
  const dest = mkdtempSync(join(tmpdir(), 'tandem-download-'));
  const gated = await download(dest, [], 'wrong');
  assert.equal(gated.status, 1);
  assert.match(gated.stderr, /HTTP 401 \(a gated model needs HF_TOKEN\)/);
  lieAboutSize = true;
  try {
    const short = await download(dest, ['--include', 'config.json']);
    assert.equal(short.status, 1);
    assert.match(short.stderr, /config.json: got \d+ bytes, the hub lists \d+/);
    assert.deepEqual(readdirSync(dest), [], 'no partial file is left');
  } finally {
    lieAboutSize = false;
  }
  const bad = await run(['--repo', 'a/b', '--dest', dest, '--mirror', 'x'], 'secret');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /mirror/);
});
