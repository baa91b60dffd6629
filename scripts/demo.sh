#!/usr/bin/env bash
# The main job on the bundled demo: builds fetafix, makes the demo model pair (a small CNN
# and a "converted" copy with three planted faults), compares them on real photos from
# Debian's mate-backgrounds package, localizes the faults and repairs the Target. Exit code
# is the repair's (0: fully repaired). `scripts/demo.sh ocr` runs the second demo instead
# (scripts/demo-ocr.sh: PP-OCRv4's recognizer with a planted fault, task text).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
# `scripts/demo.sh ocr`: the second demo, on PaddleOCR's text recognizer (scripts/demo-ocr.sh).
if [ "${1:-}" = ocr ]; then
  shift
  exec bash "$root/scripts/demo-ocr.sh" "$@"
fi
demo="$build/demo"
photos=/usr/share/backgrounds/mate/nature
# BatchNorm statistics of the demo CNN are calibrated on the same photos.
"$build/tools/fetafix-demo-models" "$demo" "$photos" >/dev/null
echo "== fetafix compare on the demo pair, $(ls "$photos" | wc -l) photos from $photos"
set +e
"$build/src/cli/fetafix" compare "$demo/source.onnx" "$demo/target.onnx" --images "$photos" \
  --json "$demo/compare.json" "$@"
rc=$?
echo "== compare exit code $rc (0: models agree, 1: they disagree, 2: bad input); JSON in $demo/compare.json"
[ "$rc" -le 1 ] || exit "$rc"
echo
echo "== fetafix localize: which layers and settings differ, and which of them matter"
"$build/src/cli/fetafix" localize "$demo/source.onnx" "$demo/target.onnx" --images "$photos" \
  --json "$demo/localize.json" "$@"
rc=$?
echo "== localize exit code $rc (0: nothing found, 1: faults found, 2: bad input); JSON in $demo/localize.json"
[ "$rc" -le 1 ] || exit "$rc"
echo
echo "== fetafix repair: keep each fix only if fewer photos disagree"
"$build/src/cli/fetafix" repair "$demo/source.onnx" "$demo/target.onnx" --images "$photos" \
  -o "$demo/repaired.onnx" --patch "$demo/patch.json" --json "$demo/repair.json" --report "$demo/report.html" "$@"
rc=$?
set -e
echo "== repair exit code $rc (0: fully repaired, 1: improved, 3: no improvement, 2: bad input)"
echo "   repaired model $demo/repaired.onnx, patch $demo/patch.json, log $demo/repair.json"
echo "   report (open it in a browser) $demo/report.html"
exit $rc
