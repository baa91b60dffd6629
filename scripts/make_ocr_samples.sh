#!/usr/bin/env bash
# Renders OCR samples: English text in DejaVu fonts on real photos (the ImageNet samples of
# ../shared/assets, or $FETAFIX_ASSETS), with ImageMagick. Used by the OCR tests and the
# compare benchmark, which write into the build folder; nothing it makes is committed.
#
#   make_ocr_samples.sh det OUT_DIR COUNT [SIZE]   SIZExSIZE photos (default 640) with 3 lines of text
#   make_ocr_samples.sh rec OUT_DIR COUNT          320x48 text-line crops (PP-OCR's recognition input)
#
# Writes OUT_DIR/NNN.png and OUT_DIR/labels.txt ("NNN.png<TAB>text", the rendered text).
# FIRST=K (default 0) starts at sample K: files K.png .. K+COUNT-1.png, other photos and words,
# so a second set (the corpus' validation half) shares nothing with the first.
# Deterministic: the photos are every (1000/COUNT)-th of the sorted folder (shifted by FIRST), the
# words come from a fixed list, and the PNGs carry no time or date chunks (same bytes every run).
# Exit 0 with "skipped: ..." on stderr when the photos or ImageMagick are missing.
set -euo pipefail
kind="$1" out="$2" count="$3" size="${4:-640}" first="${FIRST:-0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="${FETAFIX_ASSETS:-$root/../shared/assets}"
photos="$assets/images/imagenet-samples"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
bold=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
if [ ! -d "$photos" ]; then echo "skipped: no photos at $photos" >&2; exit 0; fi
if ! command -v convert >/dev/null || [ ! -f "$font" ]; then echo "skipped: ImageMagick or DejaVu fonts missing" >&2; exit 0; fi
words=(model convert repair tensor layer weights batch kernel stride padding output input graph
       FetaFix ONNX Runtime 2024 1.29 Paddle Debian photo river forest market station garden)
mapfile -t all < <(cd "$photos" && ls | LC_ALL=C sort)
step=$(( ${#all[@]} / count )); [ "$step" -ge 1 ] || step=1
mkdir -p "$out"
: > "$out/labels.txt.tmp"
# -quiet: ImageMagick's warnings about the photos' metadata are noise here. The PNG date/time
# chunks (and the text chunks holding dates) are left out so the bytes do not depend on the day.
png_opts=(-define png:exclude-chunks=date,time,tEXt,zTXt,iTXt +set date:create +set date:modify)
for ((i = first; i < first + count; i++)); do
  photo="$photos/${all[$(( (i * step + i / count) % ${#all[@]} ))]}"
  name=$(printf '%03d.png' "$i")
  w() { echo "${words[$(( ($1) % ${#words[@]} ))]}"; }
  if [ "$kind" = rec ]; then
    text="$(w $((i * 7))) $(w $((i * 3 + 5)))"
    convert -quiet "$photo" -resize '320x48^' -gravity center -extent 320x48 -fill white -colorize 65% \
      -font "$font" -pointsize 28 -fill black -gravity west -annotate +8+0 "$text" "${png_opts[@]}" "$out/$name"
  else
    l1="$(w $i) $(w $((i + 4)))" l2="$(w $((i * 5 + 1))) $(w $((i + 9)))" l3="$(w $((i * 3 + 2)))"
    text="$l1 | $l2 | $l3"
    pt=$(( size / 14 ))
    convert -quiet "$photo" -resize "${size}x${size}^" -gravity center -extent "${size}x${size}" -fill white -colorize 35% \
      -font "$bold" -pointsize "$pt" -fill black -gravity northwest \
      -annotate "+$(( size / 16 ))+$(( size / 8 ))" "$l1" -annotate "+$(( size / 10 ))+$(( size * 7 / 16 ))" "$l2" \
      -annotate "+$(( size / 20 ))+$(( size * 3 / 4 ))" "$l3" "${png_opts[@]}" "$out/$name"
  fi
  printf '%s\t%s\n' "$name" "$text" >> "$out/labels.txt.tmp"
done
mv "$out/labels.txt.tmp" "$out/labels.txt"
