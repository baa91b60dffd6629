#include "localize/activation_analysis.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "localize/kruskal.h"
#include "model/builder.h"
#include "model/graph.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

using Aggregation = ActivationAnalysisOptions::Aggregation;

// ---------------------------------------------------------------------------------------------
// Layout alignment

struct Squeezed {
  std::vector<int64_t> dims;  // per-image dims (batch dropped), size-1 dims dropped
};

Squeezed squeeze_per_image(std::span<const int64_t> shape) {
  Squeezed s;
  for (size_t i = 1; i < shape.size(); ++i)
    if (shape[i] != 1) s.dims.push_back(shape[i]);
  return s;
}

bool permutation_fits(const std::vector<int64_t>& src, const std::vector<int64_t>& tgt,
                      const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < src.size(); ++i)
    if (src[i] != tgt[static_cast<size_t>(perm[i])]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Models cut down to what computes the captured values: early passes then skip the rest of
// the network instead of running it for nothing.

onnx::ModelProto model_computing(const onnx::ModelProto& model, const std::vector<std::string>& values) {
  const auto& graph = model.graph();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < graph.node_size(); ++i)
    for (const auto& out : graph.node(i).output()) producer.emplace(out, i);
  std::vector<bool> keep(static_cast<size_t>(graph.node_size()), false);
  std::unordered_set<std::string> used(values.begin(), values.end());
  std::vector<std::string> pending(values.begin(), values.end());
  while (!pending.empty()) {
    const std::string value = std::move(pending.back());
    pending.pop_back();
    auto it = producer.find(value);
    if (it == producer.end() || keep[static_cast<size_t>(it->second)]) continue;
    keep[static_cast<size_t>(it->second)] = true;
    const auto& node = graph.node(it->second);
    std::vector<std::string> reads(node.input().begin(), node.input().end());
    for (auto& name : model::implicit_inputs(node)) reads.push_back(std::move(name));
    for (auto& name : reads)
      if (!name.empty() && used.insert(name).second) pending.push_back(name);
  }
  onnx::ModelProto cut = model;
  auto* g = cut.mutable_graph();
  g->clear_node();
  for (int i = 0; i < graph.node_size(); ++i)
    if (keep[static_cast<size_t>(i)]) *g->add_node() = graph.node(i);
  std::unordered_set<std::string> dropped_initializers;
  g->clear_initializer();
  for (const auto& init : graph.initializer()) {
    if (used.count(init.name())) *g->add_initializer() = init;
    else dropped_initializers.insert(init.name());
  }
  // Old models list initializers among the inputs; a dropped one would become a required input.
  g->clear_input();
  for (const auto& in : graph.input())
    if (!dropped_initializers.count(in.name())) *g->add_input() = in;
  g->clear_output();  // the session adds the captured values as outputs
  return cut;
}

// ---------------------------------------------------------------------------------------------
// Image selection

void seeded_shuffle(std::vector<size_t>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.next_u64() % i]);
}

struct Selection {
  std::vector<size_t> dissimilar;                 // image indices, ascending
  std::vector<std::vector<size_t>> similar;       // per repeat, ascending
};

