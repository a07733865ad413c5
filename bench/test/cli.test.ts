// The command line end to end against the test-server process: sweep, compare, plot, and how
// failed requests are reported.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readResult } from '../src/result.ts';
import { readSweep } from '../src/sweep.ts';
import { startTestServerProcess, type TestServerProcess } from './helpers/test-server-process.ts';

const CLI = fileURLToPath(new URL('../../services/cli/src/main.ts', import.meta.url));

function tandem(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', CLI, ...args],
      { timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('tandem bench command line', () => {
  let server: TestServerProcess;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-bench-cli-'));
    server = await startTestServerProcess([
      '--seed',
      '1',
      '--ttft-ms',
      '20',
      '--itl-ms',
      '5',
      '--slow-ttft-fraction',
      '0.5',
      '--slow-ttft-ms',
      '120',
    ]);
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a model mix sends each conversation to one model by share and reports each', async () => {
    const out = join(dir, 'mix.json');
    const { code, stdout, stderr } = await tandem([
      ...['bench', 'run', '--base-url', server.baseUrl, '--model', 'alpha:3,beta:1', '--out', out],
      ...['--num-prompts', '40', '--input-len', '8', '--output-len', '2', '--warmup-requests', '0'],
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /model alpha: completed \d+/);
    assert.match(stdout, /model beta: completed \d+/);
    const result = readResult(out);
    assert.deepEqual(result.config.models, [
      { name: 'alpha', weight: 3 },
      { name: 'beta', weight: 1 },
    ]);
    const alpha = result.requests.filter((r) => r.model === 'alpha').length;
    const beta = result.requests.filter((r) => r.model === 'beta').length;
    assert.equal(alpha + beta, 40);
    assert.ok(alpha > beta && beta > 0, `alpha ${alpha}, beta ${beta}`);
    assert.equal(result.perModel?.alpha?.numCompleted, alpha);
    assert.equal(result.perModel?.beta?.numCompleted, beta);
  });

  test('sweep writes a result per rate, sweep.json and the rate plots', async () => {
    const outDir = join(dir, 'sweep');
    const { code, stdout, stderr } = await tandem([
      ...['bench', 'sweep', '--base-url', server.baseUrl, '--rates', '20,40', '--out-dir', outDir],
      ...[
        '--num-prompts',
        '8',
        '--input-len',
        '16',
        '--output-len',
        '4',
        '--slo-ttft-ms',
        '70',
        '--label',
        'test',
      ],
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /rate 20 req\/s: .* goodput/);
    const sweep = readSweep(join(outDir, 'sweep.json'));
    assert.deepEqual(
      sweep.points.map((p) => [p.requestRatePerS, p.resultFile]),
      [
        [20, 'rate-20.json'],
        [40, 'rate-40.json'],
      ],
    );
    const first = readResult(join(outDir, 'rate-20.json'));
    assert.equal(first.config.requestRatePerS, 20);
    // Each rate its own seed (0, 1): no rate is served from the cache of the one before.
    assert.deepEqual([first.config.seed, readResult(join(outDir, 'rate-40.json')).config.seed], [0, 1]);
    assert.equal(first.summary.numCompleted, 8);
    assert.ok(
      first.summary.goodput !== null &&
        first.summary.goodput.numGood < 8 &&
        first.summary.goodput.numGood > 0,
    );
    const requests = readFileSync(join(outDir, 'throughput-goodput-vs-rate.svg'), 'utf8');
    assert.equal(requests.match(/<polyline /g)?.length, 2);
    assert.ok(requests.includes('>test throughput<') && requests.includes('>test goodput<'));
    const tokens = readFileSync(join(outDir, 'output-throughput-vs-rate.svg'), 'utf8');
    assert.equal(tokens.match(/<circle /g)?.length, 2);
    const bad = await tandem([
      'bench',
      'sweep',
      '--base-url',
      server.baseUrl,
      '--model',
      'm',
      '--rates',
      '1,inf',
      '--out-dir',
      outDir,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /finite/);
  });

  test('compare prints both runs side by side; plot overlays their latency CDFs', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    const common = [
      '--base-url',
      server.baseUrl,
      '--num-prompts',
      '6',
      '--input-len',
      '8',
      '--output-len',
      '3',
    ];
    assert.equal(
      (
        await tandem([
          'bench',
          'run',
          ...common,
          '--label',
          'first',
          '--out',
          a,
          '--plot-dir',
          join(dir, 'one'),
        ])
      ).code,
      0,
    );
    assert.equal(
      (await tandem(['bench', 'run', ...common, '--label', 'second', '--max-concurrency', '1', '--out', b]))
        .code,
      0,
    );
    assert.ok(existsSync(join(dir, 'one', 'ttft-cdf.svg')));
    const compared = await tandem(['bench', 'compare', a, b]);
    assert.equal(compared.code, 0, compared.stderr);
    const lines = compared.stdout.split('\n');
    assert.match(lines[0] ?? '', /metric\s+first\s+second\s+vs first/);
    assert.match(compared.stdout, /completed requests\s+6\s+6\s+1\.00x/);
    assert.match(compared.stdout, /TTFT p99 \(ms\)/);
    const plotted = await tandem(['bench', 'plot', '--out-dir', join(dir, 'both'), '--prefix', 'ab-', a, b]);
    assert.equal(plotted.code, 0, plotted.stderr);
    const cdf = readFileSync(join(dir, 'both', 'ab-e2e-cdf.svg'), 'utf8');
    assert.equal(cdf.match(/<polyline /g)?.length, 2);
    assert.ok(cdf.includes('>first<') && cdf.includes('>second<'));
    const bars = readFileSync(join(dir, 'both', 'ab-request-throughput.svg'), 'utf8');
    // One bar per run for request throughput (no SLO given: no goodput bars), plus two legend keys.
    assert.equal(bars.match(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="#/g)?.length, 4);
  });

  test('rejected requests are counted as failed with the server message; exit code 1', async () => {
    const out = join(dir, 'bad.json');
    const { code } = await tandem([
      ...[
        'bench',
        'run',
        '--base-url',
        server.baseUrl,
        '--num-prompts',
        '3',
        '--input-len',
        '4',
        '--output-len',
        '2',
      ],
      ...['--extra-body', '{"stream": false}', '--out', out, '--warmup-requests', '0'],
    ]);
    assert.equal(code, 1);
    const result = readResult(out);
    assert.equal(result.summary.numFailed, 3);
    assert.equal(result.summary.numCompleted, 0);
    assert.match(result.requests[0]?.error ?? '', /BenchHttpError: HTTP 400: .*only streams/);
    // With the default warm-up request the run does not even start.
    const warm = await tandem([
      ...[
        'bench',
        'run',
        '--base-url',
        server.baseUrl,
        '--num-prompts',
        '3',
        '--extra-body',
        '{"stream": false}',
      ],
    ]);
    assert.equal(warm.code, 1);
    assert.match(warm.stderr, /every warm-up request failed; first: BenchHttpError: HTTP 400/);
  });

  test('bad flags are reported without a stack trace', async () => {
    const { code, stderr } = await tandem([
      'bench',
      'run',
      '--base-url',
      server.baseUrl,
      '--model',
      'm',
      '--workload',
      'nope',
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /--workload must be one of random, sharegpt-like, shared-prefix, multi-turn/);
    const chat = await tandem([
      'bench',
      'run',
      '--base-url',
      server.baseUrl,
      '--model',
      'm',
      '--api',
      'chat',
      '--prompt-format',
      'token-ids',
    ]);
    assert.equal(chat.code, 2);
    assert.match(chat.stderr, /token-id prompts need --api completions/);
  });
});
