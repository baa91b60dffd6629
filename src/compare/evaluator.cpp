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

// What a stacked table's rows look like (dtype and shape after dim 0, per input).
std::string row_signature(const FeedTable& table) {
  std::string sig;
  for (const auto& t : table.stacked) {
    sig += std::string(dtype_name(t.dtype));
    for (size_t d = 1; d < t.shape.size(); ++d) sig += fmt::format(",{}", t.shape[d]);
    sig += ';';
  }
  return sig;
}

}  // namespace

Result<FeedTable> Evaluator::feed_all(const data::InputFeeder& feeder, const data::Preset& preset) const {
  const auto& owned = shard_.owned();
  std::vector<Feed> feeds(owned.size());
  std::vector<std::string> errors(owned.size());
  tbb::parallel_for(size_t{0}, owned.size(), [&](size_t j) {
    const size_t i = owned[j];
    auto sample = samples_.decode(i);
    if (!sample.ok()) { errors[j] = fmt::format("{} {}", sample.error().message, kEverySampleNeeded); return; }
    auto feed = feeder.feed(*sample, samples_.files()[i].name, preset);
    if (!feed.ok()) { errors[j] = feed.error().message; return; }
    feeds[j] = std::move(feed).value();
  });
  RankPart<uint8_t> part;  // the first sample that fails, on any rank
  for (size_t j = 0; j < owned.size() && !part.error; ++j)
    if (!errors[j].empty()) part.fail(owned[j], make_error("{}", errors[j]));
  FETAFIX_TRY_STATUS(merge_rows(*comm_, shard_, {}, std::move(part)));
  return FeedTable::from(std::move(feeds));
}

Result<data::InputFeeder> Evaluator::target_feeder(const onnx::ModelProto& target, const data::Preset& preset) const {
  auto session = runtime::Session::create(target, scoring_options(options_.threads), target_label_);
  auto feeder = session.ok() ? data::InputFeeder::bind(samples_, input_slots(**session), target_input_names_, preset,
                                                       target_label_)
                             : Result<data::InputFeeder>(session.error());
  FETAFIX_TRY_STATUS(agree(*comm_, feeder.ok() ? Status() : Status(feeder.error())));
  return feeder;
}

bool Evaluator::stacks_everywhere() const {
  const bool empty = target_inputs_.size() == 0 && !target_inputs_.is_stacked();
  const std::string mine = empty ? "" : target_inputs_.is_stacked() ? row_signature(target_inputs_) : "-";
  std::string first;
  for (const auto& sig : comm_->all_gather(mine)) {
    if (sig == "-") return false;
    if (sig.empty()) continue;  // a rank without samples
    if (first.empty()) first = sig;
    if (sig != first) return false;
  }
  return !first.empty();
}

Status Evaluator::run_source(const runtime::Session& session, const FeedTable& inputs, const std::string& label) {
  const BatchRunner runner(session, label, static_cast<size_t>(options_.batch_size));
  const auto local = shard_.all_local_rows();
  auto outputs = local.empty() ? Result<std::vector<SampleOutputs>>(std::vector<SampleOutputs>{})
                               : run_table(runner, inputs, local);
  FETAFIX_TRY_STATUS(agree(*comm_, outputs.ok() ? Status() : Status(outputs.error())));
  source_outputs_ = std::move(outputs).value();
  // Keep only what the comparator reads (an OCR map or a detector's anchors add up).
  const auto& used = comparator_->source_outputs();
  for (auto& outs : source_outputs_)
    for (size_t o = 0; o < outs.size(); ++o)
      if (std::find(used.begin(), used.end(), o) == used.end()) outs[o] = Tensor();
  if (comparator_->task().kind != "label") return {};
  RankPart<int64_t> top1;
  for (const auto& outs : source_outputs_) {
    const FloatValues scores(outs.at(used.at(0)));
    top1.items.push_back(top_k(scores, 1).ids.at(0));
  }
  FETAFIX_ASSIGN_OR_RETURN(source_top1_, merge_rows(*comm_, shard_, every_sample(files_.size()), std::move(top1)));
  return {};
}

Result<std::unique_ptr<Evaluator>> Evaluator::create(const ModelSide& source, const ModelSide& target,
                                                     const fs::path& image_dir, const CompareOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(data::SampleSet samples, open_samples(image_dir, options));
  return create(source, target, std::move(samples), options);
}

