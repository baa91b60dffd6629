#include "compare/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "runtime/session.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

Result<data::Preset> bind_to_input(const runtime::Session& session, const data::Preset& preset, const std::string& label) {
  if (session.inputs().size() != 1)
    return make_error("{}: the model has {} inputs; fetafix feeds a single image input", label, session.inputs().size());
  const auto& in = session.inputs()[0];
  auto bound = data::bind_preset_to_input(preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return make_error("{}: {}", label, bound.error().message);
  return bound;
}

std::vector<int64_t> image_shape(const data::Preset& p) {
  return p.layout == data::Layout::kNCHW ? std::vector<int64_t>{3, p.height, p.width}
                                         : std::vector<int64_t>{p.height, p.width, 3};
}

// Runs `session` over `inputs` ([n, ...]) in batches; returns [n, classes] scores.
Result<std::vector<float>> run_batches(const runtime::Session& session, const Tensor& inputs, size_t batch,
                                       const std::string& label, int64_t& classes) {
  const size_t n = static_cast<size_t>(inputs.shape[0]);
  const size_t image_bytes = n ? inputs.bytes.size() / n : 0;
  const int64_t fixed = session.fixed_batch();
  if (fixed > 1) batch = static_cast<size_t>(fixed);
  std::vector<float> all;
  for (size_t first = 0; first < n; first += batch) {
    const size_t count = std::min(batch, n - first);
    const size_t padded = fixed > 1 ? static_cast<size_t>(fixed) : count;
    std::vector<int64_t> shape = inputs.shape;
    shape[0] = static_cast<int64_t>(padded);
    Tensor chunk(inputs.dtype, shape);
    std::memcpy(chunk.bytes.data(), inputs.bytes.data() + first * image_bytes, count * image_bytes);
    for (size_t i = count; i < padded; ++i)  // pad a fixed batch with the last image
      std::memcpy(chunk.bytes.data() + i * image_bytes, inputs.bytes.data() + (first + count - 1) * image_bytes,
                  image_bytes);
    FETAFIX_ASSIGN_OR_RETURN(auto outs, session.run({chunk}));
    const Tensor& out = outs.at(0);
    if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(padded))
      return make_error("{}: output has shape {}, expected a batch of {} first", label, shape_to_string(out.shape), padded);
    const int64_t per = out.numel() / static_cast<int64_t>(padded);
    if (per < 2) return make_error("{}: output has one value per image: not a classifier's scores", label);
    if (classes && per != classes) return make_error("{}: output width changed from {} to {}", label, classes, per);
    classes = per;
    auto values = out.to_float();
    all.insert(all.end(), values.begin(), values.begin() + static_cast<std::ptrdiff_t>(count * per));
  }
  return all;
}

// The evaluator runs one session at a time (a pass is one session over many batches), so its
// intra-op workers may spin between nodes instead of sleeping: no other session competes for the
// cores (the case docs/runtime.md measured against spinning). MobileNetV2 float, 300 images, 2
// cores, `bench_repair passes --images 300` three times each way: 4.58 s per pass spinning vs
// 5.06 s sleeping (means of the medians; docs/repair.md).
constexpr bool kSpinWhileScoring = true;

// Partial runs only for regions with at most this share of the model's heavy nodes.
constexpr double kMaxPartialCostShare = 0.5;

// Rows `rows` of an [n, ...] tensor, in that order.
Tensor gather_rows(const Tensor& all, std::span<const size_t> rows) {
  std::vector<int64_t> shape = all.shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out(all.dtype, shape);
  const size_t row_bytes = all.shape[0] ? all.bytes.size() / static_cast<size_t>(all.shape[0]) : 0;
  for (size_t j = 0; j < rows.size(); ++j)
    std::memcpy(out.bytes.data() + j * row_bytes, all.bytes.data() + rows[j] * row_bytes, row_bytes);
  return out;
}

}  // namespace

