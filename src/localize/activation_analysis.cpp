#include "localize/activation_analysis.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
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

#include "localize/capture_plan.h"
#include "model/builder.h"
#include "model/graph.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

using Aggregation = ActivationAnalysisOptions::Aggregation;
using Clock = std::chrono::steady_clock;

// The values kept between passes (both models together) may take budget / kCacheDivisor.
constexpr size_t kCacheDivisor = 4;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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
// Layers and rows

struct Layer {
  std::string source_value, target_value;
  std::vector<int64_t> source_shape, target_shape;  // observed, batch dim 1
  std::optional<LayoutMap> map;                     // Source element -> Target offset
  int64_t elements = 0;
  std::string skipped_reason;
  // Accumulated over passes.
  std::vector<int64_t> problematic;  // per repeat
  double abs_sum_similar = 0, abs_sum_dissimilar = 0;
  double count_similar = 0, count_dissimilar = 0;
};

// The images every test needs, ascending, each marked dissimilar (bit 0) and with the repeats
// whose similar sample holds it (bit 1 + r).
struct Rows {
  std::vector<size_t> images;
  std::vector<uint32_t> membership;
  size_t size() const { return images.size(); }
  bool similar(size_t row) const { return (membership[row] & 1u) == 0; }
};

Rows make_rows(const Selection& sel) {
  Rows rows;
  rows.images = sel.dissimilar;
  for (const auto& s : sel.similar) rows.images.insert(rows.images.end(), s.begin(), s.end());
  std::sort(rows.images.begin(), rows.images.end());
  rows.images.erase(std::unique(rows.images.begin(), rows.images.end()), rows.images.end());
  std::unordered_map<size_t, size_t> row_of;
  for (size_t r = 0; r < rows.images.size(); ++r) row_of.emplace(rows.images[r], r);
  rows.membership.assign(rows.images.size(), 0);
  for (size_t img : sel.dissimilar) rows.membership[row_of.at(img)] |= 1u;
  for (size_t r = 0; r < sel.similar.size(); ++r)
    for (size_t img : sel.similar[r]) rows.membership[row_of.at(img)] |= 1u << (r + 1);
  return rows;
}

// The first output of each matched node, and the score entry that reports it.
Result<std::vector<Layer>> collect_layers(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                          const std::vector<match::NodeMatch>& pairs, int repeats,
                                          std::vector<LayerScore>& scores) {
  std::vector<Layer> layers;
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
    layer.source_value = sn.output(0);
    layer.target_value = tn.output(0);
    layer.problematic.assign(static_cast<size_t>(repeats), 0);
    LayerScore score;
    score.source_node = pairs[i].source_node;
    score.target_node = pairs[i].target_node;
    score.source_value = layer.source_value;
    score.target_value = layer.target_value;
    layers.push_back(std::move(layer));
    scores.push_back(std::move(score));
  }
  return layers;
}

// What the passes are planned with: the layer values as a run on the first two rows showed
// them (dim 0 = `batch` for a per-image value), and every other value whose per-image shape
// ONNX Runtime infers (a dynamic dim 0, every other dim known), recorded with dim 0 = `batch`.
// Running every value instead would copy the whole network's activations once, which on a
// virtual machine costs seconds of page faults. A value absent here is never kept between
// passes, and a model with a fixed batch keeps none (its dim 0 cannot tell a per-image value
// from a batch-independent one).
struct Probe {
  std::map<std::string, runtime::ValueInfo> values;
  int64_t batch = 0;
};

// A model's inputs by graph input name: the i-th real (non-initializer) input is inputs[i].
using GraphInputs = std::map<std::string, const Tensor*>;

Result<GraphInputs> name_inputs(const onnx::ModelProto& model, const std::vector<const Tensor*>& inputs,
                                const char* label) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  GraphInputs named;
  size_t declared = 0;
  for (const auto& in : model.graph().input()) {
    if (initializers.count(in.name())) continue;
    if (declared < inputs.size()) named[in.name()] = inputs[declared];
    ++declared;
  }
  if (declared != inputs.size())
    return make_error("activation analysis: {} inputs given for the {} model's {} inputs", inputs.size(), label,
                      declared);
  return named;
}

