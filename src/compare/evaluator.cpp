#include "compare/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "compare/pair_setup.h"
#include "runtime/session.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

// The evaluator runs one session at a time (a pass is one session over many batches), so its
// intra-op workers may spin between nodes instead of sleeping: no other session competes for the
// cores (the case docs/runtime.md measured against spinning). MobileNetV2 float, 300 images, 2
// cores, `bench_repair passes --images 300` three times each way: 4.58 s per pass spinning vs
// 5.06 s sleeping (means of the medians; docs/repair.md).
constexpr bool kSpinWhileScoring = true;

// Partial runs only for regions with at most this share of the model's heavy nodes.
constexpr double kMaxPartialCostShare = 0.5;

constexpr const char* kEverySampleNeeded = "(repair needs every sample decodable: remove it or fix it)";

runtime::SessionOptions scoring_options(int threads) {
  runtime::SessionOptions so;
  so.threads = threads;
  so.allow_spinning = kSpinWhileScoring;
  return so;
}

std::vector<size_t> every_row(size_t n) {
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

}  // namespace

Result<FeedTable> Evaluator::feed_all(const data::InputFeeder& feeder, const data::Preset& preset) const {
  const size_t n = files_.size();
  std::vector<Feed> feeds(n);
  std::vector<std::string> errors(n);
  tbb::parallel_for(size_t{0}, n, [&](size_t i) {
    auto sample = samples_.decode(i);
    if (!sample.ok()) { errors[i] = fmt::format("{} {}", sample.error().message, kEverySampleNeeded); return; }
    auto feed = feeder.feed(*sample, samples_.files()[i].name, preset);
    if (!feed.ok()) { errors[i] = feed.error().message; return; }
    feeds[i] = std::move(feed).value();
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{}", e);
  return FeedTable::from(std::move(feeds));
}

Result<data::InputFeeder> Evaluator::target_feeder(const runtime::Session& session, const data::Preset& preset) const {
  return data::InputFeeder::bind(samples_, input_slots(session), target_input_names_, preset, target_label_);
}

Result<std::unique_ptr<Evaluator>> Evaluator::create(const ModelSide& source, const ModelSide& target,
                                                     const fs::path& image_dir, const CompareOptions& options) {
  std::unique_ptr<Evaluator> e(new Evaluator());
  e->options_ = options;
  e->target_label_ = target.label;
  SetupOptions setup;
  setup.allow_spinning = kSpinWhileScoring;
  FETAFIX_ASSIGN_OR_RETURN(PairSetup p, set_up_pair(source, target, image_dir, options, setup));
  e->samples_ = std::move(p.samples);
  for (const auto& f : e->samples_.files()) e->files_.push_back(f.path);
  e->comparator_ = std::move(p.comparator);
  e->target_input_names_ = p.feeds.target.names();
  e->source_preset_ = p.feeds.source.preset();
  e->target_preset_ = p.feeds.target.preset();
  FETAFIX_ASSIGN_OR_RETURN(FeedTable source_inputs, e->feed_all(p.feeds.source, e->source_preset_));
  if (p.shared_feed) {
    e->target_inputs_ = source_inputs;
  } else {
    FETAFIX_ASSIGN_OR_RETURN(e->target_inputs_, e->feed_all(p.feeds.target, e->target_preset_));
  }
  const BatchRunner runner(*p.source_session, source.label, static_cast<size_t>(options.batch_size));
  FETAFIX_ASSIGN_OR_RETURN(e->source_outputs_, run_table(runner, source_inputs, {}));
  // Keep only what the comparator reads (an OCR map or a detector's anchors add up).
  const auto& used = e->comparator_->source_outputs();
  for (auto& outs : e->source_outputs_)
    for (size_t o = 0; o < outs.size(); ++o)
      if (std::find(used.begin(), used.end(), o) == used.end()) outs[o] = Tensor();
  if (e->comparator_->task().kind == "label")
    for (const auto& outs : e->source_outputs_) {
      const FloatValues scores(outs.at(used.at(0)));
      e->source_top1_.push_back(top_k(scores, 1).ids.at(0));
    }
  return e;
}

Status Evaluator::set_target_preset(const onnx::ModelProto& target, const data::Preset& preset) {
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, scoring_options(options_.threads), target_label_));
  FETAFIX_ASSIGN_OR_RETURN(data::InputFeeder feeder, target_feeder(*session, preset));
  FETAFIX_ASSIGN_OR_RETURN(target_inputs_, feed_all(feeder, feeder.preset()));
  target_preset_ = feeder.preset();
  return {};
}

