#!/usr/bin/env bash
# Build the C test modules in test/modules/ into build/modules/:
#   <name>.wasm    clang --target=wasm32-wasi -O2   (WASI preview1 module)
#   <name>.native  cc -O2 -static                   (for runc comparisons)
# A source may carry a line "build-modules: [wasm-only] [clang flags...]":
# extra flags for its wasm build, and wasm-only to skip the native one
# (test/modules/reactor.c: "build-modules: wasm-only -mexec-model=reactor").
#   <name>.component.wasm  for probe and hello: the preview1 module wrapped as a
#                  WASI 0.2 wasi:cli command component by `jco new --wasi-command`
#                  (jco's preview1 command adapter, shipped in the npm package)
#   needs-missing.component.wasm  test/modules/component/needs-missing.c with
#                  the world in needs-missing.wit embedded: imports an interface
#                  no host provides
#   reactor.component.wasm  test/modules/component/reactor.c as a WASI reactor
#                  (`jco new --wasi-reactor`): a component that is no command
# Only rebuilds an output when its source (or this script) is newer.
# Usage: scripts/build-modules.sh [-f]   (-f forces a rebuild)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src_dir="$root/test/modules"
out_dir="$root/build/modules"
self="${BASH_SOURCE[0]}"
force=0
[[ "${1:-}" == "-f" ]] && force=1

CLANG="${CLANG:-clang}"
if [[ -z "${CC:-}" ]]; then
  if command -v cc >/dev/null 2>&1; then CC=cc; else CC="$CLANG"; fi
fi
WASI_SYSROOT="${WASI_SYSROOT:-}"

mkdir -p "$out_dir"

stale() { # stale OUT SRC
  [[ $force == 1 || ! -e "$1" || "$2" -nt "$1" || "$self" -nt "$1" ]]
}

build_one() { # build_one OUT CMD...
  local out="$1"; shift
  local tmp="$out.tmp.$$"
  if ! "$@" -o "$tmp"; then
    rm -f "$tmp"
    echo "build-modules: failed: $* -o $out (missing toolchain? run scripts/ensure-deps.sh)" >&2
    return 1
  fi
  mv -f "$tmp" "$out"
  echo "build-modules: built ${out#$root/}"
}

sysroot_flag=()
[[ -n "$WASI_SYSROOT" ]] && sysroot_flag=(--sysroot="$WASI_SYSROOT")

shopt -s nullglob
for src in "$src_dir"/*.c; do
  name="$(basename "$src" .c)"
  wasm="$out_dir/$name.wasm"
  native="$out_dir/$name.native"
  read -r -a extra <<<"$(sed -n 's/.*build-modules:\(.*\)$/\1/p' "$src" | head -n 1)"
  wasm_only=0
  wasm_flags=()
  for flag in "${extra[@]}"; do
    if [[ $flag == wasm-only ]]; then wasm_only=1; else wasm_flags+=("$flag"); fi
  done
  if stale "$wasm" "$src"; then
    build_one "$wasm" "$CLANG" --target=wasm32-wasi "${sysroot_flag[@]}" -O2 -Wall "${wasm_flags[@]}" "$src"
  fi
  if [[ $wasm_only == 0 ]] && stale "$native" "$src"; then
    build_one "$native" "$CC" -O2 -Wall -static "$src"
  fi
done

# Components: jco (an npm devDependency) wraps the modules with its adapter.
JCO="$root/node_modules/.bin/jco"
build_component() { # build_component OUT CORE [ADAPTER FLAG]
  local out="$1" core="$2" flag="${3:---wasi-command}" tmp="$1.tmp.$$"
  if ! "$JCO" new "$core" "$flag" -o "$tmp" >/dev/null; then
    rm -f "$tmp"
    echo "build-modules: failed: jco new $core $flag (run npm ci?)" >&2
    return 1
  fi
  mv -f "$tmp" "$out"
  echo "build-modules: built ${out#$root/}"
}
for name in probe hello; do
  if stale "$out_dir/$name.component.wasm" "$out_dir/$name.wasm"; then
    build_component "$out_dir/$name.component.wasm" "$out_dir/$name.wasm"
  fi
done
missing_src="$src_dir/component/needs-missing.c"
missing_out="$out_dir/needs-missing.component.wasm"
if stale "$missing_out" "$missing_src" || [[ "$src_dir/component/needs-missing.wit" -nt "$missing_out" ]]; then
  core="$out_dir/needs-missing.core.wasm"
  build_one "$core" "$CLANG" --target=wasm32-wasi "${sysroot_flag[@]}" -O2 -Wall "$missing_src"
  node "$root/scripts/embed-wit.mjs" "$core" "$src_dir/component/needs-missing.wit" needs-missing "$core.embedded"
  build_component "$missing_out" "$core.embedded"
  rm -f "$core" "$core.embedded"
fi
reactor_src="$src_dir/component/reactor.c"
reactor_out="$out_dir/reactor.component.wasm"
if stale "$reactor_out" "$reactor_src"; then
  core="$out_dir/reactor.core.wasm"
  build_one "$core" "$CLANG" --target=wasm32-wasi "${sysroot_flag[@]}" -mexec-model=reactor -O2 -Wall "$reactor_src"
  build_component "$reactor_out" "$core" --wasi-reactor
  rm -f "$core"
fi
