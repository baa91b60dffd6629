#!/usr/bin/env bash
# Set-up (idempotent) + build + the whole test suite. Tests that need ../shared/assets
# (or $FETAFIX_ASSETS) skip with a message when it is absent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j2 "$@"