Result<Tensor> LabelEvaluator::preprocess_all(const data::Preset& bound) const {
  std::vector<int64_t> shape{static_cast<int64_t>(files_.size())};
  auto per = image_shape(bound);
  shape.insert(shape.end(), per.begin(), per.end());
  Tensor t(bound.dtype, shape);
  const size_t image_bytes = files_.empty() ? 0 : t.bytes.size() / files_.size();
  std::vector<std::string> errors(files_.size());
  tbb::parallel_for(size_t{0}, files_.size(), [&](size_t i) {
    auto image = data::decode_image(files_[i]);
    if (!image.ok()) { errors[i] = image.error().message; return; }
    data::preprocess_into(*image, bound, t.bytes.data() + i * image_bytes);
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{} (repair needs every image decodable: remove it or fix it)", e);
  return t;
}

Status LabelEvaluator::preprocess_both(const data::Preset& source, const data::Preset& target, Tensor& source_out,
                                       Tensor& target_out) const {
  const bool same = source.to_json() == target.to_json();
  auto shaped = [&](const data::Preset& p) {
    std::vector<int64_t> shape{static_cast<int64_t>(files_.size())};
    auto per = image_shape(p);
    shape.insert(shape.end(), per.begin(), per.end());
    return Tensor(p.dtype, shape);
  };
  source_out = shaped(source);
  if (!same) target_out = shaped(target);
  const size_t n = files_.size();
  const size_t src_bytes = n ? source_out.bytes.size() / n : 0, tgt_bytes = n && !same ? target_out.bytes.size() / n : 0;
  std::vector<std::string> errors(n);
  tbb::parallel_for(size_t{0}, n, [&](size_t i) {
    auto image = data::decode_image(files_[i]);
    if (!image.ok()) { errors[i] = image.error().message; return; }
    data::preprocess_into(*image, source, source_out.bytes.data() + i * src_bytes);
    if (!same) data::preprocess_into(*image, target, target_out.bytes.data() + i * tgt_bytes);
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{} (repair needs every image decodable: remove it or fix it)", e);
  if (same) target_out = source_out;
  return {};
}

Result<std::unique_ptr<LabelEvaluator>> LabelEvaluator::create(const ModelSide& source, const ModelSide& target,
                                                               const fs::path& image_dir,
                                                               const CompareOptions& options) {
  std::unique_ptr<LabelEvaluator> e(new LabelEvaluator());
  e->options_ = options;
  e->target_label_ = target.label;
  FETAFIX_ASSIGN_OR_RETURN(e->files_, data::list_images(image_dir));
  runtime::SessionOptions so;
  so.threads = options.threads;
  so.allow_spinning = kSpinWhileScoring;
  FETAFIX_ASSIGN_OR_RETURN(auto src_session, runtime::Session::create(*source.model, so, source.label));
  FETAFIX_ASSIGN_OR_RETURN(e->source_preset_, bind_to_input(*src_session, source.preset, source.label));
  {
    FETAFIX_ASSIGN_OR_RETURN(auto tgt_session, runtime::Session::create(*target.model, so, target.label));
    FETAFIX_ASSIGN_OR_RETURN(e->target_preset_, bind_to_input(*tgt_session, target.preset, target.label));
  }
  Tensor src_inputs;
  FETAFIX_TRY_STATUS(e->preprocess_both(e->source_preset_, e->target_preset_, src_inputs, e->target_inputs_));
  FETAFIX_ASSIGN_OR_RETURN(auto scores, run_batches(*src_session, src_inputs, static_cast<size_t>(options.batch_size),
                                                    source.label, e->source_classes_));
  const size_t n = e->files_.size(), c = static_cast<size_t>(e->source_classes_);
  e->source_probs_.resize(n * c);
  for (size_t i = 0; i < n; ++i) {
    std::span<const float> row(scores.data() + i * c, c);
    auto probs = probabilities(row);
    std::copy(probs.begin(), probs.end(), e->source_probs_.begin() + static_cast<std::ptrdiff_t>(i * c));
    e->source_top1_.push_back(top_k(row, 1).ids.at(0));
  }
  return e;
}

Status LabelEvaluator::set_target_preset(const onnx::ModelProto& target, const data::Preset& preset) {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(target_preset_, bind_to_input(*session, preset, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(target_inputs_, preprocess_all(target_preset_));
  return {};
}

Result<CandidateScore> LabelEvaluator::tally(const std::vector<float>& scores, int64_t classes,
                                             std::span<const size_t> rows) const {
  const int64_t offset = options_.label_offset.value_or(0);
  CandidateScore s;
  const size_t n = rows.empty() ? files_.size() : rows.size();
  const size_t c = static_cast<size_t>(classes), sc = static_cast<size_t>(source_classes_);
  if (scores.size() < n * c) return make_error("{}: {} scores for {} images", target_label_, scores.size(), n);
  double distance = 0;
  for (size_t j = 0; j < n; ++j) {
    const size_t i = rows.empty() ? j : rows[j];
    std::span<const float> row(scores.data() + j * c, c);
    const int64_t t1 = to_source_label(top_k(row, 1).ids.at(0), offset, source_classes_);
    s.top1.push_back(t1);
    s.agree.push_back(t1 == source_top1_[i]);
    if (!s.agree.back()) ++s.disagreeing;
    auto probs = probabilities(row);
    double d = 0;
    for (size_t k = 0; k < sc; ++k) {
      const int64_t tk = static_cast<int64_t>(k) + offset;  // Target index of Source class k
      const float tp = tk >= 0 && tk < classes ? probs[static_cast<size_t>(tk)] : 0.0f;
      d += std::fabs(source_probs_[i * sc + k] - tp);
    }
    distance += d;
  }
  s.discrepancy = n ? static_cast<double>(s.disagreeing) / n : 0;
  s.distance = n ? distance / n : 0;
  return s;
}

Result<CandidateScore> LabelEvaluator::score_inputs(const onnx::ModelProto& target, const Tensor& inputs,
                                                    std::span<const size_t> subset) const {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  so.allow_spinning = kSpinWhileScoring;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  int64_t classes = 0;
  FETAFIX_ASSIGN_OR_RETURN(auto scores, run_batches(*session, inputs, static_cast<size_t>(options_.batch_size),
                                                    target_label_, classes));
  ++full_runs_;
  return tally(scores, classes, subset);
}

Result<CandidateScore> LabelEvaluator::score_full(const onnx::ModelProto& target, std::span<const size_t> subset) const {
  if (subset.empty()) return score_inputs(target, target_inputs_, subset);
  return score_inputs(target, gather_rows(target_inputs_, subset), subset);
}

Result<CandidateScore> LabelEvaluator::score(const onnx::ModelProto& target, std::span<const size_t> subset) const {
  if (base_ && budget_bytes_ > 0)
    if (auto partial = score_partial(target, subset)) return std::move(*partial);
  return score_full(target, subset);
}

Status LabelEvaluator::set_base(const onnx::ModelProto& base, size_t budget_bytes) {
  base_ = base;
  base_fingerprint_ = model::ModelFingerprint(*base_);
  cache_.clear();
  cached_bytes_ = 0;
  base_values_.clear();
  base_probed_ = false;
  budget_bytes_ = files_.empty() ? 0 : budget_bytes;
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

// Which values of the base are per-image tensors (dim 0 follows the batch), with their types:
// one captured run on a few copies of the first image. Done on the first partial score, not in
// set_base: a base whose candidates all run whole (the last kept edit, a weight group spanning
// the network) never pays for it.
bool LabelEvaluator::probe_base() const {
  if (base_probed_) return budget_bytes_ > 0;
  base_probed_ = true;
  const size_t probe = base_fixed_batch_ > 1 ? static_cast<size_t>(base_fixed_batch_) : 3;
  const std::vector<size_t> rows(probe, 0);
  auto observed = runtime::observe_value_shapes(*base_, {gather_rows(target_inputs_, rows)}, options_.threads,
                                                target_label_);
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

Status LabelEvaluator::fill_frontier(const std::vector<std::string>& values, std::span<const size_t> rows) const {
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
    FETAFIX_ASSIGN_OR_RETURN(auto outs, session->run({gather_rows(target_inputs_, chunk)}));
    for (size_t k = 0; k < values.size(); ++k) {
      CachedValue& c = cache_.at(values[k]);
      const Tensor& got = outs.at(first_capture + k);
      const size_t row_bytes = c.all.bytes.size() / files_.size();
      if (got.dtype != c.all.dtype || got.bytes.size() < count * row_bytes)
        return make_error("{}: value '{}' changed type or shape between images", target_label_, values[k]);
      for (size_t j = 0; j < count; ++j) {
        std::memcpy(c.all.bytes.data() + missing[first + j] * row_bytes, got.bytes.data() + j * row_bytes, row_bytes);
        c.filled[missing[first + j]] = true;
      }
    }
  }
  return {};
}

std::optional<Result<CandidateScore>> LabelEvaluator::score_partial(const onnx::ModelProto& target,
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
    if (it == base_values_.end()) return std::nullopt;  // not a per-image tensor (e.g. a shape)
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
  std::vector<size_t> all_rows;
  if (subset.empty()) {
    all_rows.resize(files_.size());
    for (size_t i = 0; i < all_rows.size(); ++i) all_rows[i] = i;
  }
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
  std::vector<float> scores;
  int64_t classes = 0;
  for (size_t first = 0; first < rows.size(); first += batch) {
    const size_t count = std::min(batch, rows.size() - first);
    std::vector<size_t> chunk(rows.begin() + static_cast<std::ptrdiff_t>(first),
                              rows.begin() + static_cast<std::ptrdiff_t>(first + count));
    while (fixed && chunk.size() < fixed) chunk.push_back(chunk.back());
    std::vector<Tensor> inputs;
    for (const auto* f : feeds) inputs.push_back(gather_rows(f->all, chunk));
    auto outs = (*session)->run(inputs);
    if (!outs.ok()) return std::nullopt;
    const Tensor& out = outs->at(0);
    if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(chunk.size())) return std::nullopt;
    const int64_t per = out.numel() / out.shape[0];
    if (per < 2 || (classes && per != classes)) return std::nullopt;
    classes = per;
    auto values = out.to_float();
    scores.insert(scores.end(), values.begin(), values.begin() + static_cast<std::ptrdiff_t>(count * per));
  }
  auto s = tally(scores, classes, subset);
  if (s.ok()) {
    s->partial = true;
    ++partial_runs_;
  }
  return s;
}

Result<CandidateScore> LabelEvaluator::score_with_preset(const onnx::ModelProto& target,
                                                         const data::Preset& preset) const {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(auto bound, bind_to_input(*session, preset, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(auto inputs, preprocess_all(bound));
  return score_inputs(target, inputs, {});
}

}  // namespace fetafix::compare