Result<std::unique_ptr<Evaluator>> Evaluator::create(const ModelSide& source, const ModelSide& target,
                                                     data::SampleSet samples, const CompareOptions& options) {
  std::unique_ptr<Evaluator> e(new Evaluator());
  e->options_ = options;
  e->target_label_ = target.label;
  e->comm_ = &ranks_of(options);
  SetupOptions setup;
  setup.allow_spinning = kSpinWhileScoring;
  FETAFIX_ASSIGN_OR_RETURN(PairSetup p, set_up_pair(source, target, std::move(samples), options, setup));
  e->samples_ = std::move(p.samples);
  for (const auto& f : e->samples_.files()) e->files_.push_back(f.path);
  e->shard_ = Shard(e->files_.size(), static_cast<size_t>(options.batch_size), *e->comm_);
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
  e->stacked_ = e->stacks_everywhere();
  FETAFIX_TRY_STATUS(e->run_source(*p.source_session, source_inputs, source.label));
  return e;
}

Status Evaluator::set_target_preset(const onnx::ModelProto& target, const data::Preset& preset) {
  FETAFIX_ASSIGN_OR_RETURN(data::InputFeeder feeder, target_feeder(target, preset));
  FETAFIX_ASSIGN_OR_RETURN(target_inputs_, feed_all(feeder, feeder.preset()));
  target_preset_ = feeder.preset();
  stacked_ = stacks_everywhere();
  return {};
}

