#!/usr/bin/env bash
# libFuzzer runs (docs/fuzzing.md). Builds the targets with clang in their own folder
# (FUZZ_BUILD_DIR, default build-fuzz), seeds each corpus from the test fixtures once, then:
#   scripts/fuzz.sh TARGET [MINUTES]     fuzz one target (model, image, patch, preset, npy, npz) MINUTES (default 10)
#   scripts/fuzz.sh all [MINUTES]        each target in turn, MINUTES each
#   scripts/fuzz.sh smoke [SECONDS]      every target, SECONDS in all (default 60): the ctest smoke run
#   scripts/fuzz.sh build                only build
# Corpora grow in $FUZZ_BUILD_DIR/corpus/TARGET; a crash is saved as
# $FUZZ_BUILD_DIR/artifacts/TARGET/crash-* and the script exits non-zero. One line per target
# sums it up: "fuzz TARGET: N executions in S s, K crashes". FUZZ_RUNS=N stops each target after
# N executions (e.g. FUZZ_RUNS=1000000 scripts/fuzz.sh all 60: a million each, at most an hour each).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
TARGETS=(model image patch preset npy npz)

what="${1:-}"
case "$what" in
  smoke) total="${2:-60}"; per_target=$(( total / ${#TARGETS[@]} )); run=("${TARGETS[@]}") ;;
  all) per_target=$(( ${2:-10} * 60 )); run=("${TARGETS[@]}") ;;
  build) run=() ;;
  model|image|patch|preset|npy|npz) per_target=$(( ${2:-10} * 60 )); run=("$what") ;;
  *) echo "usage: scripts/fuzz.sh {model|image|patch|preset|npy|npz|all} [MINUTES] | smoke [SECONDS] | build" >&2; exit 2 ;;
esac

FETAFIX_SETUP_FUZZ=1 bash "$root/scripts/setup.sh"
cfg=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
     -DFETAFIX_BUILD_FUZZ=ON -DFETAFIX_BUILD_TESTS=OFF -DFETAFIX_BUILD_BENCH=OFF)
[ -n "${ORT_ROOT:-}" ] && cfg+=(-DORT_ROOT="$ORT_ROOT")
command -v ccache >/dev/null 2>&1 && cfg+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
mkdir -p "$build"
# Configure once; again when the folder was configured without the fuzz option (an older build).
if ! grep -q '^FETAFIX_BUILD_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  cmake "${cfg[@]}" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
fi
jobs="${FUZZ_BUILD_JOBS:-$(nproc)}"
if ! cmake --build "$build" -j"$jobs" --target fuzz_make_seeds "${TARGETS[@]/#/fuzz_}" >"$build/build.log" 2>&1; then
  grep -E -A3 'error|Error' "$build/build.log" | head -40
  echo "fuzz build failed; full log: $build/build.log" >&2
  exit 1
fi

seeds="$build/seeds"
if [ ! -f "$seeds/.complete" ]; then
  rm -rf "$seeds"
  "$build/fuzz/fuzz_make_seeds" "$seeds" "$root/tests/data/fixtures"
  mkdir -p "$seeds/image"
  cp "$root"/tests/data/fixtures/decode/*.{jpg,png,JPEG} "$root"/tests/data/fixtures/presets/*.png "$seeds/image/"
  touch "$seeds/.complete"
fi
for kind in npy npz; do  # the sample arrays' fixtures (also for seed folders made before these targets)
  if [ ! -d "$seeds/$kind" ]; then
    mkdir -p "$seeds/$kind.tmp"
    cp "$root"/tests/data/fixtures/arrays/*."$kind" "$seeds/$kind.tmp/"
    mv "$seeds/$kind.tmp" "$seeds/$kind"
  fi
done

status=0
for t in "${run[@]}"; do
  corpus="$build/corpus/$t" artifacts="$build/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  log="$build/fuzz-$t.log"
  before=$(find "$artifacts" -type f | wc -l)
  started=$(date +%s)
  set +e
  # -rss_limit_mb: a leak or a runaway allocation is a finding, not an OOM of the machine.
  "$build/fuzz/fuzz_$t" "$corpus" "$seeds/$t" -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2560 \
    -artifact_prefix="$artifacts" -print_final_stats=1 ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  if [ "$rc" -ne 0 ]; then status=1; tail -30 "$log"; fi
  # libFuzzer says how long it ran only when it was not stopped (a crash, an interrupt): then the wall time.
  took=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  echo "fuzz $t: ${runs:-0} executions in ${took:-$(( $(date +%s) - started ))} s (${secs:-0}/s), $crashes crash(es); log $log"
done
exit $status
