#!/usr/bin/env bash
# Sanitizer runs of the test suite (docs/hardening.md), each in its own build folder:
#   scripts/sanitize.sh address [CTEST ARGS]   ASan+UBSan, the whole suite          (build-asan)
#   scripts/sanitize.sh thread  [CTEST ARGS]   TSan, the suites that run threads      (build-tsan)
# Every report is written to $BUILD/sanitizer-reports/ (one file per report) and counted at the
# end: "sanitizer reports: N". The exit code is ctest's, or 1 when there is any report.
# SANITIZE_TARGETS="fetafix test_data ..." builds only those targets (a subset run; select the
# matching tests with ctest args, e.g. -R '^(Samples|CliTasks)'). SANITIZE_BUILD_DIR overrides the folder; suppressions (only for code inside the uninstrumented
# prebuilt libraries) are in scripts/sanitizers/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-address}"
[ $# -gt 0 ] && shift
case "$mode" in
  address) sanitize=address,undefined; build="${SANITIZE_BUILD_DIR:-$root/build-asan}"; select=(); targets=(all) ;;
  # What shares work between threads: the compare pipeline (oneTBB), the label evaluator and the
  # repair driver's scoring, ONNX Runtime sessions run from several threads, activation analysis,
  # the localization pipeline, and the CLI end to end.
  thread) sanitize=thread; build="${SANITIZE_BUILD_DIR:-$root/build-tsan}"
          select=(-R '^(Compare|LabelEvaluator|Session|SessionErrors|ActivationAnalysis|LocalizePipeline|RepairDriver|PartialExecution|Cli)\.')
          targets=(fetafix test_compare test_runtime test_localize test_repair test_cli) ;;
  *) echo "usage: scripts/sanitize.sh {address|thread} [ctest args]" >&2; exit 2 ;;
esac
[ -n "${SANITIZE_TARGETS:-}" ] && read -r -a targets <<<"$SANITIZE_TARGETS"
supp="$root/scripts/sanitizers"

bash "$root/scripts/setup.sh"
cfg=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFETAFIX_SANITIZE="$sanitize"
     -DFETAFIX_BUILD_BENCH=OFF -DFETAFIX_FUZZ_SMOKE=OFF)
[ -n "${ORT_ROOT:-}" ] && cfg+=(-DORT_ROOT="$ORT_ROOT")
command -v ccache >/dev/null 2>&1 && cfg+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
mkdir -p "$build"
[ -f "$build/CMakeCache.txt" ] || { cmake "${cfg[@]}" >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }; }
start=$(date +%s)
if ! cmake --build "$build" -j"${SANITIZE_BUILD_JOBS:-$(nproc)}" --target "${targets[@]}" >"$build/build.log" 2>&1; then
  grep -E -A3 'error|Error' "$build/build.log" | head -60
  echo "sanitizer build failed; full log: $build/build.log" >&2
  exit 1
fi
built=$(date +%s)

reports="$build/sanitizer-reports"
rm -rf "$reports"; mkdir -p "$reports"
common="log_path=$reports/report:print_stacktrace=1"
export ASAN_OPTIONS="$common:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="$common:halt_on_error=1:suppressions=$supp/ubsan.supp"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="$common:halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
cd "$build"
set +e
ctest -j2 --timeout 3000 "${select[@]}" "$@"
rc=$?
set -e
done_at=$(date +%s)
count=$(cat "$reports"/report* 2>/dev/null | grep -cE '^(==[0-9]+==ERROR: |WARNING: ThreadSanitizer|.*runtime error: )' || true)
echo "sanitize $mode: build $((built - start)) s, tests $((done_at - built)) s; sanitizer reports: $count (in $reports)"
[ "$count" -eq 0 ] || exit 1
exit $rc