// The session's graph inputs for rows `rows` (a kept value is found by the caller first).
std::vector<Tensor> gather_inputs(const runtime::Session& session, const GraphInputs& inputs,
                                  std::span<const size_t> rows, int64_t fixed_batch) {
  std::vector<Tensor> feeds;
  for (const auto& in : session.inputs())
    if (auto it = inputs.find(in.name); it != inputs.end()) feeds.push_back(gather_rows(*it->second, rows, fixed_batch));
  return feeds;
}

Result<Probe> probe_model(const onnx::ModelProto& model, const GraphInputs& inputs, const Rows& rows,
                          const std::vector<std::string>& layer_values, int threads, const char* label) {
  const std::vector<size_t> first(rows.images.begin(), rows.images.begin() + std::min<size_t>(2, rows.size()));
  const int64_t fixed_batch = model_fixed_batch(model);
  Probe p;
  p.batch = gather_rows(*inputs.begin()->second, first, fixed_batch).shape[0];
  runtime::SessionOptions so;
  so.threads = threads;
  if (fixed_batch == 0) {
    so.capture_all = true;
    FETAFIX_ASSIGN_OR_RETURN(auto all, runtime::Session::create(model, so, label));  // inferred shapes; not run
    for (const auto& v : all->outputs()) {
      const bool per_image = !v.shape.empty() && v.shape[0] < 0 &&
                             std::all_of(v.shape.begin() + 1, v.shape.end(), [](int64_t d) { return d >= 0; });
      if (!per_image) continue;
      runtime::ValueInfo info = v;
      info.shape[0] = p.batch;
      p.values[v.name] = std::move(info);
    }
  }
  so.capture_all = false;
  so.capture = layer_values;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model_computing(model, layer_values), so, label));
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session->run(gather_inputs(*session, inputs, first, fixed_batch)));
  for (size_t i = 0; i < outputs.size(); ++i)
    p.values[session->outputs()[i].name] = runtime::ValueInfo{session->outputs()[i].name, outputs[i].dtype,
                                                              outputs[i].shape};
  return p;
}

void check_layer(Layer& l, LayerScore& score, const Probe& sp, const Probe& tp) {
  const auto& so = sp.values.at(l.source_value).shape;
  const auto& to = tp.values.at(l.target_value).shape;
  l.source_shape = so;
  l.target_shape = to;
  if (!l.source_shape.empty()) l.source_shape[0] = 1;
  if (!l.target_shape.empty()) l.target_shape[0] = 1;
  score.source_shape = l.source_shape;
  score.target_shape = l.target_shape;
  if (so.empty() || so[0] != sp.batch || to.empty() || to[0] != tp.batch) {
    l.skipped_reason = fmt::format("{} or {} is not a per-image activation (shapes {} and {} for {} images)",
                                   l.source_value, l.target_value, shape_to_string(so), shape_to_string(to),
                                   std::min(sp.batch, tp.batch));
  } else if (auto map = LayoutMap::create(l.source_shape, l.target_shape)) {
    l.map = std::move(map);
    l.elements = l.map->elements();
    score.target_permutation = l.map->permutation();
    score.elements = l.elements;
  } else {
    l.skipped_reason = fmt::format("{} is {} in Source but {} is {} in Target: no transpose aligns them",
                                   l.source_value, shape_to_string(l.source_shape), l.target_value,
                                   shape_to_string(l.target_shape));
  }
  if (l.elements == 0 && l.skipped_reason.empty()) l.skipped_reason = "the activation has no elements";
}

// ---------------------------------------------------------------------------------------------
// Running one model, pass by pass, segment by segment

// A value of the current batch: a tensor holding it, and the row the batch starts at there (0
// for what the segment just computed, the batch's first row for a kept value).
struct BatchValue {
  const Tensor* tensor = nullptr;
  size_t first_row = 0;
};

class SideRunner {
 public:
  SideRunner(const onnx::ModelProto& model, const GraphInputs& inputs, const Rows& rows, const Probe& probe,
             std::vector<SegmentPlan> plans, int threads, const char* label)
      : model_(model), inputs_(inputs), rows_(rows), probe_(probe), plans_(std::move(plans)), threads_(threads),
        label_(label), fixed_batch_(model_fixed_batch(model)) {}