Selection select_images(const std::vector<size_t>& similar_all, const std::vector<size_t>& dissimilar_all,
                        const ActivationAnalysisOptions& options) {
  Selection sel;
  Rng dis_rng(options.seed ^ 0xD155'1A11ull);
  sel.dissimilar = dissimilar_all;
  if (sel.dissimilar.size() > options.max_dissimilar) {
    seeded_shuffle(sel.dissimilar, dis_rng);
    sel.dissimilar.resize(options.max_dissimilar);
  }
  std::sort(sel.dissimilar.begin(), sel.dissimilar.end());

  // Repeats take consecutive slices of one shuffled pool, so their samples are disjoint while
  // enough similar images remain; when the pool runs out, a fresh shuffle of the images not
  // already in the current sample tops it up.
  const size_t per_repeat = std::min(options.max_similar, similar_all.size());
  Rng sim_rng(options.seed ^ 0x5111'1A12ull);
  std::vector<size_t> pool = similar_all;
  seeded_shuffle(pool, sim_rng);
  size_t next = 0;
  for (int r = 0; r < options.repeats; ++r) {
    std::vector<size_t> sample;
    const size_t take = std::min(per_repeat, pool.size() - next);
    sample.insert(sample.end(), pool.begin() + static_cast<ptrdiff_t>(next),
                  pool.begin() + static_cast<ptrdiff_t>(next + take));
    next += take;
    if (sample.size() < per_repeat) {
      std::set<size_t> in_sample(sample.begin(), sample.end());
      pool.clear();
      for (size_t i : similar_all)
        if (!in_sample.count(i)) pool.push_back(i);
      seeded_shuffle(pool, sim_rng);
      next = per_repeat - sample.size();
      sample.insert(sample.end(), pool.begin(), pool.begin() + static_cast<ptrdiff_t>(next));
    }
    std::sort(sample.begin(), sample.end());
    sel.similar.push_back(std::move(sample));
  }
  return sel;
}

// ---------------------------------------------------------------------------------------------
// Running the models

struct Layer {
  size_t pair_index = 0;
  std::string source_value, target_value;
  std::vector<int64_t> source_shape, target_shape;  // observed, batch dim included
  std::vector<int64_t> permutation;                 // on squeezed dims; empty = identity
  // Where source-layout element (multi-index over squeezed source dims) lives in the target:
  // target offset = sum idx[i] * target_stride_for_source_dim[i].
  std::vector<int64_t> squeezed_source_dims, target_stride_for_source_dim;
  int64_t elements = 0;
  std::string skipped_reason;
  // Accumulated over passes.
  std::vector<int64_t> problematic;  // per repeat
  double abs_sum_similar = 0, abs_sum_dissimilar = 0;
  double count_similar = 0, count_dissimilar = 0;
};

// One batch of images taken from an [N, ...] tensor, padded to a multiple of the model's
// fixed batch by repeating the last image.
Tensor gather_batch(const Tensor& all, std::span<const size_t> images, int64_t fixed_batch) {
  size_t count = images.size();
  if (fixed_batch > 1) count = (count + static_cast<size_t>(fixed_batch) - 1) / static_cast<size_t>(fixed_batch) *
                               static_cast<size_t>(fixed_batch);
  std::vector<int64_t> shape = all.shape;
  shape[0] = static_cast<int64_t>(count);
  Tensor batch(all.dtype, shape);
  const size_t row_bytes = all.bytes.size() / static_cast<size_t>(all.shape[0]);
  for (size_t i = 0; i < count; ++i) {
    const size_t image = images[std::min(i, images.size() - 1)];
    std::memcpy(batch.bytes.data() + i * row_bytes, all.bytes.data() + image * row_bytes, row_bytes);
  }
  return batch;
}

struct SidePass {
  std::unique_ptr<runtime::Session> session;
  std::unordered_map<std::string, size_t> output_index;
};

Result<SidePass> open_side(const onnx::ModelProto& model, const std::vector<std::string>& values, int threads,
                           const std::string& label) {
  runtime::SessionOptions so;
  so.threads = threads;
  so.optimize = false;
  so.capture = values;
  SidePass side;
  FETAFIX_ASSIGN_OR_RETURN(side.session, runtime::Session::create(model_computing(model, values), so, label));
  if (side.session->inputs().size() != 1)
    return make_error("{}: activation analysis feeds one image input, but the model has {} inputs", label,
                      side.session->inputs().size());
  const auto& outs = side.session->outputs();
  for (size_t i = 0; i < outs.size(); ++i) side.output_index.emplace(outs[i].name, i);
  return side;
}

// Float view of a captured tensor: the tensor's own data, or a converted copy in `storage`.
const float* as_float(const Tensor& t, std::vector<float>& storage) {
  if (t.dtype == DType::kFloat32) return t.data<float>();
  storage = t.to_float();
  return storage.data();
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

// out[j] = aligned_target[begin + j] - source[begin + j] for j in [0, end - begin).
void aligned_difference(const Layer& layer, const float* source, const float* target, int64_t begin, int64_t end,
                        float* out) {
  if (layer.permutation.empty()) {
    for (int64_t e = begin; e < end; ++e) out[e - begin] = target[e] - source[e];
    return;
  }
  const auto& dims = layer.squeezed_source_dims;
  const auto& tstride = layer.target_stride_for_source_dim;
  const size_t rank = dims.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t rest = begin, toff = 0;
  for (size_t i = rank; i-- > 0;) {
    idx[i] = rest % dims[i];
    rest /= dims[i];
    toff += idx[i] * tstride[i];
  }
  for (int64_t e = begin; e < end; ++e) {
    out[e - begin] = target[toff] - source[e];
    for (size_t i = rank; i-- > 0;) {  // odometer step over the source layout
      toff += tstride[i];
      if (++idx[i] < dims[i]) break;
      toff -= tstride[i] * dims[i];
      idx[i] = 0;
    }
  }
}

struct Unit {
  size_t layer = 0;
  int64_t begin = 0, end = 0;  // element range of the layer
};

std::vector<std::vector<Unit>> plan_passes(const std::vector<Layer>& layers, size_t rows,
                                           const ActivationAnalysisOptions& options) {
  std::vector<std::vector<Unit>> passes;
  std::vector<Unit> current;
  if (options.layers_per_pass > 0) {
    for (size_t l = 0; l < layers.size(); ++l) {
      if (!layers[l].skipped_reason.empty()) continue;
      current.push_back({l, 0, layers[l].elements});
      if (current.size() == options.layers_per_pass) passes.push_back(std::exchange(current, {}));
    }
    if (!current.empty()) passes.push_back(std::move(current));
    return passes;
  }
  // An element costs its differences over all rows, plus, per batch, the captured values of
  // both models twice over (ONNX Runtime's buffer and the returned copy).
  const size_t bytes_per_element = rows * sizeof(float) + options.batch_size * sizeof(float) * 2 * 2;
  const int64_t capacity = std::max<int64_t>(1, static_cast<int64_t>(options.memory_budget_bytes / bytes_per_element));
  int64_t used = 0;
  auto flush = [&] {
    if (!current.empty()) passes.push_back(std::exchange(current, {}));
    used = 0;
  };
  for (size_t l = 0; l < layers.size(); ++l) {
    if (!layers[l].skipped_reason.empty()) continue;
    const int64_t n = layers[l].elements;
    if (n <= capacity) {
      if (used + n > capacity) flush();
      current.push_back({l, 0, n});
      used += n;
      continue;
    }
    flush();  // a layer larger than the budget is analysed in element slices, one per pass
    for (int64_t b = 0; b < n; b += capacity) {
      const int64_t e = std::min(n, b + capacity);
      if (used > 0) flush();
      current.push_back({l, b, e});
      used = e - b;
    }
  }
  flush();
  return passes;
}

struct Workspace {
  std::vector<float> similar, dissimilar;
  std::vector<int64_t> problematic;  // per repeat
};

// ---------------------------------------------------------------------------------------------
// Ranking

void rank_layers(std::vector<LayerScore>& scores, Aggregation aggregation) {
  std::vector<size_t> live;
  for (size_t i = 0; i < scores.size(); ++i)
    if (scores[i].skipped_reason.empty()) live.push_back(i);
  auto excess = [&](size_t i) { return scores[i].mean_abs_diff_dissimilar - scores[i].mean_abs_diff_similar; };
  // Equal fractions: the layer whose dissimilar images move further from the similar ones
  // first, then pair order (stable sort).
  auto by = [&](auto key) {
    return [&, key](size_t a, size_t b) {
      const double ka = key(a), kb = key(b);
      if (ka != kb) return ka > kb;
      return excess(a) > excess(b);
    };
  };
  const size_t repeats = live.empty() ? 0 : scores[live[0]].per_repeat_fraction.size();
  switch (aggregation) {
    case Aggregation::kBorda: {
      for (size_t i : live) scores[i].score = 0;
      for (size_t r = 0; r < repeats; ++r) {
        std::vector<size_t> order = live;
        std::stable_sort(order.begin(), order.end(), by([&](size_t i) { return scores[i].per_repeat_fraction[r]; }));
        for (size_t pos = 0; pos < order.size(); ++pos) scores[order[pos]].score += static_cast<double>(pos);
      }
      std::stable_sort(live.begin(), live.end(), [&](size_t a, size_t b) {
        if (scores[a].score != scores[b].score) return scores[a].score < scores[b].score;
        return by([&](size_t i) { return scores[i].problematic_fraction; })(a, b);
      });
      break;
    }
    case Aggregation::kMeanFraction:
      for (size_t i : live) scores[i].score = scores[i].problematic_fraction;
      std::stable_sort(live.begin(), live.end(), by([&](size_t i) { return scores[i].score; }));
      break;
    case Aggregation::kMaxFraction:
      for (size_t i : live)
        scores[i].score = scores[i].per_repeat_fraction.empty()
                              ? 0
                              : *std::max_element(scores[i].per_repeat_fraction.begin(),
                                                  scores[i].per_repeat_fraction.end());
      std::stable_sort(live.begin(), live.end(), [&](size_t a, size_t b) {
        if (scores[a].score != scores[b].score) return scores[a].score > scores[b].score;
        return by([&](size_t i) { return scores[i].problematic_fraction; })(a, b);
      });
      break;
  }
  std::vector<LayerScore> ordered;
  ordered.reserve(scores.size());
  for (size_t pos = 0; pos < live.size(); ++pos) {
    ordered.push_back(std::move(scores[live[pos]]));
    ordered.back().rank = static_cast<int>(pos);
  }
  for (auto& s : scores)
    if (!s.skipped_reason.empty()) ordered.push_back(std::move(s));
  scores = std::move(ordered);
}

Status check_options(const ActivationAnalysisOptions& o) {
  if (o.repeats < 1) return make_error("activation analysis: repeats must be at least 1, got {}", o.repeats);
  if (!(o.alpha > 0 && o.alpha <= 1))
    return make_error("activation analysis: alpha must be in (0, 1], got {}", o.alpha);
  if (o.max_similar < 2) return make_error("activation analysis: max_similar must be at least 2, got {}", o.max_similar);
  if (o.max_dissimilar < 1)
    return make_error("activation analysis: max_dissimilar must be at least 1, got {}", o.max_dissimilar);
  if (o.batch_size < 1) return make_error("activation analysis: batch_size must be at least 1");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ElementRule::ElementRule(double alpha) : alpha_(alpha), critical_statistic_(chi_squared_critical_value(alpha, 1)) {}

void ElementRule::sort(std::span<float> values) {
  auto finite_end = std::partition(values.begin(), values.end(), [](float v) { return !std::isnan(v); });
  std::sort(values.begin(), finite_end);
}

bool ElementRule::problematic(std::span<const float> similar, std::span<const float> dissimilar) const {
  if (dissimilar.empty()) return false;
  const float reference = similar.empty() ? 0.0f : similar.front();
  if (!similar.empty() && std::isnan(similar.back())) return false;
  if (std::isnan(dissimilar.back())) return true;
  if (similar.empty() || similar.front() == similar.back())
    return dissimilar.front() != reference || dissimilar.back() != reference;
  const double h = kruskal_statistic_sorted(similar, dissimilar);
  if (std::isnan(h)) return false;  // unreachable: the similar values are not all equal
  // Far from the critical value the comparison of H decides; near it, the exact p-value does.
  const double margin = 1e-9 * critical_statistic_;
  if (h > critical_statistic_ + margin) return true;
  if (h < critical_statistic_ - margin) return false;
  return chi_squared_survival(h, 1) < alpha_;
}

std::optional<std::vector<int64_t>> align_target_layout(std::span<const int64_t> source_shape,
                                                        std::span<const int64_t> target_shape) {
  if (source_shape.empty() || target_shape.empty()) return std::nullopt;
  const auto src = squeeze_per_image(source_shape).dims, tgt = squeeze_per_image(target_shape).dims;
  if (src.size() != tgt.size()) return std::nullopt;
  const size_t rank = src.size();
  std::vector<int64_t> identity(rank);
  std::iota(identity.begin(), identity.end(), 0);
  std::vector<std::vector<int64_t>> preferred{identity};
  if (rank >= 2) {
    std::vector<int64_t> last_to_first{static_cast<int64_t>(rank - 1)}, first_to_last;
    for (size_t i = 0; i + 1 < rank; ++i) last_to_first.push_back(static_cast<int64_t>(i));
    for (size_t i = 1; i < rank; ++i) first_to_last.push_back(static_cast<int64_t>(i));
    first_to_last.push_back(0);
    preferred.push_back(last_to_first);  // source channels-first, target channels-last
    preferred.push_back(first_to_last);
  }
  for (const auto& p : preferred)
    if (permutation_fits(src, tgt, p)) return p;
  std::vector<int64_t> p = identity;
  do {
    if (permutation_fits(src, tgt, p)) return p;
  } while (std::next_permutation(p.begin(), p.end()));
  return std::nullopt;
}

Result<ActivationAnalysis> analyze_layer_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                     const std::vector<match::NodeMatch>& pairs,
                                                     const Tensor& source_inputs, const Tensor& target_inputs,
                                                     const std::vector<bool>& agree,
                                                     const ActivationAnalysisOptions& options) {
  FETAFIX_TRY_STATUS(check_options(options));
  const size_t n_images = agree.size();
  for (const auto* side : {&source_inputs, &target_inputs}) {
    const char* which = side == &source_inputs ? "Source" : "Target";
    if (side->shape.empty() || side->shape[0] != static_cast<int64_t>(n_images))
      return make_error("activation analysis: {} inputs are {} but {} agreement flags were given", which,
                        shape_to_string(side->shape), n_images);
    if (side->bytes.size() != static_cast<size_t>(side->numel()) * dtype_size(side->dtype))
      return make_error("activation analysis: {} inputs hold {} bytes, not what {} of {} needs", which,
                        side->bytes.size(), shape_to_string(side->shape), dtype_name(side->dtype));
  }

  // Layers: the first output of each matched node.
  std::vector<Layer> layers;
  std::vector<LayerScore> scores;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto s = model::find_node(source.graph(), pairs[i].source_node);
    const auto t = model::find_node(target.graph(), pairs[i].target_node);
    if (!s || !t)
      return make_error("activation analysis: pair {} names node '{}', which the {} model does not have", i,
                        s ? pairs[i].target_node : pairs[i].source_node, s ? "Target" : "Source");
    const auto& sn = source.graph().node(static_cast<int>(*s));
    const auto& tn = target.graph().node(static_cast<int>(*t));
    if (sn.output_size() == 0 || tn.output_size() == 0 || sn.output(0).empty() || tn.output(0).empty())
      return make_error("activation analysis: pair {} ('{}', '{}') has a node without an output", i,
                        pairs[i].source_node, pairs[i].target_node);
    Layer layer;
    layer.pair_index = i;
    layer.source_value = sn.output(0);
    layer.target_value = tn.output(0);
    layer.problematic.assign(static_cast<size_t>(options.repeats), 0);
    layers.push_back(std::move(layer));
    LayerScore score;
    score.source_node = pairs[i].source_node;
    score.target_node = pairs[i].target_node;
    score.source_value = layers.back().source_value;
    score.target_value = layers.back().target_value;
    scores.push_back(std::move(score));
  }

  ActivationAnalysis result;
  result.repeats = options.repeats;
  std::vector<size_t> similar_all, dissimilar_all;
  for (size_t i = 0; i < n_images; ++i) (agree[i] ? similar_all : dissimilar_all).push_back(i);
  result.similar_available = similar_all.size();
  result.dissimilar_available = dissimilar_all.size();
  if (dissimilar_all.empty()) {
    result.skipped_reason = "no dissimilar images: Source and Target agree on every image";
    return result;
  }
  if (similar_all.size() < 2) {
    result.skipped_reason = fmt::format("{} similar image{}: at least 2 are needed for an expected distribution",
                                        similar_all.size(), similar_all.size() == 1 ? "" : "s");
    return result;
  }
  if (pairs.empty()) {
    result.skipped_reason = "no matched layers to compare";
    return result;
  }
  Selection sel = select_images(similar_all, dissimilar_all, options);
  result.dissimilar_sample = sel.dissimilar;
  result.similar_samples = sel.similar;
  result.dissimilar_used = sel.dissimilar.size();
  result.similar_used = sel.similar.front().size();

  // Rows: every image some test needs, ascending; each is similar or dissimilar, never both.
  std::vector<size_t> row_images = sel.dissimilar;
  for (const auto& s : sel.similar) row_images.insert(row_images.end(), s.begin(), s.end());
  std::sort(row_images.begin(), row_images.end());
  row_images.erase(std::unique(row_images.begin(), row_images.end()), row_images.end());
  std::unordered_map<size_t, size_t> row_of;
  for (size_t r = 0; r < row_images.size(); ++r) row_of.emplace(row_images[r], r);
  std::vector<size_t> dissimilar_rows;
  for (size_t img : sel.dissimilar) dissimilar_rows.push_back(row_of.at(img));
  std::vector<std::vector<size_t>> similar_rows(sel.similar.size());
  for (size_t r = 0; r < sel.similar.size(); ++r)
    for (size_t img : sel.similar[r]) similar_rows[r].push_back(row_of.at(img));
  std::vector<bool> row_is_similar(row_images.size(), true);
  for (size_t r : dissimilar_rows) row_is_similar[r] = false;
  const size_t rows = row_images.size();

  std::unique_ptr<tbb::task_arena> arena =
      options.threads > 0 ? std::make_unique<tbb::task_arena>(options.threads) : std::make_unique<tbb::task_arena>();

  auto distinct = [](std::vector<std::string> v) {
    std::vector<std::string> out;
    std::unordered_set<std::string> seen;
    for (auto& s : v)
      if (seen.insert(s).second) out.push_back(std::move(s));
    return out;
  };

  // Probe: observed shapes of every compared value from two images.
  {
    std::vector<std::string> sv, tv;
    for (const auto& l : layers) sv.push_back(l.source_value), tv.push_back(l.target_value);
    FETAFIX_ASSIGN_OR_RETURN(SidePass sp, open_side(source, distinct(sv), options.threads, "Source"));
    FETAFIX_ASSIGN_OR_RETURN(SidePass tp, open_side(target, distinct(tv), options.threads, "Target"));
    const std::vector<size_t> probe_images(row_images.begin(), row_images.begin() + std::min<size_t>(2, rows));
    const Tensor s_batch = gather_batch(source_inputs, probe_images, sp.session->fixed_batch());
    const Tensor t_batch = gather_batch(target_inputs, probe_images, tp.session->fixed_batch());
    FETAFIX_ASSIGN_OR_RETURN(auto s_out, sp.session->run({s_batch}));
    FETAFIX_ASSIGN_OR_RETURN(auto t_out, tp.session->run({t_batch}));
    const int64_t probe_batch_s = s_batch.shape[0], probe_batch_t = t_batch.shape[0];
    for (size_t i = 0; i < layers.size(); ++i) {
      Layer& l = layers[i];
      const Tensor& so = s_out[sp.output_index.at(l.source_value)];
      const Tensor& to = t_out[tp.output_index.at(l.target_value)];
      l.source_shape = so.shape;
      l.target_shape = to.shape;
      if (!l.source_shape.empty()) l.source_shape[0] = 1;
      if (!l.target_shape.empty()) l.target_shape[0] = 1;
      scores[i].source_shape = l.source_shape;
      scores[i].target_shape = l.target_shape;
      if (so.shape.empty() || so.shape[0] != probe_batch_s || to.shape.empty() || to.shape[0] != probe_batch_t) {
        l.skipped_reason = fmt::format("{} or {} is not a per-image activation (shapes {} and {} for {} images)",
                                       l.source_value, l.target_value, shape_to_string(so.shape),
                                       shape_to_string(to.shape), probe_images.size());
      } else if (auto perm = align_target_layout(l.source_shape, l.target_shape)) {
        const auto sdims = squeeze_per_image(l.source_shape).dims, tdims = squeeze_per_image(l.target_shape).dims;
        const auto tstrides = strides_of(tdims);
        bool identity = true;
        for (size_t d = 0; d < perm->size(); ++d) {
          identity = identity && (*perm)[d] == static_cast<int64_t>(d);
          l.target_stride_for_source_dim.push_back(tstrides[static_cast<size_t>((*perm)[d])]);
        }
        if (!identity) l.permutation = *perm;
        l.squeezed_source_dims = sdims;
        l.elements = shape_numel(l.source_shape);
        scores[i].target_permutation = l.permutation;
        scores[i].elements = l.elements;
      } else {
        l.skipped_reason = fmt::format("{} is {} in Source but {} is {} in Target: no transpose aligns them",
                                       l.source_value, shape_to_string(l.source_shape), l.target_value,
                                       shape_to_string(l.target_shape));
      }
      if (l.elements == 0 && l.skipped_reason.empty()) l.skipped_reason = "the activation has no elements";
    }
  }

  const auto passes = plan_passes(layers, rows, options);
  result.passes = passes.size();
  const ElementRule rule(options.alpha);
  for (const auto& pass : passes) {
    std::vector<std::string> sv, tv;
    for (const auto& u : pass) sv.push_back(layers[u.layer].source_value), tv.push_back(layers[u.layer].target_value);
    FETAFIX_ASSIGN_OR_RETURN(SidePass sp, open_side(source, distinct(sv), options.threads, "Source"));
    FETAFIX_ASSIGN_OR_RETURN(SidePass tp, open_side(target, distinct(tv), options.threads, "Target"));

    // differences[u]: rows x width floats, row-major; row_abs[u][row]: sum of |difference|.
    std::vector<std::vector<float>> differences(pass.size());
    std::vector<std::vector<double>> row_abs(pass.size(), std::vector<double>(rows, 0.0));
    for (size_t u = 0; u < pass.size(); ++u)
      differences[u].resize(rows * static_cast<size_t>(pass[u].end - pass[u].begin));

    for (size_t first = 0; first < rows; first += options.batch_size) {
      if (options.deadline && std::chrono::steady_clock::now() >= *options.deadline) {
        result.ranked.clear();
        result.timed_out = true;
        result.skipped_reason = "the time limit was reached before the ranking finished";
        return result;
      }
      const size_t count = std::min(options.batch_size, rows - first);
      const std::span<const size_t> images(row_images.data() + first, count);
      FETAFIX_ASSIGN_OR_RETURN(auto s_out,
                               sp.session->run({gather_batch(source_inputs, images, sp.session->fixed_batch())}));
      FETAFIX_ASSIGN_OR_RETURN(auto t_out,
                               tp.session->run({gather_batch(target_inputs, images, tp.session->fixed_batch())}));
      for (size_t u = 0; u < pass.size(); ++u) {
        const Layer& l = layers[pass[u].layer];
        const Tensor& so = s_out[sp.output_index.at(l.source_value)];
        const Tensor& to = t_out[tp.output_index.at(l.target_value)];
        if (so.shape.empty() || so.shape[0] < static_cast<int64_t>(count) || so.numel() / so.shape[0] != l.elements ||
            to.shape.empty() || to.shape[0] < static_cast<int64_t>(count) || to.numel() / to.shape[0] != l.elements)
          return make_error("activation analysis: {} / {} changed shape between images ({} and {}, first {} and {})",
                            l.source_value, l.target_value, shape_to_string(so.shape), shape_to_string(to.shape),
                            shape_to_string(l.source_shape), shape_to_string(l.target_shape));
        std::vector<float> s_conv, t_conv;
        const float* sdata = as_float(so, s_conv);
        const float* tdata = as_float(to, t_conv);
        const int64_t width = pass[u].end - pass[u].begin;
        arena->execute([&] {
          tbb::parallel_for(size_t{0}, count, [&](size_t k) {
            float* out = differences[u].data() + (first + k) * static_cast<size_t>(width);
            aligned_difference(l, sdata + k * static_cast<size_t>(l.elements), tdata + k * static_cast<size_t>(l.elements),
                               pass[u].begin, pass[u].end, out);
            double sum = 0;
            for (int64_t j = 0; j < width; ++j) sum += std::fabs(static_cast<double>(out[j]));
            row_abs[u][first + k] = sum;
          });
        });
      }
    }

    for (size_t u = 0; u < pass.size(); ++u) {
      Layer& l = layers[pass[u].layer];
      const size_t width = static_cast<size_t>(pass[u].end - pass[u].begin);
      for (size_t r = 0; r < rows; ++r) {
        (row_is_similar[r] ? l.abs_sum_similar : l.abs_sum_dissimilar) += row_abs[u][r];
        (row_is_similar[r] ? l.count_similar : l.count_dissimilar) += static_cast<double>(width);
      }
      const float* base = differences[u].data();
      tbb::enumerable_thread_specific<Workspace> workspaces([&] {
        Workspace w;
        w.dissimilar.resize(dissimilar_rows.size());
        w.similar.resize(result.similar_used);
        w.problematic.assign(similar_rows.size(), 0);
        return w;
      });
      arena->execute([&] {
        tbb::parallel_for(tbb::blocked_range<size_t>(0, width, 256), [&](const tbb::blocked_range<size_t>& range) {
          Workspace& w = workspaces.local();
          for (size_t j = range.begin(); j < range.end(); ++j) {
            for (size_t k = 0; k < dissimilar_rows.size(); ++k) w.dissimilar[k] = base[dissimilar_rows[k] * width + j];
            ElementRule::sort(w.dissimilar);
            for (size_t r = 0; r < similar_rows.size(); ++r) {
              const auto& sr = similar_rows[r];
              for (size_t k = 0; k < sr.size(); ++k) w.similar[k] = base[sr[k] * width + j];
              ElementRule::sort(w.similar);
              if (rule.problematic(w.similar, w.dissimilar)) ++w.problematic[r];
            }
          }
        });
      });
      for (const auto& w : workspaces)
        for (size_t r = 0; r < w.problematic.size(); ++r) l.problematic[r] += w.problematic[r];
      std::vector<float>().swap(differences[u]);  // release before the next unit's workspaces
    }
  }

  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    LayerScore& s = scores[i];
    s.skipped_reason = l.skipped_reason;
    if (!s.skipped_reason.empty()) continue;
    double total = 0;
    for (int64_t c : l.problematic) {
      s.per_repeat_problematic.push_back(c);
      s.per_repeat_fraction.push_back(static_cast<double>(c) / static_cast<double>(l.elements));
      total += s.per_repeat_fraction.back();
    }
    s.problematic_fraction = total / static_cast<double>(l.problematic.size());
    s.mean_abs_diff_similar = l.count_similar > 0 ? l.abs_sum_similar / l.count_similar : 0;
    s.mean_abs_diff_dissimilar = l.count_dissimilar > 0 ? l.abs_sum_dissimilar / l.count_dissimilar : 0;
  }
  rank_layers(scores, options.aggregation);
  result.ranked = std::move(scores);
  return result;
}

std::string aggregation_name(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kBorda: return "borda";
    case Aggregation::kMeanFraction: return "mean_fraction";
    case Aggregation::kMaxFraction: return "max_fraction";
  }
  return "?";
}

