// The evaluation corpus: Source/Target pairs mirroring the rows of the paper's Table 2, made by
// planting known faults (and harmless rewrites) into real and built models. Each case is a
// folder with source.onnx, target.onnx and case.json (presets, faults, expected counts, the
// injection ground truth without its edit list). Deterministic: the same options give the same
// bytes. Cases list and case.json schema: docs/corpus.md.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace fetafix::inject {

struct CorpusCase {
  std::string name;                 // folder name, e.g. "mobilenetv2-wb-int8-tensor"
  std::string kind;                 // "single" (one fault type), "multi", or "benign"
  std::string model;                // base model: mobilenetv2, resnet101v2, resnet101v2-normalized,
                                    // inceptionv3, inceptionv3-nhwc, paddleocr
  std::vector<std::string> faults;  // fetafix inject specs, applied in order
  std::string paper_row;            // the Table 2 row it mirrors
  std::string note;                 // why it is built this way
  // Preset fields changed for both models of this case (written as preset.json over the base
  // model's preset), e.g. the crop a PP case's Target preset implies; null: the base's preset.
  nlohmann::json preset_overrides = nullptr;
  // Task cases (issue 11, task_corpus.cpp): the `fetafix --task` spec ("" = label, fed the
  // evaluation's photos) and the sample set written for it (one of task_sample_kinds(); "" for
  // label cases).
  std::string task = "";
  std::string samples = "";
};

// Every case, in the order they are written.
const std::vector<CorpusCase>& corpus_cases();

struct CorpusOptions {
  std::filesystem::path output;              // <build>/corpus
  std::filesystem::path assets;              // ../shared/assets; "" or missing: those cases are skipped
  std::filesystem::path calibration_photos;  // BatchNorm calibration of the built models
  size_t calibration_count = 32;             // evenly spaced over the folder's sorted images
  double resnet_width = 0.25;
  double inception_width = 0.25;
  // Case names to write (exact); empty = all.
  std::vector<std::string> only;
  // The PP-OCRv4 models (third_party/ocr-models); "" or missing: their cases are skipped.
  std::filesystem::path ocr_models;
  // Samples per half (detection, validation) of each task sample set.
  int task_samples = 16;
  // Renders OCR samples: kind "det" (size x size photos with text) or "rec" (320x48 lines), files
  // first.png .. (first + count - 1).png into dir (scripts/make_ocr_samples.sh; the tool passes
  // it). Unset, or no file written: the OCR cases are skipped.
  std::function<Status(const std::string& kind, const std::filesystem::path& dir, int count, int first, int size)>
      render_ocr_samples;
};

struct CorpusCaseStatus {
  std::string name;
  bool written = false;
  std::string skipped_reason;  // when not written
};

// Writes each selected case to output/<name>/ (atomically, file by file) and output/index.json.
// A case whose base model needs an asset that is absent is skipped with the reason; any other
// failure is an error naming the case.
Result<std::vector<CorpusCaseStatus>> write_corpus(const CorpusOptions& options);

}  // namespace fetafix::inject
