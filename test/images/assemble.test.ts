// The images' file trees, assembled as their Dockerfiles do (deploy/images/assemble.sh), hold
// what ships and nothing else, and run: a router and a CPU worker started from the trees (not
// from the checkout) serve a completion through NATS and Redis.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  startNatsServer,
  startRedisServer,
  type TestNatsServer,
  type TestRedisServer,
} from '@tandem/common/testing';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const assemble = join(repoRoot, 'deploy', 'images', 'assemble.sh');
const work = mkdtempSync(join(tmpdir(), 'tandem-images-'));
const routerTree = join(work, 'router');
const workerTree = join(work, 'worker-cpu');
const children: ChildProcess[] = [];
let nats: TestNatsServer;
let redis: TestRedisServer;

before(async () => {
  for (const [variant, out] of [
    ['router', routerTree],
    ['worker-cpu', workerTree],
  ] as const) {
    execFileSync(assemble, [variant, out], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  }
  nats = await startNatsServer();
  redis = await startRedisServer();
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await nats?.[Symbol.asyncDispose]();
  await redis?.[Symbol.asyncDispose]();
  rmSync(work, { recursive: true, force: true });
});

/** Every file under `dir` (relative paths), node_modules' packages by name only. */
function packagesIn(tree: string): string[] {
  return readdirSync(join(tree, 'node_modules', '.pnpm'));
}

test('the trees hold production code only: no tests, no dev tools, addons only for workers', () => {
  for (const tree of [routerTree, workerTree]) {
    const packages = packagesIn(tree).join(' ');
    for (const dev of ['typescript@', '@biomejs', 'cmake-js@', 'openai@', 'kubernetes-models@', '@aws-cdk']) {
      assert.ok(!packages.includes(dev), `${dev} is not shipped (${tree})`);
    }
    assert.ok(packages.includes('@grpc+grpc-js@'), 'runtime dependencies are there');
    const tests = execFileSync('find', [tree, '-name', '*.test.ts', '-not', '-path', '*/node_modules/*'], {
      encoding: 'utf8',
    });
    assert.equal(tests.trim(), '', 'no test files');
    assert.ok(existsSync(join(tree, 'deploy', 'models', 'tandem-demo-code', 'model.safetensors')));
    assert.ok(existsSync(join(tree, 'deploy', 'images', 'download-model.ts')));
    assert.ok(existsSync(join(tree, 'deploy', 'images', 'worker-ready.ts')));
  }
  assert.ok(!existsSync(join(routerTree, 'native', 'executor', 'build')), 'the router ships no addon');
  assert.ok(existsSync(join(workerTree, 'native', 'executor', 'build', 'Release', 'tandem_executor.node')));
  assert.ok(existsSync(join(workerTree, 'native', 'kvtransfer', 'build', 'Release', 'kvtransfer.node')));
});

/** Starts `tandem ...` from a tree; resolves with the first stdout line matching `ready`. */
function start(tree: string, args: string[], ready: RegExp): Promise<{ line: string; child: ChildProcess }> {
  const child = spawn(join(tree, 'services', 'cli', 'bin', 'tandem'), args, {
    cwd: tree,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn', NODE_ENV: 'production' },
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (ready.test(line)) resolve({ line, child });
    });
    child.once('exit', (code) => reject(new Error(`tandem ${args[0]} exited ${code}: ${stderr}`)));
  });
}

test('a router and a CPU worker started from the trees serve a completion', async () => {
  const model = (tree: string) => join(tree, 'deploy', 'models', 'tandem-demo-code');
  const worker = await start(
    workerTree,
    [
      'worker',
      '--role',
      'unified',
      '--model',
      model(workerTree),
      '--port',
      '0',
      '--threads',
      '1',
      '--nats',
      nats.url,
      '--redis',
      redis.url,
      '--worker-id',
      'image-worker',
    ],
    /"event":"ready"/,
  );
  const grpcPort = Number(/"port":(\d+)/.exec(worker.line)?.[1]);
  const { line } = await start(
    routerTree,
    ['router', '--model', model(routerTree), '--port', '0', '--nats', nats.url, '--redis', redis.url],
    /serving http/,
  );
  const base = /(http:\/\/[^\s]+)\/v1/.exec(line)?.[1];
  assert.ok(base, line);
  // The router is ready once it has heard the worker's announcement.
  for (let i = 0; i < 100 && (await fetch(`${base}/healthz`)).status !== 200; i++)
    await new Promise((r) => setTimeout(r, 100));
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tandem-demo-code',
      prompt: 'def add(a, b):',
      max_tokens: 8,
      temperature: 0,
    }),
  });
  const body = (await response.json()) as {
    choices?: Array<{ text: string }>;
    usage?: { completion_tokens: number };
  };
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(typeof body.choices?.[0]?.text, 'string');
  assert.ok((body.usage?.completion_tokens ?? 0) > 0);

  // The pods' readiness probe, from the worker's tree: loaded and registered ...
  const probe = (workerId: string) =>
    spawnSync(
      process.execPath,
      [
        join(workerTree, 'deploy', 'images', 'worker-ready.ts'),
        '--port',
        String(grpcPort),
        '--redis',
        redis.url,
      ],
      { encoding: 'utf8', env: { ...process.env, POD_NAME: workerId } },
    );
  assert.equal(probe('image-worker').status, 0, probe('image-worker').stderr);
  const stranger = probe('another-worker');
  assert.equal(stranger.status, 1);
  assert.match(stranger.stderr, /another-worker is not registered/);
  // ... and not ready once it drains: SIGTERM deletes its lease, then it exits.
  worker.child.kill('SIGTERM');
  await new Promise((resolve) => worker.child.once('exit', resolve));
  const gone = probe('image-worker');
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /not ready/);
});