Result<CandidateScore> Evaluator::tally(std::vector<SampleOutputs> outputs, std::span<const size_t> rows) const {
  CandidateScore s;
  const size_t n = rows.empty() ? files_.size() : rows.size();
  if (outputs.size() != n) return make_error("{}: {} results for {} samples", target_label_, outputs.size(), n);
  double distance = 0;
  for (size_t j = 0; j < n; ++j) {
    const size_t i = rows.empty() ? j : rows[j];
    FETAFIX_ASSIGN_OR_RETURN(Verdict v, comparator_->compare(source_outputs_[i], outputs[j]));
    if (const auto* label = std::get_if<LabelEvidence>(&v.evidence)) s.top1.push_back(label->target_in_source.at(0));
    s.agree.push_back(v.agree);
    s.disagreeing += !v.agree;
    distance += v.distance;
    s.verdicts.push_back(std::move(v));
  }
  s.discrepancy = n ? static_cast<double>(s.disagreeing) / n : 0;
  s.distance = n ? distance / n : 0;
  return s;
}

Result<CandidateScore> Evaluator::score_inputs(const onnx::ModelProto& target, const FeedTable& inputs,
                                               std::span<const size_t> subset) const {
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, scoring_options(options_.threads), target_label_));
  const BatchRunner runner(*session, target_label_, static_cast<size_t>(options_.batch_size));
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, run_table(runner, inputs, subset));
  ++full_runs_;
  return tally(std::move(outputs), subset);
}

Result<CandidateScore> Evaluator::score_full(const onnx::ModelProto& target, std::span<const size_t> subset) const {
  return score_inputs(target, target_inputs_, subset);
}

Result<CandidateScore> Evaluator::score(const onnx::ModelProto& target, std::span<const size_t> subset) const {
  if (base_ && budget_bytes_ > 0)
    if (auto partial = score_partial(target, subset)) return std::move(*partial);
  return score_full(target, subset);
}

Status Evaluator::set_base(const onnx::ModelProto& base, size_t budget_bytes) {
  base_ = base;
  base_fingerprint_ = model::ModelFingerprint(*base_);
  cache_.clear();
  cached_bytes_ = 0;
  base_values_.clear();
  base_probed_ = false;
  // Partial runs feed cached values for stacked samples and stand in for the first output only.
  const auto& read = comparator_->target_outputs();
  const bool first_output_only = read.size() == 1 && read[0] == 0;
  budget_bytes_ = files_.empty() || !target_inputs_.is_stacked() || !first_output_only ? 0 : budget_bytes;
  base_fixed_batch_ = 0;
  for (const auto& in : base.graph().input()) {
    bool is_weight = false;
    for (const auto& t : base.graph().initializer()) is_weight = is_weight || t.name() == in.name();
    if (is_weight) continue;
    const auto& shape = in.type().tensor_type().shape();
    if (shape.dim_size() > 0 && shape.dim(0).has_dim_value() && shape.dim(0).dim_value() > 0)
      base_fixed_batch_ = shape.dim(0).dim_value();
    break;
  }
  return {};
}

