// Scores many Target candidates against one Source run on the same samples: the Source's
// outputs (those the task's comparator reads) and the Target's fed inputs are computed once
// and kept, so a candidate costs one Target session and one inference pass — no decoding, no
// Source run. Any task and any sample data (compare/compare.h): the verdicts come from the
// comparator (compare/comparator.h), so "fewer disagree, then closer" means the same on a
// classifier, a detector or an OCR model. Two ways to pay less than a pass: score a subset of
// the samples (repair screens candidates on the disagreeing ones), and partial re-execution —
// given a base (the last accepted Target), a candidate that only changes nodes downstream of
// some values is run from those values, cached from a run of the base (docs/repair.md); it
// applies when the comparator reads only the Target's first output and every sample's inputs
// stack into one batch. Repair decides every edit with it.
//
// With several ranks (CompareOptions::comm, mpirun) each rank decodes, feeds and runs only its
// share of the samples (compare/shard.h); every score gathers the per-sample verdicts, so every
// rank returns the same CandidateScore — the one a single process would — and the caller (the
// repair loop) takes the same decisions everywhere. Every public call is then collective: each
// rank must make it, in the same order (docs/scaling.md).
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
#include "compare/comparator.h"
#include "compare/compare.h"
#include "compare/runner.h"
#include "compare/shard.h"
#include "data/samples.h"
#include "model/region.h"

namespace fetafix::compare {

struct CandidateScore {
  size_t disagreeing = 0;        // samples the comparator says disagree
  double discrepancy = 0;        // disagreeing / samples
  double distance = 0;           // mean of the comparator's distances (tie-breaker; label: L1 between
                                 // the probability vectors)
  std::vector<int64_t> top1;     // label tasks: per sample, in the Source's numbering (-1: no Source class)
  std::vector<bool> agree;       // per sample
  std::vector<Verdict> verdicts; // per sample: agree, distance, detail, evidence
  bool partial = false;          // computed by partial re-execution from cached base values
};

class Evaluator {
 public:
  // Decodes and feeds every sample once. Fails on the first sample that cannot be decoded
  // (repair needs the same sample set for every decision).
  static Result<std::unique_ptr<Evaluator>> create(const ModelSide& source, const ModelSide& target,
                                                   const std::filesystem::path& image_dir,
                                                   const CompareOptions& options);
  // The same on samples already opened (a folder, or arrays held in memory).
  static Result<std::unique_ptr<Evaluator>> create(const ModelSide& source, const ModelSide& target,
                                                   data::SampleSet samples, const CompareOptions& options);

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
  // Scores a Target candidate fed another preset (decodes the samples again; the Target's
  // inputs must take images).
  Result<CandidateScore> score_with_preset(const onnx::ModelProto& target, const data::Preset& preset) const;
  // Makes `preset` the one score() uses from now on (after a kept PP repair, or an ID edit
  // that changed the Target's input): the feeds are bound to `target`'s inputs again.
  Status set_target_preset(const onnx::ModelProto& target, const data::Preset& preset);

  size_t images() const { return files_.size(); }  // samples (every rank's)
  const std::vector<std::filesystem::path>& files() const { return files_; }
  const std::vector<int64_t>& source_top1() const { return source_top1_; }  // label tasks; empty otherwise
  const Shard& shard() const { return shard_; }  // the samples this rank runs
  const data::Preset& target_preset() const { return target_preset_; }
  const data::Preset& source_preset() const { return source_preset_; }
  const Comparator& comparator() const { return *comparator_; }
  const data::SampleSet& samples() const { return samples_; }
  bool image_input() const { return samples_.has(data::SampleKind::kImage); }

 private:
  Evaluator() = default;
  // This rank's samples' inputs, fed through `feeder` with `preset` (bound). Collective.
  Result<FeedTable> feed_all(const data::InputFeeder& feeder, const data::Preset& preset) const;
  // A feeder for `target`'s own inputs (an ID edit may have changed them), on every rank. Collective.
  Result<data::InputFeeder> target_feeder(const onnx::ModelProto& target, const data::Preset& preset) const;
  // Whether every rank's Target inputs stack, with the same shapes (partial runs need it). Collective.
  bool stacks_everywhere() const;
  // The Source's outputs on this rank's samples (and every sample's top-1 for label tasks). Collective.
  Status run_source(const runtime::Session& session, const FeedTable& inputs, const std::string& label);
  Result<CandidateScore> score_inputs(const onnx::ModelProto& target, const FeedTable& inputs,
                                      std::span<const size_t> subset) const;
  // The verdicts of this rank's `local` rows (positions in shard().owned()) from the Target's outputs.
  Result<std::vector<Verdict>> verdicts_of(std::vector<SampleOutputs> outputs, std::span<const size_t> local) const;
  // Every rank's verdicts for `rows` (global), merged and counted. Collective.
  Result<CandidateScore> tally(std::span<const size_t> rows, RankPart<Verdict> mine, bool partial) const;
  // nullopt: the candidate needs a full run (on every rank: collective).
  std::optional<Result<CandidateScore>> score_partial(const onnx::ModelProto& target,
                                                      std::span<const size_t> subset) const;
  // This rank's part of a partial score; nullopt when it cannot run partially here.
  std::optional<RankPart<Verdict>> run_partial(const onnx::ModelProto& target, const model::ChangedRegion& region,
                                               const std::map<std::string, model::FrontierValue>& frontier,
                                               std::span<const size_t> rows) const;
  Status fill_frontier(const std::vector<std::string>& values, std::span<const size_t> local) const;
  bool probe_base() const;  // false: partial runs are off for this base (the same on every rank)

  struct CachedValue {
    Tensor all;                 // [this rank's samples, ...]
    std::vector<bool> filled;   // per sample of this rank
    size_t budgeted_bytes = 0;  // what it would take for every sample: the budget counts these, so
                                // every rank (and one process alone) evicts the same values
  };

  const Communicator* comm_ = &single_process();
  Shard shard_;
  bool stacked_ = false;  // every rank's Target inputs stack alike (stacks_everywhere)
  std::vector<std::filesystem::path> files_;
  data::SampleSet samples_;
  std::vector<std::vector<std::string>> target_input_names_;  // what each Target input answers to
  std::unique_ptr<Comparator> comparator_;
  std::vector<SampleOutputs> source_outputs_;  // per sample of this rank; outputs the comparator does not read are empty
  std::vector<int64_t> source_top1_;
  data::Preset source_preset_;        // bound (when the samples are images)
  data::Preset target_preset_;        // bound
  FeedTable target_inputs_;           // this rank's samples, fed with target_preset_
  std::string target_label_;
  CompareOptions options_;

  // Partial re-execution state.
  std::optional<onnx::ModelProto> base_;
  model::ModelFingerprint base_fingerprint_;
  mutable std::map<std::string, model::FrontierValue> base_values_;  // per-sample values of the base: type, shape (dim 0 = 1)
  mutable bool base_probed_ = false;
  int64_t base_fixed_batch_ = 0;
  mutable size_t budget_bytes_ = 0;
  mutable std::map<std::string, CachedValue> cache_;
  mutable size_t cached_bytes_ = 0;
  mutable size_t partial_runs_ = 0, full_runs_ = 0;
};

// The name repair and localize know it by: it began as the label-only evaluator.
using LabelEvaluator = Evaluator;

}  // namespace fetafix::compare
