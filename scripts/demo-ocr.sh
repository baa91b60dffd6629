#!/usr/bin/env bash
# `scripts/demo.sh ocr`, the second demo: PaddleOCR's PP-OCRv4 text recognizer (real weights,
# third_party/ocr-models, fetched by scripts/setup.sh) against a "converted" copy with a planted
# fault — ReLU6's upper bound dropped (`fetafix inject --fault lh:clip-max-removed`, as converters
# that turn Clip(0, 6) into Relu do) — on text lines rendered on real photos
# (scripts/make_ocr_samples.sh). compare -> localize -> repair with `--task text`, printing the
# strings both models read before and after. Expects a built tree (scripts/demo.sh builds it).
# Exit code: the repair's (0: fully repaired); 0 with "skipped: ..." when the models, the photos
# or ImageMagick are missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
fetafix="$build/src/cli/fetafix"
models="$root/third_party/ocr-models"
demo="$build/demo/ocr"
source_model="$models/ch_PP-OCRv4_rec_infer.onnx"
if [ ! -f "$source_model" ]; then echo "skipped: no PP-OCRv4 model at $source_model (run scripts/setup.sh)" >&2; exit 0; fi
rm -rf "$demo"
mkdir -p "$demo"
bash "$root/scripts/make_ocr_samples.sh" rec "$demo/lines" 16
if [ ! -f "$demo/lines/000.png" ]; then echo "skipped: no text-line samples were rendered" >&2; exit 0; fi
# PaddleOCR's classes besides the blank: the keys file (no newline at its end) and a space.
{ cat "$models/ppocr_keys_v1.txt"; echo; echo " "; } > "$demo/charset.txt"
"$fetafix" inject "$source_model" -o "$demo/target.onnx" --fault lh:clip-max-removed >/dev/null
opts=(--data "$demo/lines" --source-preprocess "$root/presets/ppocr-rec.json"
      --target-preprocess "$root/presets/ppocr-rec.json" --task "text:charset=$demo/charset.txt" --quiet)

# The strings both models read, sample by sample, from a compare JSON.
strings() {
  python3 - "$1" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1]))["samples"]:
    mark = "  " if s.get("status") == "agree" else "!="
    print(f"  {s['file']}  Source: {s.get('source_text', '')!r:32} {mark} Target: {s.get('target_text', '')!r}")
PY
}

echo "== fetafix compare: PP-OCRv4 recognizer vs a copy whose ReLU6 lost its bound, $(ls "$demo"/lines/*.png | wc -l) text lines"
set +e
"$fetafix" compare "$source_model" "$demo/target.onnx" "${opts[@]}" --json "$demo/compare-before.json" >/dev/null
rc=$?
[ "$rc" -le 1 ] || exit "$rc"
strings "$demo/compare-before.json"
echo
echo "== fetafix localize"
"$fetafix" localize "$source_model" "$demo/target.onnx" "${opts[@]}" --json "$demo/localize.json"
rc=$?
echo "== localize exit code $rc (0: nothing found, 1: faults found, 2: bad input)"
[ "$rc" -le 1 ] || exit "$rc"
echo
echo "== fetafix repair: keep each fix only if fewer lines are read differently"
"$fetafix" repair "$source_model" "$demo/target.onnx" "${opts[@]}" -o "$demo/repaired.onnx" \
  --patch "$demo/patch.json" --json "$demo/repair.json"
repair_rc=$?
echo "== repair exit code $repair_rc (0: fully repaired, 1: improved, 3: no improvement, 2: bad input)"
[ "$repair_rc" -ne 2 ] || exit 2
"$fetafix" compare "$source_model" "$demo/repaired.onnx" "${opts[@]}" --json "$demo/compare-after.json" >/dev/null
rc=$?
set -e
[ "$rc" -le 1 ] || exit "$rc"
echo
echo "== after the repair"
strings "$demo/compare-after.json"
exit "$repair_rc"