// Which values of the base are per-sample tensors (dim 0 follows the batch), with their types:
// one captured run on a few copies of the first sample. Done on the first partial score, not in
// set_base: a base whose candidates all run whole (the last kept edit, a weight group spanning
// the network) never pays for it.
bool Evaluator::probe_base() const {
  if (base_probed_) return budget_bytes_ > 0;
  base_probed_ = true;
  const size_t probe = base_fixed_batch_ > 1 ? static_cast<size_t>(base_fixed_batch_) : 3;
  const std::vector<size_t> rows(probe, 0);
  auto observed = runtime::observe_value_shapes(*base_, target_inputs_.gather(rows), options_.threads, target_label_);
  if (!observed.ok()) {
    budget_bytes_ = 0;  // the base cannot be probed: every score is a full run
    return false;
  }
  for (const auto& [name, info] : *observed) {
    if (info.shape.empty() || info.shape[0] != static_cast<int64_t>(probe)) continue;
    bool known = true;
    for (size_t d = 1; d < info.shape.size(); ++d) known = known && info.shape[d] >= 0;
    if (!known) continue;
    model::FrontierValue v;
    v.dtype = info.dtype;
    v.shape = info.shape;
    v.shape[0] = 1;
    base_values_[name] = std::move(v);
  }
  return true;
}

Status Evaluator::fill_frontier(const std::vector<std::string>& values, std::span<const size_t> rows) const {
  std::vector<size_t> missing;
  for (size_t i : rows) {
    bool have = true;
    for (const auto& v : values) {
      auto it = cache_.find(v);
      have = have && it != cache_.end() && it->second.filled[i];
    }
    if (!have) missing.push_back(i);
  }
  if (missing.empty()) return {};
  runtime::SessionOptions so;
  so.threads = options_.threads;
  so.capture = values;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(*base_, so, target_label_));
  const size_t first_capture = session->num_model_outputs();
  for (const auto& v : values) {
    if (cache_.count(v)) continue;
    const auto& info = base_values_.at(v);
    std::vector<int64_t> shape = info.shape;
    shape[0] = static_cast<int64_t>(files_.size());
    CachedValue c{Tensor(info.dtype, shape), std::vector<bool>(files_.size(), false)};
    cached_bytes_ += c.all.bytes.size();
    cache_.emplace(v, std::move(c));
  }
  const size_t fixed = base_fixed_batch_ > 1 ? static_cast<size_t>(base_fixed_batch_) : 0;
  const size_t batch = fixed ? fixed : static_cast<size_t>(std::max(options_.batch_size, 1));
  for (size_t first = 0; first < missing.size(); first += batch) {
    const size_t count = std::min(batch, missing.size() - first);
    std::vector<size_t> chunk(missing.begin() + static_cast<std::ptrdiff_t>(first),
                              missing.begin() + static_cast<std::ptrdiff_t>(first + count));
    while (fixed && chunk.size() < fixed) chunk.push_back(chunk.back());
    FETAFIX_ASSIGN_OR_RETURN(auto outs, session->run(target_inputs_.gather(chunk)));
    for (size_t k = 0; k < values.size(); ++k) {
      CachedValue& c = cache_.at(values[k]);
      const Tensor& got = outs.at(first_capture + k);
      const size_t row_bytes = c.all.bytes.size() / files_.size();
      if (got.dtype != c.all.dtype || got.bytes.size() < count * row_bytes)
        return make_error("{}: value '{}' changed type or shape between samples", target_label_, values[k]);
      for (size_t j = 0; j < count; ++j) {
        std::memcpy(c.all.bytes.data() + missing[first + j] * row_bytes, got.bytes.data() + j * row_bytes, row_bytes);
        c.filled[missing[first + j]] = true;
      }
    }
  }
  return {};
}

