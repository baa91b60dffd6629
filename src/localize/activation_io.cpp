#include "localize/activation_io.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "model/graph.h"

namespace fetafix::localize {
namespace {

// Per-image dims (batch dropped) without the size-1 dims.
std::vector<int64_t> squeeze_per_image(std::span<const int64_t> shape) {
  std::vector<int64_t> dims;
  for (size_t i = 1; i < shape.size(); ++i)
    if (shape[i] != 1) dims.push_back(shape[i]);
  return dims;
}

bool permutation_fits(const std::vector<int64_t>& src, const std::vector<int64_t>& tgt,
                      const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < src.size(); ++i)
    if (src[i] != tgt[static_cast<size_t>(perm[i])]) return false;
  return true;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

}  // namespace

Tensor gather_rows(const Tensor& all, std::span<const size_t> rows, int64_t fixed_batch) {
  size_t count = rows.size();
  if (fixed_batch > 1) {
    const auto b = static_cast<size_t>(fixed_batch);
    count = (count + b - 1) / b * b;
  }
  std::vector<int64_t> shape = all.shape;
  shape[0] = static_cast<int64_t>(count);
  Tensor batch(all.dtype, shape);
  const size_t row_bytes = all.shape[0] > 0 ? all.bytes.size() / static_cast<size_t>(all.shape[0]) : 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t image = rows[std::min(i, rows.size() - 1)];
    std::memcpy(batch.bytes.data() + i * row_bytes, all.bytes.data() + image * row_bytes, row_bytes);
  }
  return batch;
}

int64_t model_fixed_batch(const onnx::ModelProto& model) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  for (const auto& in : model.graph().input()) {
    if (initializers.count(in.name())) continue;
    const auto& shape = in.type().tensor_type().shape();
    if (shape.dim_size() > 0 && shape.dim(0).has_dim_value() && shape.dim(0).dim_value() > 0)
      return shape.dim(0).dim_value();
    return 0;
  }
  return 0;
}

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

std::optional<std::vector<int64_t>> align_target_layout(std::span<const int64_t> source_shape,
                                                        std::span<const int64_t> target_shape) {
  if (source_shape.empty() || target_shape.empty()) return std::nullopt;
  const auto src = squeeze_per_image(source_shape), tgt = squeeze_per_image(target_shape);
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

std::optional<LayoutMap> LayoutMap::create(std::span<const int64_t> source_shape,
                                           std::span<const int64_t> target_shape) {
  auto perm = align_target_layout(source_shape, target_shape);
  if (!perm) return std::nullopt;
  LayoutMap map;
  map.dims_ = squeeze_per_image(source_shape);
  const auto tstrides = strides_of(squeeze_per_image(target_shape));
  bool identity = true;
  for (size_t d = 0; d < perm->size(); ++d) {
    identity = identity && (*perm)[d] == static_cast<int64_t>(d);
    map.target_stride_.push_back(tstrides[static_cast<size_t>((*perm)[d])]);
  }
  if (!identity) map.permutation_ = *perm;
  map.elements_ = source_shape.size() > 1 ? shape_numel(source_shape.subspan(1)) : 1;
  return map;
}

}  // namespace fetafix::localize
