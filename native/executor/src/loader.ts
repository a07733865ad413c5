// Finds and loads the built addon. CPU: build/Release/tandem_executor.node; CUDA:
// build-cuda/Release/tandem_executor_cuda.node (or the same name under build/). Says exactly what
// is missing and how to build it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { AddonMissingError } from './errors.ts';
import type { NativeAddon } from './native.ts';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const cache = new Map<string, NativeAddon>();

export type AddonKind = 'cpu' | 'cuda';

/** TANDEM_EXECUTOR_ADDON (CPU) / TANDEM_EXECUTOR_CUDA_ADDON (CUDA) name a build elsewhere. */
export function addonCandidates(kind: AddonKind): string[] {
  const override = process.env[kind === 'cpu' ? 'TANDEM_EXECUTOR_ADDON' : 'TANDEM_EXECUTOR_CUDA_ADDON'];
  if (override !== undefined && override !== '') return [override];
  if (kind === 'cpu') return [`${packageDir}build/Release/tandem_executor.node`];
  return [
    `${packageDir}build-cuda/Release/tandem_executor_cuda.node`,
    `${packageDir}build/Release/tandem_executor_cuda.node`,
  ];
}

export function loadAddon(kind: AddonKind = 'cpu'): NativeAddon {
  const cached = cache.get(kind);
  if (cached !== undefined) return cached;
  const candidates = addonCandidates(kind);
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    const how =
      kind === 'cpu'
        ? 'run `pnpm build:native` from the repository root'
        : 'build the CUDA addon: `cd native/executor && pnpm exec cmake-js compile --out build-cuda --CDTANDEM_WITH_CUDA=ON` (needs nvcc)';
    throw new AddonMissingError(
      `the ${kind} executor addon is not built (looked for ${candidates.join(', ')}); ${how}`,
    );
  }
  try {
    const addon = require(path) as NativeAddon;
    cache.set(kind, addon);
    return addon;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new AddonMissingError(`cannot load ${path}: ${detail}; rebuild with \`pnpm build:native\``, {
      cause: err,
    });
  }
}

export function isAddonBuilt(kind: AddonKind): boolean {
  return addonCandidates(kind).some((p) => existsSync(p));
}
