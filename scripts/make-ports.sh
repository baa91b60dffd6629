#!/usr/bin/env bash
# The port corpus (docs/corpus.md, "Port cases"): the asset models re-implemented in PyTorch and
# exported with torch.onnx, a faithful port and bug ports per model, each checked with
# `fetafix compare`. Installs Debian's python3-torch and python3-onnx first (only here: the default
# test run does not need them). Usage: scripts/make-ports.sh [OUT] [make_ports.py options]
# (OUT defaults to <build>/ports; e.g. --cases a,b, --images DIR, --list).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
out="$build/ports"
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then out="$1"; shift; fi
FETAFIX_SETUP_PORTS=1 bash "$root/scripts/setup.sh"
[ -f "$build/CMakeCache.txt" ] || BUILD_DIR="$build" bash "$root/scripts/build.sh"
if ! cmake --build "$build" --target fetafix fetafix-dequantize -j"$(nproc)" >"$build/ports-build.log" 2>&1; then
  grep -E -A3 'error|Error' "$build/ports-build.log" | head -40
  echo "build failed; full log: $build/ports-build.log" >&2
  exit 1
fi
exec /usr/bin/python3 "$root/tools/ports/make_ports.py" "$out" --dequantize "$build/tools/fetafix-dequantize" \
  --fetafix "$build/src/cli/fetafix" "$@"