std::optional<Result<CandidateScore>> Evaluator::score_partial(const onnx::ModelProto& target,
                                                               std::span<const size_t> subset) const {
  auto region = model::find_changed_region(base_fingerprint_, target);
  // Filling the cache costs a run of the base with its values captured (no graph
  // optimizations), so a region holding most of the work is cheaper run whole.
  if (!region || region->frontier.empty() || region->cost_share > kMaxPartialCostShare) return std::nullopt;
  if (!probe_base()) return std::nullopt;
  size_t region_bytes = 0;
  std::map<std::string, model::FrontierValue> frontier;
  for (const auto& v : region->frontier) {
    auto it = base_values_.find(v);
    if (it == base_values_.end()) return std::nullopt;  // not a per-sample tensor (e.g. a shape)
    const DType t = it->second.dtype;
    if (t == DType::kInt64 || t == DType::kInt32) return std::nullopt;  // index/shape math: batch-dependent
    region_bytes += static_cast<size_t>(shape_numel(it->second.shape)) * dtype_size(t) * files_.size();
    model::FrontierValue f = it->second;
    f.shape[0] = base_fixed_batch_ > 0 ? base_fixed_batch_ : -1;
    frontier[v] = std::move(f);
  }
  if (region_bytes > budget_bytes_) return std::nullopt;
  if (cached_bytes_ + region_bytes > budget_bytes_) {  // make room: keep only this frontier's values
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (frontier.count(it->first)) { ++it; continue; }
      cached_bytes_ -= it->second.all.bytes.size();
      it = cache_.erase(it);
    }
  }
  const std::vector<size_t> all_rows = subset.empty() ? every_row(files_.size()) : std::vector<size_t>{};
  const std::span<const size_t> rows = subset.empty() ? std::span<const size_t>(all_rows) : subset;
  if (!fill_frontier(region->frontier, rows).ok()) return std::nullopt;
  auto sub = model::extract_region(target, *region, frontier);
  if (!sub.ok()) return std::nullopt;
  runtime::SessionOptions so;
  so.threads = options_.threads;
  auto session = runtime::Session::create(*sub, so, target_label_);
  if (!session.ok()) return std::nullopt;
  // Feed the frontier in the order the sub-model declares its inputs.
  std::vector<const CachedValue*> feeds;
  for (const auto& in : (*session)->inputs()) feeds.push_back(&cache_.at(in.name));
  const size_t fixed = base_fixed_batch_ > 1 ? static_cast<size_t>(base_fixed_batch_) : 0;
  const size_t batch = fixed ? fixed : static_cast<size_t>(std::max(options_.batch_size, 1));
  std::vector<SampleOutputs> outputs;
  for (size_t first = 0; first < rows.size(); first += batch) {
    const size_t count = std::min(batch, rows.size() - first);
    std::vector<size_t> chunk(rows.begin() + static_cast<std::ptrdiff_t>(first),
                              rows.begin() + static_cast<std::ptrdiff_t>(first + count));
    while (fixed && chunk.size() < fixed) chunk.push_back(chunk.back());
    std::vector<Tensor> inputs;
    for (const auto* f : feeds) inputs.push_back(gather_rows(f->all, chunk));
    auto outs = (*session)->run(inputs);
    if (!outs.ok()) return std::nullopt;
    const Tensor& out = outs->at(0);  // the region computes the Target's first output
    if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(chunk.size())) return std::nullopt;
    for (size_t j = 0; j < count; ++j) {
      const size_t one[] = {j};
      SampleOutputs sample(1);  // the comparator reads only output 0 (set_base checked)
      sample[0] = gather_rows(out, one);
      outputs.push_back(std::move(sample));
    }
  }
  auto s = tally(std::move(outputs), subset);
  if (s.ok()) {
    s->partial = true;
    ++partial_runs_;
  }
  return s;
}

Result<CandidateScore> Evaluator::score_with_preset(const onnx::ModelProto& target, const data::Preset& preset) const {
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, scoring_options(options_.threads), target_label_));
  FETAFIX_ASSIGN_OR_RETURN(data::InputFeeder feeder, target_feeder(*session, preset));
  FETAFIX_ASSIGN_OR_RETURN(FeedTable inputs, feed_all(feeder, feeder.preset()));
  return score_inputs(target, inputs, {});
}

}  // namespace fetafix::compare
