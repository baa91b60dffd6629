// Scores many Target candidates against one Source run on the same images: the Source's
// class probabilities and the Target's preprocessed inputs are computed once and kept, so a
// candidate costs one Target session and one inference pass — no decoding, no Source run.
// Two ways to pay less than a pass: score a subset of the images (repair screens candidates
// on the disagreeing ones), and partial re-execution — given a base (the last accepted
// Target), a candidate that only changes nodes downstream of some values is run from those
// values, cached from a run of the base (docs/repair.md). Repair decides every edit with it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <map>
#include <optional>
#include <span>
#include <unordered_set>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "compare/compare.h"
#include "model/region.h"

namespace fetafix::compare {

struct CandidateScore {
  size_t disagreeing = 0;        // images whose top-1 differs from the Source's
  double discrepancy = 0;        // disagreeing / images
  double distance = 0;           // mean L1 distance between the probability vectors (tie-breaker)
  std::vector<int64_t> top1;     // per image, in the Source's numbering (-1: no Source class)
  std::vector<bool> agree;       // per image
  bool partial = false;          // computed by partial re-execution from cached base values
};

class LabelEvaluator {
 public:
  // Decodes every image once. Fails on the first image that cannot be decoded (repair needs
  // the same image set for every decision).
  static Result<std::unique_ptr<LabelEvaluator>> create(const ModelSide& source, const ModelSide& target,
                                                        const std::filesystem::path& image_dir,
                                                        const CompareOptions& options);

  // Scores a Target candidate fed the preprocessing the evaluator was made with, on every
  // image or on `subset` (indices into files(), ascending; the score's vectors follow it).
  // Runs partially when a base is set and the candidate's change allows it.
  Result<CandidateScore> score(const onnx::ModelProto& target, std::span<const size_t> subset = {}) const;
  // The same, always a full run.
  Result<CandidateScore> score_full(const onnx::ModelProto& target, std::span<const size_t> subset = {}) const;

  // Partial re-execution against `base` (forgets the values cached for the previous base).
  // budget_bytes bounds the cached frontier values; 0 turns partial execution off.
  Status set_base(const onnx::ModelProto& base, size_t budget_bytes = size_t{1} << 30);
  size_t partial_runs() const { return partial_runs_; }
  size_t full_runs() const { return full_runs_; }
  // Scores a Target candidate fed another preset (decodes the images again).
  Result<CandidateScore> score_with_preset(const onnx::ModelProto& target, const data::Preset& preset) const;
  // Makes `preset` the one score() uses from now on (after a kept PP repair).
  Status set_target_preset(const onnx::ModelProto& target, const data::Preset& preset);

  size_t images() const { return files_.size(); }
  const std::vector<std::filesystem::path>& files() const { return files_; }
  const std::vector<int64_t>& source_top1() const { return source_top1_; }
  const data::Preset& target_preset() const { return target_preset_; }
  const data::Preset& source_preset() const { return source_preset_; }

 private:
  LabelEvaluator() = default;
  Result<Tensor> preprocess_all(const data::Preset& bound) const;
  // Both sides' inputs from one decode of each image.
  Status preprocess_both(const data::Preset& source, const data::Preset& target, Tensor& source_out,
                         Tensor& target_out) const;
  Result<CandidateScore> score_inputs(const onnx::ModelProto& target, const Tensor& inputs,
                                      std::span<const size_t> subset) const;
  Result<CandidateScore> tally(const std::vector<float>& scores, int64_t classes, std::span<const size_t> rows) const;
  // nullopt: the candidate needs a full run.
  std::optional<Result<CandidateScore>> score_partial(const onnx::ModelProto& target,
                                                      std::span<const size_t> subset) const;
  Status fill_frontier(const std::vector<std::string>& values, std::span<const size_t> rows) const;
  bool probe_base() const;  // false: partial runs are off for this base

  struct CachedValue {
    Tensor all;                 // [images, ...]
    std::vector<bool> filled;   // per image
  };

  std::vector<std::filesystem::path> files_;
  std::vector<float> source_probs_;   // images x source_classes
  std::vector<int64_t> source_top1_;
  int64_t source_classes_ = 0;
  data::Preset source_preset_;        // bound
  data::Preset target_preset_;        // bound
  Tensor target_inputs_;              // [images, ...] in target_preset_
  std::string target_label_;
  CompareOptions options_;

  // Partial re-execution state.
  std::optional<onnx::ModelProto> base_;
  model::ModelFingerprint base_fingerprint_;
  mutable std::map<std::string, model::FrontierValue> base_values_;  // per-image values of the base: type, shape (dim 0 = 1)
  mutable bool base_probed_ = false;
  int64_t base_fixed_batch_ = 0;
  mutable size_t budget_bytes_ = 0;
  mutable std::map<std::string, CachedValue> cache_;
  mutable size_t cached_bytes_ = 0;
  mutable size_t partial_runs_ = 0, full_runs_ = 0;
};

}  // namespace fetafix::compare