  Status begin_pass(size_t pass) {
    pass_ = pass;
    session_.reset();
    output_index_.clear();
    const SegmentPlan& plan = plans_[pass];
    if (plan.model) {
      runtime::SessionOptions so;
      so.threads = threads_;
      so.optimize = false;  // the model's own values, as a capture would give them
      FETAFIX_ASSIGN_OR_RETURN(session_, runtime::Session::create(*plan.model, so, label_));
      for (size_t i = 0; i < session_->outputs().size(); ++i) output_index_[session_->outputs()[i].name] = i;
    }
    for (const auto& v : plan.keep) {  // filled batch by batch
      std::vector<int64_t> shape = probe_.values.at(v).shape;
      shape[0] = static_cast<int64_t>(rows_.size());
      fresh_[v] = Tensor(probe_.values.at(v).dtype, shape);
    }
    return {};
  }

  // Runs rows [first, first + count) of the pass's segment.
  Status run_batch(size_t first, size_t count) {
    first_ = first;
    if (!session_) return {};
    const std::span<const size_t> images(rows_.images.data() + first, count);
    std::vector<size_t> cache_rows(count);
    std::iota(cache_rows.begin(), cache_rows.end(), first);
    std::vector<Tensor> feeds;
    for (const auto& in : session_->inputs()) {
      auto kept = cache_.find(in.name);
      auto fed = inputs_.find(in.name);
      if (kept == cache_.end() && fed == inputs_.end())
        return make_error("activation analysis: {}: the segment reads '{}', neither a graph input nor a kept value",
                          label_, in.name);
      feeds.push_back(kept != cache_.end() ? gather_rows(kept->second, cache_rows, fixed_batch_)
                                           : gather_rows(*fed->second, images, fixed_batch_));
    }
    FETAFIX_TRY_STATUS(session_->run_into(feeds, outputs_));  // batch after batch in the same buffers
    for (auto& [name, tensor] : fresh_) {
      const Tensor& out = outputs_[output_index_.at(name)];
      const size_t row_bytes = tensor.bytes.size() / rows_.size();
      if (out.shape.empty() || out.shape[0] < static_cast<int64_t>(count) || out.bytes.size() < count * row_bytes)
        return make_error("activation analysis: {}: '{}' is {}, not a per-image activation as its inferred shape {} "
                          "said", label_, name, shape_to_string(out.shape), shape_to_string(tensor.shape));
      std::memcpy(tensor.bytes.data() + first * row_bytes, out.bytes.data(), count * row_bytes);
    }
    return {};
  }

  BatchValue value(const std::string& name) const {
    if (auto it = output_index_.find(name); it != output_index_.end()) return {&outputs_[it->second], 0};
    return {&cache_.at(name), first_};
  }

  // Keeps what later passes read; frees the rest.
  void end_pass() {
    const auto& after = plans_[pass_].cache_after;
    std::map<std::string, Tensor> next;
    for (const auto& v : after) {
      if (auto it = fresh_.find(v); it != fresh_.end()) next[v] = std::move(it->second);
      else if (auto old = cache_.find(v); old != cache_.end()) next[v] = std::move(old->second);
    }
    cache_ = std::move(next);
    fresh_.clear();
    session_.reset();  // outputs_ stays: the next pass's outputs reuse its buffers
  }

 private:
  const onnx::ModelProto& model_;
  const GraphInputs& inputs_;
  const Rows& rows_;
  const Probe& probe_;
  std::vector<SegmentPlan> plans_;
  int threads_;
  std::string label_;
  int64_t fixed_batch_;
  size_t pass_ = 0, first_ = 0;
  std::unique_ptr<runtime::Session> session_;
  std::map<std::string, size_t> output_index_;
  std::vector<Tensor> outputs_;
  std::map<std::string, Tensor> cache_, fresh_;  // kept values (all rows); those this pass fills
};

Result<std::vector<SegmentPlan>> plan_side(const onnx::ModelProto& model, const Probe& probe,
                                           const std::vector<std::vector<std::string>>& values, size_t rows,
                                           size_t cache_budget) {
  CapturePlanInput in;
  in.values_per_pass = values;
  in.values = &probe.values;
  in.probe_batch = probe.batch;
  in.rows = rows;
  in.cache_budget = cache_budget;
  in.fixed_batch = model_fixed_batch(model);
  return plan_capture_segments(model, in);
}

