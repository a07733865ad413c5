#!/usr/bin/env bash
# Builds the file tree of one tandem image into OUT, exactly as its Dockerfile does (the
# Dockerfiles run this script): the workspace packages the `tandem` command needs (sources,
# no tests), production node_modules only (no compilers, no dev tools), the prebuilt native
# addons for worker images, the model downloader and the demo model.
#
#   deploy/images/assemble.sh router|worker-cpu|worker OUT [SRC]
#
# SRC (default: this checkout) must have run `pnpm install` and, for worker images, built the
# addons (the Dockerfiles build them without -march=native; see README.md). The install is
# from the pnpm store that install filled.
set -euo pipefail
variant=${1:?usage: assemble.sh router|worker-cpu|worker OUT [SRC]}
out=${2:?usage: assemble.sh router|worker-cpu|worker OUT [SRC]}
src=${3:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
case $variant in router | worker-cpu | worker) ;; *) echo "assemble.sh: unknown variant $variant" >&2; exit 2 ;; esac
pnpm_bin=${PNPM:-pnpm}

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Workspace manifests: every package.json (pnpm checks the lockfile against all of them),
# but sources only of what `tandem` runs.
cp "$src/package.json" "$src/pnpm-workspace.yaml" "$src/pnpm-lock.yaml" "$out/"
(cd "$src" && find proto services native test bench -name package.json -not -path '*/node_modules/*' -not -path '*/build/*') |
  while read -r manifest; do
    mkdir -p "$out/$(dirname "$manifest")"
    cp "$src/$manifest" "$out/$manifest"
  done
copy() { # folder relative to src, copied without tests
  mkdir -p "$out/$1"
  (cd "$src/$1" && tar --exclude='*.test.ts' --exclude='./test' --exclude='node_modules' -cf - .) | (cd "$out/$1" && tar -xf -)
}
# Every workspace package's sources (the CLI imports them all, directly or not).
for dir in $(cd "$src" && echo proto/gen proto/src services/*/src services/cli/bin native/*/src bench/src); do
  copy "$dir"
done

# Production dependencies of the CLI and what it imports (from the local store; the registry
# only for what pnpm has not cached, such as its supply-chain metadata).
(cd "$out" && "$pnpm_bin" install --prod --frozen-lockfile --prefer-offline --filter '@tandem/cli...' --config.confirmModulesPurge=false >/dev/null)

# Native addons, prebuilt (workers only: the router computes nothing on a device).
if [ "$variant" != router ]; then
  for addon in native/executor/build/Release/tandem_executor.node native/kvtransfer/build/Release/kvtransfer.node; do
    [ -f "$src/$addon" ] || { echo "assemble.sh: $addon is not built (pnpm build:native)" >&2; exit 1; }
    mkdir -p "$out/$(dirname "$addon")"
    cp "$src/$addon" "$out/$addon"
  done
fi
if [ "$variant" = worker ]; then
  for cuda in native/executor/build/Release/tandem_executor_cuda.node native/kvtransfer/build-cuda/Release/kvtransfer_cuda.node; do
    [ -f "$src/$cuda" ] || { echo "assemble.sh: $cuda is not built (the CUDA builds)" >&2; exit 1; }
    mkdir -p "$out/$(dirname "$cuda")"
    cp "$src/$cuda" "$out/$cuda"
  done
fi

# The hub downloader of the chart's init container, the workers' readiness probe, and the demo
# model (model.source: image).
mkdir -p "$out/deploy/images" "$out/deploy/models"
cp "$src/deploy/images/download-model.ts" "$src/deploy/images/worker-ready.ts" "$out/deploy/images/"
cp -r "$src/deploy/models/tandem-demo-code" "$out/deploy/models/"
echo "assembled $variant in $out ($(du -sh "$out" | cut -f1))"
