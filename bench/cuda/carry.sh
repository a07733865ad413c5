#!/usr/bin/env bash
# Packs what the GPU host needs to run the TypeScript side (it has no Node and no network) into
# .carry/ (git-ignored; name it in the device tool's `carry`): Node as one xz'd binary (~30 MB)
# and the two header packages the addon compiles against. Run after ./bootstrap.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
mkdir -p .carry
[ -f .carry/node.xz ] || xz -T0 -6 -c .tools/node/bin/node >.carry/node.xz
rm -rf .carry/node-addon-api .carry/node-api-headers
cp -rL native/executor/node_modules/node-addon-api native/executor/node_modules/node-api-headers .carry/
du -sh .carry
