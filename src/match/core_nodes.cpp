#include "match/core_nodes.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "model/attributes.h"
#include "model/weights.h"

namespace fetafix::match {
namespace {

constexpr int kMaxChainLength = 16;

std::vector<int64_t> identity_permutation(size_t rank) {
  std::vector<int64_t> p(rank);
  std::iota(p.begin(), p.end(), 0);
  return p;
}

std::vector<int64_t> ints_attr(const onnx::NodeProto& node, const char* name) {
  const auto* a = model::find_attribute(node, name);
  if (!a) return {};
  return {a->ints().begin(), a->ints().end()};
}

int64_t int_attr(const onnx::NodeProto& node, const char* name, int64_t fallback) {
  const auto* a = model::find_attribute(node, name);
  return a && a->type() == onnx::AttributeProto::INT ? a->i() : fallback;
}

float float_attr(const onnx::NodeProto& node, const char* name, float fallback) {
  const auto* a = model::find_attribute(node, name);
  return a && a->type() == onnx::AttributeProto::FLOAT ? a->f() : fallback;
}

// Follows a value back through the chains converters put in front of weights, to a stored
// initializer or Constant; nullopt when the value is computed from graph inputs (an activation)
// or through an op this does not evaluate.
class WeightResolver {
 public:
  WeightResolver(const onnx::ModelProto& model, const model::GraphView& view) : model_(model), view_(view) {
    for (const auto& w : model::list_weights(model)) weight_values_.insert(w.value);
  }

  std::optional<ResolvedWeight> resolve(const std::string& value, int depth = 0) const {
    if (value.empty() || depth > kMaxChainLength) return std::nullopt;
    if (weight_values_.count(value)) {
      auto tensor = model::get_weight(model_, value);
      if (!tensor.ok()) return std::nullopt;
      ResolvedWeight w;
      w.effective.values = tensor->to_float();
      w.effective.shape = tensor->shape;
      w.stored_value = value;
      w.stored_to_effective = identity_permutation(tensor->shape.size());
      return w;
    }
    const auto producer = view_.producer(value);
    if (!producer) return std::nullopt;
    const onnx::NodeProto& node = view_.node(*producer);
    const std::string& op = node.op_type();
    if (node.input_size() == 0) return std::nullopt;
    const std::string& in0 = node.input(0);
    if (op == "Identity" || op == "Cast" || op == "QuantizeLinear") return resolve(in0, depth + 1);
    if (op == "Transpose") return resolve_transpose(node, depth);
    if (op == "DequantizeLinear") return resolve_dequantize(node, depth);
    if (op == "Reshape" && node.input_size() >= 2) return resolve_reshape(node, depth);
    return std::nullopt;
  }

 private:
  std::optional<ResolvedWeight> resolve_transpose(const onnx::NodeProto& node, int depth) const {
    auto w = resolve(node.input(0), depth + 1);
    if (!w) return std::nullopt;
    const size_t rank = w->effective.shape.size();
    std::vector<int64_t> perm = ints_attr(node, "perm");
    if (perm.empty()) {  // default: reverse the axes
      perm = identity_permutation(rank);
      std::reverse(perm.begin(), perm.end());
    }
    if (perm.size() != rank) return std::nullopt;
    w->effective = transpose(w->effective, perm);
    if (!w->stored_to_effective.empty()) w->stored_to_effective = compose_permutations(w->stored_to_effective, perm);
    return w;
  }

  std::optional<ResolvedWeight> resolve_dequantize(const onnx::NodeProto& node, int depth) const {
    // Q -> DQ on a float weight (fake quantization): the float weight is what it approximates.
    if (auto q = view_.producer(node.input(0)); q && view_.node(*q).op_type() == "QuantizeLinear")
      return resolve(view_.node(*q).input(0), depth + 1);
    auto w = resolve(node.input(0), depth + 1);
    if (!w || node.input_size() < 2) return std::nullopt;
    auto scale = resolve(node.input(1), depth + 1);
    if (!scale) return std::nullopt;
    std::vector<float> zero_point;
    if (node.input_size() >= 3 && !node.input(2).empty()) {
      auto zp = resolve(node.input(2), depth + 1);
      if (!zp) return std::nullopt;
      zero_point = zp->effective.values;
    }
    auto& x = w->effective;
    const auto& s = scale->effective.values;
    if (s.empty()) return std::nullopt;
    if (s.size() == 1) {
      const float z = zero_point.empty() ? 0.0f : zero_point[0];
      for (float& v : x.values) v = (v - z) * s[0];
      return w;
    }
    // Per-axis: scale and zero point run along `axis` of the quantized tensor.
    int64_t axis = int_attr(node, "axis", 1);
    const auto rank = static_cast<int64_t>(x.shape.size());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank || x.shape[static_cast<size_t>(axis)] != static_cast<int64_t>(s.size()))
      return std::nullopt;
    if (!zero_point.empty() && zero_point.size() != s.size()) return std::nullopt;
    int64_t inner = 1;
    for (int64_t i = axis + 1; i < rank; ++i) inner *= x.shape[static_cast<size_t>(i)];
    for (size_t n = 0; n < x.values.size(); ++n) {
      const size_t k = (n / static_cast<size_t>(inner)) % s.size();
      x.values[n] = (x.values[n] - (zero_point.empty() ? 0.0f : zero_point[k])) * s[k];
    }
    return w;
  }