Result<std::vector<Verdict>> Evaluator::verdicts_of(std::vector<SampleOutputs> outputs,
                                                    std::span<const size_t> local) const {
  if (outputs.size() != local.size())
    return make_error("{}: {} results for {} samples", target_label_, outputs.size(), local.size());
  std::vector<Verdict> verdicts;
  verdicts.reserve(local.size());
  for (size_t j = 0; j < local.size(); ++j) {
    FETAFIX_ASSIGN_OR_RETURN(Verdict v, comparator_->compare(source_outputs_[local[j]], outputs[j]));
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

Result<CandidateScore> Evaluator::tally(std::span<const size_t> rows, RankPart<Verdict> mine, bool partial) const {
  FETAFIX_ASSIGN_OR_RETURN(std::vector<Verdict> verdicts, merge_rows(*comm_, shard_, rows, std::move(mine)));
  CandidateScore s;
  s.partial = partial;
  const size_t n = verdicts.size();
  double distance = 0;  // summed in sample order: the same bits on every rank and in one process
  for (auto& v : verdicts) {
    if (const auto* label = std::get_if<LabelEvidence>(&v.evidence)) s.top1.push_back(label->target_in_source.at(0));
    s.agree.push_back(v.agree);
    s.disagreeing += !v.agree;
    distance += v.distance;
  }
  s.verdicts = std::move(verdicts);
  s.discrepancy = n ? static_cast<double>(s.disagreeing) / n : 0;
  s.distance = n ? distance / n : 0;
  return s;
}

Result<CandidateScore> Evaluator::score_inputs(const onnx::ModelProto& target, const FeedTable& inputs,
                                               std::span<const size_t> subset) const {
  const std::vector<size_t> every = subset.empty() ? every_sample(files_.size()) : std::vector<size_t>{};
  const std::span<const size_t> rows = subset.empty() ? std::span<const size_t>(every) : subset;
  const std::vector<size_t> local = shard_.local_rows(rows);
  RankPart<Verdict> mine;
  if (!local.empty()) {  // a rank may hold none of a subset
    auto verdicts = [&]() -> Result<std::vector<Verdict>> {
      FETAFIX_ASSIGN_OR_RETURN(auto session,
                               runtime::Session::create(target, scoring_options(options_.threads), target_label_));
      const BatchRunner runner(*session, target_label_, static_cast<size_t>(options_.batch_size));
      FETAFIX_ASSIGN_OR_RETURN(auto outputs, run_table(runner, inputs, local));
      return verdicts_of(std::move(outputs), local);
    }();
    if (verdicts.ok()) mine.items = std::move(verdicts).value();
    else mine.fail(shard_.owned()[local.front()], verdicts.error());
  }
  ++full_runs_;
  return tally(rows, std::move(mine), false);
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
  budget_bytes_ = files_.empty() || !stacked_ || !first_output_only ? 0 : budget_bytes;
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

namespace {

// Which values of a base are per-sample tensors, as rank 0 observed them, for the others.
std::string encode_values(const std::map<std::string, model::FrontierValue>& values) {
  ByteWriter w;
  w.put(static_cast<uint8_t>(1));
  for (const auto& [name, v] : values) {
    w.put(name);
    w.put(v.dtype);
    w.put(v.shape);
  }
  return w.take();
}

std::map<std::string, model::FrontierValue> decode_values(const std::string& bytes) {
  std::map<std::string, model::FrontierValue> values;
  ByteReader r(bytes);
  r.get<uint8_t>();
  while (r.ok() && r.remaining() > 0) {
    const std::string name = r.get_string();
    model::FrontierValue v;
    v.dtype = r.get<DType>();
    r.get(v.shape);
    values[name] = std::move(v);
  }
  return values;
}

}  // namespace

// Which values of the base are per-sample tensors (dim 0 follows the batch), with their types:
// one captured run on a few copies of the first sample. Done on the first partial score, not in
// set_base: a base whose candidates all run whole (the last kept edit, a weight group spanning
// the network) never pays for it. Rank 0 (which holds the first sample) probes for every rank.
bool Evaluator::probe_base() const {
  if (base_probed_) return budget_bytes_ > 0;
  base_probed_ = true;
  std::string probed;  // empty: the base cannot be probed
  if (comm_->is_root()) {
    const size_t probe = base_fixed_batch_ > 1 ? static_cast<size_t>(base_fixed_batch_) : 3;
    const std::vector<size_t> rows(probe, 0);
    auto observed = runtime::observe_value_shapes(*base_, target_inputs_.gather(rows), options_.threads, target_label_);
    std::map<std::string, model::FrontierValue> values;
    for (const auto& [name, info] : observed.ok() ? *observed : std::map<std::string, runtime::ValueInfo>{}) {
      if (info.shape.empty() || info.shape[0] != static_cast<int64_t>(probe)) continue;
      bool known = true;
      for (size_t d = 1; d < info.shape.size(); ++d) known = known && info.shape[d] >= 0;
      if (!known) continue;
      model::FrontierValue v;
      v.dtype = info.dtype;
      v.shape = info.shape;
      v.shape[0] = 1;
      values[name] = std::move(v);
    }
    if (observed.ok()) probed = encode_values(values);
  }
  comm_->broadcast(probed, 0);
  if (probed.empty()) {
    budget_bytes_ = 0;  // every score is a full run
    return false;
  }
  base_values_ = decode_values(probed);
  return true;
}

Status Evaluator::fill_frontier(const std::vector<std::string>& values, std::span<const size_t> local) const {
  std::vector<size_t> missing;
  for (size_t i : local) {
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
  const size_t mine = shard_.owned().size();
  for (const auto& v : values) {
    if (cache_.count(v)) continue;
    const auto& info = base_values_.at(v);
    std::vector<int64_t> shape = info.shape;
    shape[0] = static_cast<int64_t>(mine);
    CachedValue c{Tensor(info.dtype, shape), std::vector<bool>(mine, false), 0};
    c.budgeted_bytes = static_cast<size_t>(shape_numel(info.shape)) * dtype_size(info.dtype) * files_.size();
    cached_bytes_ += c.budgeted_bytes;
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
      const size_t row_bytes = c.all.bytes.size() / mine;
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
  // Every test up to run_partial depends on the models and the sample count only, so every rank
  // takes the same branch.
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
      cached_bytes_ -= it->second.budgeted_bytes;
      it = cache_.erase(it);
    }
  }
  const std::vector<size_t> every = subset.empty() ? every_sample(files_.size()) : std::vector<size_t>{};
  const std::span<const size_t> rows = subset.empty() ? std::span<const size_t>(every) : subset;
  auto mine = run_partial(target, *region, frontier, rows);
  if (!comm_->all_true(mine.has_value())) return std::nullopt;  // a full run, on every rank
  ++partial_runs_;
  return tally(rows, std::move(*mine), true);
}

std::optional<RankPart<Verdict>> Evaluator::run_partial(const onnx::ModelProto& target,
                                                        const model::ChangedRegion& region,
                                                        const std::map<std::string, model::FrontierValue>& frontier,
                                                        std::span<const size_t> rows) const {
  const std::vector<size_t> local = shard_.local_rows(rows);
  RankPart<Verdict> mine;
  if (local.empty()) return mine;  // a rank may hold none of a subset
  if (!fill_frontier(region.frontier, local).ok()) return std::nullopt;
  auto sub = model::extract_region(target, region, frontier);
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
  for (size_t first = 0; first < local.size(); first += batch) {
    const size_t count = std::min(batch, local.size() - first);
    std::vector<size_t> chunk(local.begin() + static_cast<std::ptrdiff_t>(first),
                              local.begin() + static_cast<std::ptrdiff_t>(first + count));
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
  auto verdicts = verdicts_of(std::move(outputs), local);
  if (verdicts.ok()) mine.items = std::move(verdicts).value();
  else mine.fail(shard_.owned()[local.front()], verdicts.error());
  return mine;
}

Result<CandidateScore> Evaluator::score_with_preset(const onnx::ModelProto& target, const data::Preset& preset) const {
  FETAFIX_ASSIGN_OR_RETURN(data::InputFeeder feeder, target_feeder(target, preset));
  FETAFIX_ASSIGN_OR_RETURN(FeedTable inputs, feed_all(feeder, feeder.preset()));
  return score_inputs(target, inputs, {});
}

}  // namespace fetafix::compare
