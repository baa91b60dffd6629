#!/usr/bin/env bash
# Sharded vs single-process runs on the same data (docs/scaling.md): MobileNetV2 (float, from the
# assets' int8 model) against its fp16-rounded copy (`fetafix inject --fault wb:fp16`) on the
# ImageNet samples, R ranks x T threads, each configuration run side by side in one invocation.
#   bench/mpi/bench_mpi.sh [compare|repair] [IMAGES=1000] [BUILD=build]
# Prints wall seconds per configuration, the speed-up over 1 rank x 1 thread, whether the
# outputs are byte-identical (JSON without timings; for repair the patch and the model), and
# rank 0's communication line (collectives, bytes, transfer and wait seconds).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${1:-compare}"; images="${2:-1000}"; build="${3:-$root/build}"
assets="${FETAFIX_ASSETS:-$root/../shared/assets}"
qdq="$assets/models/mobilenet_v2_1.0_224_int8_per_tensor.onnx"
photos="$assets/images/imagenet-samples"
[ -f "$qdq" ] && [ -d "$photos" ] || { echo "bench_mpi: skipped: $qdq or $photos not found (set FETAFIX_ASSETS)"; exit 0; }
command -v mpirun >/dev/null || { echo "bench_mpi: skipped: mpirun not found (apt-get install openmpi-bin)"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fetafix="$build/src/cli/fetafix"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$build/tools/fetafix-dequantize" "$qdq" "$work/source.onnx" >/dev/null
"$fetafix" inject "$work/source.onnx" --fault wb:fp16 -o "$work/target.onnx" >/dev/null
mkdir "$work/images"
ls "$photos" | sort | head -n "$images" | while read -r f; do ln -s "$photos/$f" "$work/images/$f"; done

strip_timings() {  # the JSON minus what depends on the clock
  /usr/bin/python3 -c 'import json,sys
def s(d):
    if isinstance(d, dict): return {k: s(v) for k, v in d.items() if k not in ("seconds","samples_per_second","timings_seconds","timings")}
    if isinstance(d, list): return [s(v) for v in d]
    return d
print(json.dumps(s(json.load(open(sys.argv[1]))), sort_keys=True))' "$1"
}

run() {  # ranks threads -> prints seconds; outputs in $work/r<ranks>t<threads>
  local ranks="$1" threads="$2" out="$work/r$1t$2"
  mkdir -p "$out"
  local args=("$mode" "$work/source.onnx" "$work/target.onnx" --images "$work/images" --threads "$threads" -q
              --json "$out/result.json")
  [ "$mode" = repair ] && args+=(-o "$out/repaired.onnx" --patch "$out/patch.json")
  local launcher=()
  [ "$ranks" -gt 1 ] && launcher=(mpirun -np "$ranks")
  local t0 t1
  t0=$(date +%s.%N)
  "${launcher[@]}" "$fetafix" "${args[@]}" >"$out/stdout" 2>"$out/stderr" || true
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

echo "bench_mpi: $mode, $images images, $(nproc) cores"
base=""
for cfg in "1 1" "2 1" "1 2"; do
  set -- $cfg
  s=$(run "$1" "$2")
  [ -z "$base" ] && base="$s"
  same="-"
  if [ "$1$2" != 11 ]; then
    same=identical
    [ "$(strip_timings "$work/r$1t$2/result.json")" = "$(strip_timings "$work/r1t1/result.json")" ] || same=DIFFERENT
    if [ "$mode" = repair ]; then
      cmp -s "$work/r$1t$2/patch.json" "$work/r1t1/patch.json" || same=DIFFERENT
      cmp -s "$work/r$1t$2/repaired.onnx" "$work/r1t1/repaired.onnx" || same=DIFFERENT
    fi
  fi
  printf '%d rank(s) x %d thread(s): %7.2f s  speed-up %.2fx  outputs %s\n' "$1" "$2" "$s" "$(echo "$base / $s" | bc -l)" "$same"
  grep -h "fetafix: mpi: .* collectives" "$work/r$1t$2/stderr" | sed 's/^/    /' || true
done