// ---------------------------------------------------------------------------------------------
// Passes

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
  // both models twice over (ONNX Runtime's buffer and the returned copy). The kept cuts
  // (capture_plan.h) take the rest of the budget.
  const size_t bytes_per_element = rows * sizeof(float) + options.batch_size * sizeof(float) * 2 * 2;
  const size_t budget = options.memory_budget_bytes - options.memory_budget_bytes / kCacheDivisor;
  const int64_t capacity = std::max<int64_t>(1, static_cast<int64_t>(budget / bytes_per_element));
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

// ---------------------------------------------------------------------------------------------
// Differences and statistics

// The batch's rows of a value as floats: the tensor's own data, or converted into `storage`.
const float* rows_as_float(const BatchValue& v, size_t count, int64_t elements, std::vector<float>& storage) {
  const size_t offset = v.first_row * static_cast<size_t>(elements);
  if (v.tensor->dtype == DType::kFloat32) return v.tensor->data<float>() + offset;
  Tensor slice(v.tensor->dtype, {static_cast<int64_t>(count) * elements});
  const size_t size = dtype_size(v.tensor->dtype);
  std::memcpy(slice.bytes.data(), v.tensor->bytes.data() + offset * size, slice.bytes.size());
  storage = slice.to_float();
  return storage.data();
}

// out[j] = aligned_target[begin + j] - source[begin + j] for j in [0, end - begin).
void aligned_difference(const LayoutMap& map, const float* source, const float* target, int64_t begin, int64_t end,
                        float* out) {
  if (map.identity()) {
    for (int64_t e = begin; e < end; ++e) out[e - begin] = target[e] - source[e];
    return;
  }
  map.for_each(begin, end, [&](int64_t e, int64_t offset) { out[e - begin] = target[offset] - source[e]; });
}

// One pass's differences: per unit, rows x width floats (row-major) at offset[u] of one buffer
// that every pass reuses (allocated once, for the largest pass, and never zeroed: each pass
// writes every element before reading it), and per row the sum of |difference| over the unit.
struct PassData {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> storage;
  size_t capacity = 0;
  std::vector<size_t> offset;
  std::vector<std::vector<double>> row_abs;

  static size_t floats_for(const std::vector<Unit>& pass, size_t rows) {
    size_t total = 0;
    for (const auto& u : pass) total += rows * static_cast<size_t>(u.end - u.begin);
    return total;
  }
  // Room for `floats`, 2 MiB aligned and advised for transparent huge pages (Linux): the
  // kernel then maps it in 2 MiB pages, 512 times fewer faults than 4 KiB ones.
  void reserve(size_t floats) {
    if (floats <= capacity) return;
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = (floats * sizeof(float) + kHuge - 1) / kHuge * kHuge;
    storage.reset(static_cast<float*>(std::aligned_alloc(kHuge, bytes)));
    if (!storage) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(storage.get(), bytes, MADV_HUGEPAGE);
#endif
    capacity = bytes / sizeof(float);
  }
  void start(const std::vector<Unit>& pass, size_t rows) {
    offset.clear();
    row_abs.clear();
    size_t total = 0;
    for (const auto& u : pass) {
      offset.push_back(total);
      total += rows * static_cast<size_t>(u.end - u.begin);
      row_abs.emplace_back(rows, 0.0);
    }
    reserve(total);
  }
  float* unit(size_t u) { return storage.get() + offset[u]; }
};

void add_differences(const std::vector<Unit>& pass, const std::vector<Layer>& layers, const SideRunner& source,
                     const SideRunner& target, size_t first, size_t count, tbb::task_arena& arena, PassData& data) {
  for (size_t u = 0; u < pass.size(); ++u) {
    const Layer& l = layers[pass[u].layer];
    std::vector<float> s_store, t_store;
    const float* s = rows_as_float(source.value(l.source_value), count, l.elements, s_store);
    const float* t = rows_as_float(target.value(l.target_value), count, l.elements, t_store);
    const auto width = static_cast<size_t>(pass[u].end - pass[u].begin);
    const auto elements = static_cast<size_t>(l.elements);
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, count, [&](size_t k) {
        float* out = data.unit(u) + (first + k) * width;
        aligned_difference(*l.map, s + k * elements, t + k * elements, pass[u].begin, pass[u].end, out);
        double sum = 0;
        for (size_t j = 0; j < width; ++j) sum += std::fabs(static_cast<double>(out[j]));
        data.row_abs[u][first + k] = sum;
      });
    });
  }
}

