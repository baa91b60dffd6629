#!/usr/bin/env bash
# The main job on the bundled demo: builds fetafix, makes the demo model pair (a small CNN
# and a "converted" copy with planted faults) and compares them on real photos from
# Debian's mate-backgrounds package. Exit code is fetafix's (1: the models disagree).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bash "$root/scripts/build.sh"
demo="$build/demo"
photos=/usr/share/backgrounds/mate/nature
# BatchNorm statistics of the demo CNN are calibrated on the same photos.
"$build/tools/fetafix-demo-models" "$demo" "$photos" >/dev/null
echo "== fetafix compare on the demo pair, $(ls "$photos" | wc -l) photos from $photos"
set +e
"$build/src/cli/fetafix" compare "$demo/source.onnx" "$demo/target.onnx" --images "$photos" \
  --json "$demo/compare.json" "$@"
rc=$?
set -e
echo "== exit code $rc (0: models agree, 1: they disagree, 2: bad input); JSON in $demo/compare.json"
exit $rc
