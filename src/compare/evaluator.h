// Scores many Target candidates against one Source run on the same images: the Source's
// class probabilities and the Target's preprocessed inputs are computed once and kept, so a
// candidate costs one Target session and one inference pass — no decoding, no Source run.
// Repair decides every edit with it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "compare/compare.h"

namespace fetafix::compare {

struct CandidateScore {
  size_t disagreeing = 0;        // images whose top-1 differs from the Source's
  double discrepancy = 0;        // disagreeing / images
  double distance = 0;           // mean L1 distance between the probability vectors (tie-breaker)
  std::vector<int64_t> top1;     // per image, in the Source's numbering (-1: no Source class)
  std::vector<bool> agree;       // per image
};

class LabelEvaluator {
 public:
  // Decodes every image once. Fails on the first image that cannot be decoded (repair needs
  // the same image set for every decision).
  static Result<std::unique_ptr<LabelEvaluator>> create(const ModelSide& source, const ModelSide& target,
                                                        const std::filesystem::path& image_dir,
                                                        const CompareOptions& options);

  // Scores a Target candidate fed the preprocessing the evaluator was made with.
  Result<CandidateScore> score(const onnx::ModelProto& target) const;
  // Scores a Target candidate fed another preset (decodes the images again).
  Result<CandidateScore> score_with_preset(const onnx::ModelProto& target, const data::Preset& preset) const;
  // Makes `preset` the one score() uses from now on (after a kept PP repair).
  Status set_target_preset(const onnx::ModelProto& target, const data::Preset& preset);

  size_t images() const { return files_.size(); }
  const std::vector<std::filesystem::path>& files() const { return files_; }
  const std::vector<int64_t>& source_top1() const { return source_top1_; }
  const data::Preset& target_preset() const { return target_preset_; }

 private:
  LabelEvaluator() = default;
  Result<Tensor> preprocess_all(const data::Preset& bound) const;
  Result<CandidateScore> score_inputs(const onnx::ModelProto& target, const Tensor& inputs) const;

  std::vector<std::filesystem::path> files_;
  std::vector<float> source_probs_;   // images x source_classes
  std::vector<int64_t> source_top1_;
  int64_t source_classes_ = 0;
  data::Preset target_preset_;        // bound
  Tensor target_inputs_;              // [images, ...] in target_preset_
  std::string target_label_;
  CompareOptions options_;
};

}  // namespace fetafix::compare