// Every element of one unit through the repeated test, in parallel over blocks of columns: a
// block is copied column-major first, so each element's values are contiguous.
std::vector<int64_t> test_elements(const float* differences, size_t rows, size_t width,
                                   const RepeatedElementTest& test, size_t repeats, tbb::task_arena& arena) {
  constexpr size_t kBlock = 16;
  struct Work {
    RepeatedElementTest::Scratch scratch;
    std::vector<float> columns;
    std::vector<int64_t> problematic;
  };
  tbb::enumerable_thread_specific<Work> workspaces([&] {
    Work w;
    w.columns.resize(kBlock * rows);
    w.problematic.assign(repeats, 0);
    return w;
  });
  const size_t blocks = (width + kBlock - 1) / kBlock;
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, blocks, 16), [&](const tbb::blocked_range<size_t>& range) {
      Work& w = workspaces.local();
      for (size_t b = range.begin(); b < range.end(); ++b) {
        const size_t j0 = b * kBlock, n = std::min(kBlock, width - j0);
        for (size_t r = 0; r < rows; ++r) {
          const float* src = differences + r * width + j0;
          for (size_t c = 0; c < n; ++c) w.columns[c * rows + r] = src[c];
        }
        for (size_t c = 0; c < n; ++c) test.decide(w.columns.data() + c * rows, w.scratch, w.problematic.data());
      }
    });
  });
  std::vector<int64_t> total(repeats, 0);
  for (const auto& w : workspaces)
    for (size_t r = 0; r < repeats; ++r) total[r] += w.problematic[r];
  return total;
}

void test_pass(const std::vector<Unit>& pass, const Rows& rows, const RepeatedElementTest& test, size_t repeats,
               tbb::task_arena& arena, PassData& data, std::vector<Layer>& layers) {
  for (size_t u = 0; u < pass.size(); ++u) {
    Layer& l = layers[pass[u].layer];
    const auto width = static_cast<size_t>(pass[u].end - pass[u].begin);
    for (size_t r = 0; r < rows.size(); ++r) {
      (rows.similar(r) ? l.abs_sum_similar : l.abs_sum_dissimilar) += data.row_abs[u][r];
      (rows.similar(r) ? l.count_similar : l.count_dissimilar) += static_cast<double>(width);
    }
    const auto counts = test_elements(data.unit(u), rows.size(), width, test, repeats, arena);
    for (size_t r = 0; r < repeats; ++r) l.problematic[r] += counts[r];
  }
}

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
  if (static_cast<size_t>(o.repeats) > RepeatedElementTest::kMaxRepeats)
    return make_error("activation analysis: repeats must be at most {}, got {}", RepeatedElementTest::kMaxRepeats,
                      o.repeats);
  if (!(o.alpha > 0 && o.alpha <= 1))
    return make_error("activation analysis: alpha must be in (0, 1], got {}", o.alpha);
  if (o.max_similar < 2) return make_error("activation analysis: max_similar must be at least 2, got {}", o.max_similar);
  if (o.max_dissimilar < 1)
    return make_error("activation analysis: max_dissimilar must be at least 1, got {}", o.max_dissimilar);
  if (o.batch_size < 1) return make_error("activation analysis: batch_size must be at least 1");
  return Status::Ok();
}

Status check_side_input(const Tensor& side, const char* which, size_t n_images) {
  if (side.shape.empty() || side.shape[0] != static_cast<int64_t>(n_images))
    return make_error("activation analysis: {} inputs are {} but {} agreement flags were given", which,
                      shape_to_string(side.shape), n_images);
  if (side.bytes.size() != static_cast<size_t>(side.numel()) * dtype_size(side.dtype))
    return make_error("activation analysis: {} inputs hold {} bytes, not what {} of {} needs", which,
                      side.bytes.size(), shape_to_string(side.shape), dtype_name(side.dtype));
  return {};
}

