#!/usr/bin/env bash
# Make sure everything the build and the tests need is installed.
# Idempotent and silent when all is present; prints one line per thing it
# installs. Debian/Ubuntu only (apt). Run as root (or with sudo available).
#   - Debian packages (apt-get update runs once, only if something is missing)
#   - node_modules (npm ci, or npm install without a lockfile) when missing or
#     older than package-lock.json / package.json
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  containerd runc clang lld wasi-libc libclang-rt-14-dev-wasm32
  golang-github-containerd-containerd-dev golang-github-containerd-ttrpc-dev
  util-linux openssl
)

sudo=()
if [[ $(id -u) != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
fi

installed() { # installed PKG -> 0 if dpkg says "install ok installed"
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-deps: missing packages (${missing[*]}) and no apt-get; install them by hand" >&2
    exit 1
  fi
  echo "ensure-deps: apt-get update"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  for p in "${missing[@]}"; do echo "ensure-deps: installing $p"; done
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# node_modules
cd "$root"
stamp="node_modules/.package-lock.json" # written by npm on every install
need_npm=0
if [[ ! -d node_modules ]]; then
  need_npm=1
elif [[ -f package-lock.json ]]; then
  [[ ! -e "$stamp" || package-lock.json -nt "$stamp" ]] && need_npm=1
elif [[ package.json -nt node_modules ]]; then
  need_npm=1
fi
if ((need_npm)); then
  if [[ -f package-lock.json ]]; then
    echo "ensure-deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
  else
    echo "ensure-deps: npm install"
    npm install --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
