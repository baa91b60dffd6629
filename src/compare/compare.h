// `fetafix compare`: run Source and Target over an image folder and measure where their
// labels disagree. Decoding and preprocessing run on worker threads, overlapped with
// inference, so the models are the bottleneck, not the JPEG decoder.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <onnx/onnx_pb.h>

#include "common/progress.h"
#include "common/result.h"
#include "compare/labels.h"
#include "data/preprocess.h"

namespace fetafix::compare {

struct ModelSide {
  const onnx::ModelProto* model = nullptr;
  std::string label;     // how errors and reports name it (its path)
  data::Preset preset;   // may leave size/layout to the model
};

struct CompareOptions {
  int top_k = 5;
  bool top_k_given = false;             // asked for explicitly: more than the class count is an error, not clamped
  std::optional<int64_t> label_offset;  // Target label - offset = Source label
  int threads = 0;                      // ONNX Runtime intra-op threads per model; 0 = one per core
  int batch_size = 8;
  bool strict = false;                  // a corrupt image is an error instead of skipped
  ProgressMode progress = ProgressMode::kAuto;
};

struct ImageRecord {
  std::string file;    // relative to the image folder
  std::string error;   // why the image was skipped; empty when compared
  TopK source;
  TopK target;         // ids in the Target's own numbering
  std::vector<int64_t> target_in_source;  // target.ids mapped through the label offset
  bool agree = false;                     // top-1 equal (after the offset)
  double top_k_overlap = 0;
};

struct Summary {
  size_t images_found = 0;
  size_t images_compared = 0;
  size_t images_skipped = 0;
  size_t disagreeing = 0;
  double discrepancy = 0;        // disagreeing / compared: the paper's label discrepancy
  double top_k_agreement = 0;    // mean |top-k(S) ∩ top-k(T)| / k
  double source_top1_in_target_top_k = 0;  // share of images whose Source top-1 is in the Target's top-k
  int top_k = 0;
  int64_t label_offset = 0;
  int64_t source_classes = 0;
  int64_t target_classes = 0;
  double seconds = 0;
  double images_per_second = 0;
};

struct CompareResult {
  std::filesystem::path image_dir;
  std::string source_label, target_label;
  data::Preset source_preset, target_preset;  // bound to the models' inputs
  std::vector<ImageRecord> records;           // one per image found, in dataset order
  Summary summary;
  std::vector<std::string> warnings;
};

// Classes per image of the model's first output as declared ([N,1000] -> 1000); 0 when a dim
// after the batch is unknown.
int64_t declared_classes(const onnx::ModelProto& model);

// --top-k and --label-offset against the class counts (0 = not known yet: not checked). Errors
// (exit 2): top_k_given and top_k larger than the smaller count; an offset that does not map
// the Target's labels onto the Source's, i.e. outside [min(0, T-S), max(0, T-S)] (only 0 when
// both have as many classes, 1 for a 1001-class Target over a 1000-class Source).
Status check_label_options(const CompareOptions& options, int64_t source_classes, int64_t target_classes);

Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target,
                                     const std::filesystem::path& image_dir, const CompareOptions& options);

// The JSON document of `fetafix compare --json` (schema: docs/compare-json.md).
nlohmann::json to_json(const CompareResult& result);

// The human-readable report printed on stdout.
std::string format_report(const CompareResult& result, size_t max_listed = 20);

}  // namespace fetafix::compare