Status check_inputs(const std::vector<const Tensor*>& source_inputs, const std::vector<const Tensor*>& target_inputs,
                    size_t n_images) {
  if (source_inputs.empty() || target_inputs.empty()) return make_error("activation analysis: no inputs given");
  for (const Tensor* side : source_inputs)
    FETAFIX_TRY_STATUS(check_side_input(*side, "Source", n_images));
  for (const Tensor* side : target_inputs)
    FETAFIX_TRY_STATUS(check_side_input(*side, "Target", n_images));
  return {};
}

// Why there is nothing to rank, or "" when there is.
std::string nothing_to_compare(size_t similar, size_t dissimilar, size_t pairs) {
  if (dissimilar == 0) return "no dissimilar images: Source and Target agree on every image";
  if (similar < 2)
    return fmt::format("{} similar image{}: at least 2 are needed for an expected distribution", similar,
                       similar == 1 ? "" : "s");
  if (pairs == 0) return "no matched layers to compare";
  return "";
}

void score_layers(const std::vector<Layer>& layers, std::vector<LayerScore>& scores) {
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
}

// Images per inference call in a pass: at most the option, and few enough that the largest
// captured activation of a batch stays under kBatchValueBytes. Larger blocks are mapped fresh
// from the kernel on every allocation (glibc's mmap threshold tops out at 32 MiB), and the
// page faults of a copy per batch cost more than the inference itself on big early layers.
constexpr size_t kBatchValueBytes = size_t{16} << 20;

size_t pass_batch(const std::vector<Unit>& pass, const std::vector<Layer>& layers, size_t batch_size) {
  size_t largest = 1;
  for (const auto& u : pass) largest = std::max(largest, static_cast<size_t>(layers[u.layer].elements) * sizeof(float));
  return std::clamp<size_t>(kBatchValueBytes / largest, 1, batch_size);
}

Result<ActivationAnalysis> analyze_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                               const std::vector<match::NodeMatch>& pairs,
                                               const std::vector<const Tensor*>& source_list,
                                               const std::vector<const Tensor*>& target_list,
                                               const std::vector<bool>& agree, const ActivationAnalysisOptions& options);

}  // namespace

Result<ActivationAnalysis> analyze_layer_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                     const std::vector<match::NodeMatch>& pairs,
                                                     const Tensor& source_inputs, const Tensor& target_inputs,
                                                     const std::vector<bool>& agree,
                                                     const ActivationAnalysisOptions& options) {
  return analyze_activations(source, target, pairs, {&source_inputs}, {&target_inputs}, agree, options);
}

Result<ActivationAnalysis> analyze_layer_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                     const std::vector<match::NodeMatch>& pairs,
                                                     const std::vector<Tensor>& source_inputs,
                                                     const std::vector<Tensor>& target_inputs,
                                                     const std::vector<bool>& agree,
                                                     const ActivationAnalysisOptions& options) {
  std::vector<const Tensor*> s, t;
  for (const auto& in : source_inputs) s.push_back(&in);
  for (const auto& in : target_inputs) t.push_back(&in);
  return analyze_activations(source, target, pairs, s, t, agree, options);
}

