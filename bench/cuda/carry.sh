#!/usr/bin/env bash
# Packs what the GPU host needs to run tandem's TypeScript side (it has no Node, no NATS, no Redis
# and no network) into .carry/ (git-ignored; name `.carry` in the device tool's `carry`). Run after
# ./bootstrap.sh. The device tool carries 64 MiB in all, the working tree (~25 MB) included:
#   node.xz            Node 24 as one xz'd binary (~30 MB)
#   node-addon-api/,   the headers the CUDA addons compile against there
#   node-api-headers/
#   runtime.tar.xz     every node_modules folder of the workspace (pnpm's symlinked layout) without
#                      the dev tools (biome, buf, TypeScript, @types, @kubernetes, Grafana's schema,
#                      ...), declarations and source maps; the openai client and ajv stay (the e2e tests) (~4 MB)
#   servers.tar.xz     Debian's nats-server and redis-server with the libraries redis needs
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
mkdir -p .carry
# Node's debug info is a sixth of the binary: strip a copy.
if [ ! -f .carry/node.xz ]; then
  cp .tools/node/bin/node .carry/node && strip .carry/node && xz -T0 -9e .carry/node
fi
rm -rf .carry/node-addon-api .carry/node-api-headers
cp -rL native/executor/node_modules/node-addon-api native/executor/node_modules/node-api-headers .carry/

if [ "${1:-}" != --headers-only ]; then
  dev=('@biomejs+*' '@bufbuild+buf*' '@bufbuild+protoc-gen-es*' '@bufbuild+protoplugin*' 'typescript@*'
       '@typescript+*' '@types+*' '@kubernetes+*' 'cmake-js*' '@grafana+*' '@resvg+*'
       'bare-*' 'tar@*' 'js-yaml@*' 'kubernetes-models*' '@aws-cdk+*')
  # Declarations, source maps and the openai client's TypeScript sources are not run.
  excludes=(--exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts'
            --exclude='node_modules/.pnpm/openai@*/node_modules/openai/src')
  for pattern in "${dev[@]}"; do excludes+=("--exclude=node_modules/.pnpm/$pattern"); done
  mapfile -t folders < <(ls -d node_modules services/*/node_modules native/*/node_modules proto/node_modules \
    bench/node_modules test/node_modules 2>/dev/null)
  tar -c "${excludes[@]}" "${folders[@]}" | xz -T0 -6 >.carry/runtime.tar.xz

  staging=$(mktemp -d)
  mkdir -p "$staging/bin" "$staging/lib"
  cp "$(command -v nats-server)" "$staging/bin/"
  cp "$(readlink -f "$(command -v redis-server)")" "$staging/bin/redis-server"
  for lib in liblzf.so.1 libjemalloc.so.2; do cp -L "/lib/x86_64-linux-gnu/$lib" "$staging/lib/"; done
  tar -C "$staging" -c bin lib | xz -T0 -9 >.carry/servers.tar.xz
  rm -rf "$staging"
fi
du -sh .carry/*
echo "carry: $(du -sb .carry | cut -f1) bytes; working tree: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes (64 MiB in all)"