nlohmann::json to_json(const ActivationAnalysis& a) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& s : a.ranked) {
    nlohmann::json j{{"source_node", s.source_node},
                     {"target_node", s.target_node},
                     {"source_value", s.source_value},
                     {"target_value", s.target_value},
                     {"source_shape", s.source_shape},
                     {"target_shape", s.target_shape},
                     {"target_permutation", s.target_permutation},
                     {"elements", s.elements},
                     {"rank", s.rank}};
    if (s.skipped_reason.empty()) {
      j["problematic_fraction"] = s.problematic_fraction;
      j["per_repeat_fraction"] = s.per_repeat_fraction;
      j["per_repeat_problematic"] = s.per_repeat_problematic;
      j["mean_abs_diff_similar"] = s.mean_abs_diff_similar;
      j["mean_abs_diff_dissimilar"] = s.mean_abs_diff_dissimilar;
      j["score"] = s.score;
    } else {
      j["skipped_reason"] = s.skipped_reason;
    }
    layers.push_back(std::move(j));
  }
  nlohmann::json out{{"layers", std::move(layers)},
                     {"similar_available", a.similar_available},
                     {"dissimilar_available", a.dissimilar_available},
                     {"similar_used", a.similar_used},
                     {"dissimilar_used", a.dissimilar_used},
                     {"repeats", a.repeats},
                     {"passes", a.passes},
                     {"similar_samples", a.similar_samples},
                     {"dissimilar_sample", a.dissimilar_sample}};
  if (!a.skipped_reason.empty()) out["skipped_reason"] = a.skipped_reason;
  return out;
}

}  // namespace fetafix::localize
