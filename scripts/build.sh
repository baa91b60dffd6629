#!/usr/bin/env bash
# Set-up (idempotent) + configure + build. Extra arguments go to CMake's configure step.
# BUILD_DIR (default: build) picks the build folder; ORT_ROOT uses an official ONNX Runtime.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/setup.sh"
cfg=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release)
[ -n "${ORT_ROOT:-}" ] && cfg+=(-DORT_ROOT="$ORT_ROOT")
# ccache, when installed, makes rebuilds in several checkouts cheap (not needed by CI).
command -v ccache >/dev/null 2>&1 && cfg+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ] || [ "$#" -gt 0 ]; then
  cmake "${cfg[@]}" "$@" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
fi
# Quiet when it works; the compiler's messages when it does not.
if ! cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1; then
  grep -E -A3 'error|Error' "$build/build.log" | head -60
  echo "build failed; full log: $build/build.log" >&2
  exit 1
fi