namespace {

Result<ActivationAnalysis> analyze_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                               const std::vector<match::NodeMatch>& pairs,
                                               const std::vector<const Tensor*>& source_list,
                                               const std::vector<const Tensor*>& target_list,
                                               const std::vector<bool>& agree, const ActivationAnalysisOptions& options) {
  FETAFIX_TRY_STATUS(check_options(options));
  FETAFIX_TRY_STATUS(check_inputs(source_list, target_list, agree.size()));
  FETAFIX_ASSIGN_OR_RETURN(const GraphInputs source_inputs, name_inputs(source, source_list, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(const GraphInputs target_inputs, name_inputs(target, target_list, "Target"));
  std::vector<LayerScore> scores;
  FETAFIX_ASSIGN_OR_RETURN(auto layers, collect_layers(source, target, pairs, options.repeats, scores));
  ActivationAnalysis result;
  result.repeats = options.repeats;
  std::vector<size_t> similar_all, dissimilar_all;
  for (size_t i = 0; i < agree.size(); ++i) (agree[i] ? similar_all : dissimilar_all).push_back(i);
  result.similar_available = similar_all.size();
  result.dissimilar_available = dissimilar_all.size();
  result.skipped_reason = nothing_to_compare(similar_all.size(), dissimilar_all.size(), pairs.size());
  if (!result.skipped_reason.empty()) return result;
  const Selection sel = select_images(similar_all, dissimilar_all, options);
  result.dissimilar_sample = sel.dissimilar;
  result.similar_samples = sel.similar;
  result.dissimilar_used = sel.dissimilar.size();
  result.similar_used = sel.similar.front().size();
  const Rows rows = make_rows(sel);

  auto t0 = Clock::now();
  std::vector<std::string> s_layer_values, t_layer_values;
  for (const auto& l : layers) s_layer_values.push_back(l.source_value), t_layer_values.push_back(l.target_value);
  FETAFIX_ASSIGN_OR_RETURN(const Probe sp,
                           probe_model(source, source_inputs, rows, s_layer_values, options.threads, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(const Probe tp,
                           probe_model(target, target_inputs, rows, t_layer_values, options.threads, "Target"));
  for (size_t i = 0; i < layers.size(); ++i) check_layer(layers[i], scores[i], sp, tp);
  const auto passes = plan_passes(layers, rows.size(), options);
  result.passes = passes.size();
  std::vector<std::vector<std::string>> s_values(passes.size()), t_values(passes.size());
  for (size_t p = 0; p < passes.size(); ++p)
    for (const auto& u : passes[p]) {
      s_values[p].push_back(layers[u.layer].source_value);
      t_values[p].push_back(layers[u.layer].target_value);
    }
  const size_t cache_budget = options.memory_budget_bytes / kCacheDivisor / 2;  // per model
  FETAFIX_ASSIGN_OR_RETURN(auto s_plans, plan_side(source, sp, s_values, rows.size(), cache_budget));
  FETAFIX_ASSIGN_OR_RETURN(auto t_plans, plan_side(target, tp, t_values, rows.size(), cache_budget));
  for (const auto* plans : {&s_plans, &t_plans})
    for (const auto& plan : *plans) result.nodes_run += plan.model ? plan.model->graph().node_size() : 0;
  SideRunner s_run(source, source_inputs, rows, sp, std::move(s_plans), options.threads, "Source");
  SideRunner t_run(target, target_inputs, rows, tp, std::move(t_plans), options.threads, "Target");
  result.inference_seconds += seconds_since(t0);

  auto arena = options.threads > 0 ? std::make_unique<tbb::task_arena>(options.threads)
                                   : std::make_unique<tbb::task_arena>();
  const size_t repeats = static_cast<size_t>(options.repeats);
  const RepeatedElementTest test(options.alpha, rows.membership, repeats);
  PassData data;
  size_t largest_pass = 0;
  for (const auto& pass : passes) largest_pass = std::max(largest_pass, PassData::floats_for(pass, rows.size()));
  data.reserve(largest_pass);  // once: the pages are faulted in by the first pass and reused
  for (size_t p = 0; p < passes.size(); ++p) {
    data.start(passes[p], rows.size());
    FETAFIX_TRY_STATUS(s_run.begin_pass(p));
    FETAFIX_TRY_STATUS(t_run.begin_pass(p));
    const size_t batch = pass_batch(passes[p], layers, options.batch_size);
    for (size_t first = 0; first < rows.size(); first += batch) {
      if (options.deadline && Clock::now() >= *options.deadline) {
        result.ranked.clear();
        result.timed_out = true;
        result.skipped_reason = "the time limit was reached before the ranking finished";
        return result;
      }
      const size_t count = std::min(batch, rows.size() - first);
      t0 = Clock::now();
      FETAFIX_TRY_STATUS(s_run.run_batch(first, count));
      FETAFIX_TRY_STATUS(t_run.run_batch(first, count));
      result.inference_seconds += seconds_since(t0);
      add_differences(passes[p], layers, s_run, t_run, first, count, *arena, data);
    }
    s_run.end_pass();
    t_run.end_pass();
    t0 = Clock::now();
    test_pass(passes[p], rows, test, repeats, *arena, data, layers);
    result.statistics_seconds += seconds_since(t0);
  }
  score_layers(layers, scores);
  rank_layers(scores, options.aggregation);
  result.ranked = std::move(scores);
  return result;
}

}  // namespace

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