  std::optional<ResolvedWeight> resolve_reshape(const onnx::NodeProto& node, int depth) const {
    auto w = resolve(node.input(0), depth + 1);
    auto target = resolve(node.input(1), depth + 1);
    if (!w || !target) return std::nullopt;
    std::vector<int64_t> shape;
    int64_t known = 1, infer_at = -1;
    for (size_t i = 0; i < target->effective.values.size(); ++i) {
      auto d = static_cast<int64_t>(target->effective.values[i]);
      if (d == 0 && i < w->effective.shape.size()) d = w->effective.shape[i];
      if (d == -1) { infer_at = static_cast<int64_t>(i); shape.push_back(1); continue; }
      if (d < 0) return std::nullopt;
      known *= d;
      shape.push_back(d);
    }
    const auto numel = static_cast<int64_t>(w->effective.values.size());
    if (infer_at >= 0 && known > 0) shape[static_cast<size_t>(infer_at)] = numel / known;
    if (shape_numel(shape) != numel) return std::nullopt;
    w->effective.shape = shape;
    w->stored_to_effective.clear();  // a reshape mixes axes: no permutation describes it
    return w;
  }

  const onnx::ModelProto& model_;
  const model::GraphView& view_;
  std::unordered_set<std::string> weight_values_;  // model::is_weight, without its linear scan
};

// Which input carries the main weight, or -1 when none resolves to one.
int main_weight_input(const onnx::NodeProto& node, const WeightResolver& resolver,
                      std::optional<ResolvedWeight>& weight) {
  const std::string& op = node.op_type();
  std::vector<int> order;
  if (op == "Conv" || op == "ConvTranspose") order = {1};
  else if (op == "Gemm" || op == "MatMul") order = {1, 0};
  else {
    for (int i = 1; i < node.input_size(); ++i) order.push_back(i);
    order.push_back(0);
  }
  for (int i : order) {
    if (i >= node.input_size()) continue;
    weight = resolver.resolve(node.input(i));
    if (weight) return i;
  }
  return -1;
}

int64_t output_channel_axis(const onnx::NodeProto& node, int weight_input, const ResolvedWeight& w) {
  const auto rank = static_cast<int64_t>(w.effective.shape.size());
  const std::string& op = node.op_type();
  if (op == "Conv") return rank >= 1 ? 0 : -1;
  if (op == "ConvTranspose") return rank >= 2 && int_attr(node, "group", 1) == 1 ? 1 : -1;
  if (op == "Gemm" && weight_input == 1 && rank == 2) return int_attr(node, "transB", 0) ? 0 : 1;
  if (op == "MatMul" && weight_input == 1 && rank >= 2) return rank - 1;
  return -1;
}

// A BatchNormalization or per-channel Mul consuming the node's output (through Identity), as
// per-output-channel factors.
void find_following_scale(const model::GraphView& view, const WeightResolver& resolver, CoreNode& core) {
  if (!core.weight || core.out_axis < 0) return;
  const int64_t channels = core.weight->effective.shape[static_cast<size_t>(core.out_axis)];
  const onnx::NodeProto& node = view.node(core.node);
  if (node.output_size() < 1) return;
  std::string value = node.output(0);
  for (int hop = 0; hop < kMaxChainLength; ++hop) {
    auto uses = view.consumers(value);
    if (uses.size() != 1 || uses[0].input_index < 0) return;
    const size_t next = uses[0].node;
    const onnx::NodeProto& consumer = view.node(next);
    const std::string& op = consumer.op_type();
    if (op == "Identity" && consumer.output_size() == 1) { value = consumer.output(0); continue; }
    if (op == "BatchNormalization" && uses[0].input_index == 0 && consumer.input_size() >= 5) {
      auto gamma = resolver.resolve(consumer.input(1));
      auto var = resolver.resolve(consumer.input(4));
      if (!gamma || !var || gamma->effective.values.size() != static_cast<size_t>(channels) ||
          var->effective.values.size() != static_cast<size_t>(channels))
        return;
      const float eps = float_attr(consumer, "epsilon", 1e-5f);
      core.bn_factors.resize(static_cast<size_t>(channels));
      for (size_t k = 0; k < core.bn_factors.size(); ++k)
        core.bn_factors[k] = gamma->effective.values[k] / std::sqrt(var->effective.values[k] + eps);
      core.bn_node = view.node_name(next);
      return;
    }
    if (op == "Mul" && consumer.input_size() == 2) {
      auto factors = resolver.resolve(consumer.input(1 - uses[0].input_index));
      if (!factors || channels <= 1 || factors->effective.values.size() != static_cast<size_t>(channels)) return;
      core.bn_factors = factors->effective.values;
      core.bn_node = view.node_name(next);
    }
    return;
  }
}

void read_geometry(const onnx::NodeProto& node, CoreNode& core) {
  core.kernel_shape = ints_attr(node, "kernel_shape");
  if (core.kernel_shape.empty() && core.weight && (core.op_type == "Conv" || core.op_type == "ConvTranspose")) {
    const auto& shape = core.weight->effective.shape;
    if (shape.size() > 2) core.kernel_shape.assign(shape.begin() + 2, shape.end());
  }
  const size_t spatial = core.kernel_shape.size();
  core.strides = ints_attr(node, "strides");
  if (core.strides.empty()) core.strides.assign(spatial, 1);
  core.dilations = ints_attr(node, "dilations");
  if (core.dilations.empty()) core.dilations.assign(spatial, 1);
  core.group = int_attr(node, "group", 1);
}

// Dynamic bitset over core-node indices.
struct CoreSet {
  std::vector<uint64_t> words;
  explicit CoreSet(size_t bits = 0) : words((bits + 63) / 64, 0) {}
  void set(size_t i) { words[i / 64] |= uint64_t{1} << (i % 64); }
  void merge(const CoreSet& o) { for (size_t w = 0; w < words.size(); ++w) words[w] |= o.words[w]; }
  size_t count() const { size_t c = 0; for (uint64_t w : words) c += static_cast<size_t>(std::popcount(w)); return c; }
};

void compute_positions(const model::GraphView& view, std::vector<CoreNode>& cores) {
  const size_t n = view.node_count(), m = cores.size();
  std::vector<int> core_index(n, -1);
  for (size_t c = 0; c < m; ++c) core_index[cores[c].node] = static_cast<int>(c);
  const auto& order = view.topological_order();
  std::vector<CoreSet> before(n, CoreSet(m)), after(n, CoreSet(m));  // core ancestors / descendants
  std::vector<size_t> chain(n, 0);  // core nodes on the longest path ending here (inclusive)
  for (size_t node : order) {
    for (size_t p : view.node_predecessors(node)) {
      before[node].merge(before[p]);
      if (core_index[p] >= 0) before[node].set(static_cast<size_t>(core_index[p]));
      chain[node] = std::max(chain[node], chain[p]);
    }
    if (core_index[node] >= 0) ++chain[node];
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    for (size_t s : view.node_successors(*it)) {
      after[*it].merge(after[s]);
      if (core_index[s] >= 0) after[*it].set(static_cast<size_t>(core_index[s]));
    }
  }
  size_t max_chain = 1;
  for (const auto& c : cores) max_chain = std::max(max_chain, chain[c.node]);
  const double others = m > 1 ? static_cast<double>(m - 1) : 1.0;
  for (auto& c : cores) {
    c.depth = max_chain > 1 ? static_cast<double>(chain[c.node] - 1) / static_cast<double>(max_chain - 1) : 0.0;
    c.ancestors = static_cast<double>(before[c.node].count()) / others;
    c.descendants = static_cast<double>(after[c.node].count()) / others;
  }
}

}  // namespace

Result<std::vector<CoreNode>> collect_core_nodes(const onnx::ModelProto& model, const std::set<std::string>& core_ops) {
  FETAFIX_ASSIGN_OR_RETURN(model::GraphView view, model::GraphView::build(model.graph()));
  WeightResolver resolver(model, view);
  std::vector<CoreNode> cores;
  for (size_t index : view.topological_order()) {
    const onnx::NodeProto& node = view.node(index);
    if (!core_ops.count(node.op_type())) continue;
    CoreNode core;
    core.node = index;
    core.name = view.node_name(index);
    core.op_type = node.op_type();
    core.family = (core.op_type == "Gemm" || core.op_type == "MatMul") ? "Dense" : core.op_type;
    const int weight_input = main_weight_input(node, resolver, core.weight);
    if (core.op_type == "MatMul" && !core.weight) continue;  // activation x activation: not a layer
    if (core.weight) core.out_axis = output_channel_axis(node, weight_input, *core.weight);
    find_following_scale(view, resolver, core);
    read_geometry(node, core);
    cores.push_back(std::move(core));
  }
  compute_positions(view, cores);
  return cores;
}

}  // namespace fetafix::match
