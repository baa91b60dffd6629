#include "localize/layer_support.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>

#include "model/attributes.h"
#include "model/weights.h"

namespace fetafix::localize::layer {

int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") return op.version();
  return 0;
}

std::vector<int64_t> permuted_shape(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm) {
  std::vector<int64_t> out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = shape[static_cast<size_t>(perm[i])];
  return out;
}

Tensor transpose(const Tensor& t, const std::vector<int64_t>& perm) {
  const size_t rank = t.shape.size();
  Tensor out(t.dtype, permuted_shape(t.shape, perm));
  const size_t elem = dtype_size(t.dtype);
  const int64_t n = t.numel();
  if (n == 0) return out;
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t i = rank; i-- > 1;) in_strides[i - 1] = in_strides[i] * t.shape[i];
  // Walk the output in row-major order, keeping the matching input offset incrementally.
  std::vector<int64_t> index(rank, 0);
  int64_t in_offset = 0;
  for (int64_t o = 0; o < n; ++o) {
    std::memcpy(out.bytes.data() + static_cast<size_t>(o) * elem, t.bytes.data() + static_cast<size_t>(in_offset) * elem,
                elem);
    for (size_t d = rank; d-- > 0;) {
      const int64_t stride = in_strides[static_cast<size_t>(perm[d])];
      if (++index[d] < out.shape[d]) {
        in_offset += stride;
        break;
      }
      in_offset -= stride * (index[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> layout_alignment(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
  if (from.size() != to.size()) return std::nullopt;
  std::vector<std::vector<int64_t>> candidates;
  std::vector<int64_t> identity(from.size());
  std::iota(identity.begin(), identity.end(), 0);
  candidates.push_back(identity);
  if (from.size() == 4) {
    candidates.push_back({0, 2, 3, 1});
    candidates.push_back({0, 3, 1, 2});
  } else if (from.size() == 3) {
    candidates.push_back({0, 2, 1});
  }
  for (const auto& p : candidates)
    if (permuted_shape(from, p) == to) return p;
  return std::nullopt;
}

namespace {

std::vector<float> dequantize(const std::vector<float>& q, const std::vector<int64_t>& shape, const std::vector<float>& scale,
                              const std::vector<float>& zero_point, int64_t axis) {
  std::vector<float> out(q.size());
  if (scale.size() <= 1) {
    const float s = scale.empty() ? 1.0f : scale[0], z = zero_point.empty() ? 0.0f : zero_point[0];
    for (size_t i = 0; i < q.size(); ++i) out[i] = (q[i] - z) * s;
    return out;
  }
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (axis < 0) axis += rank;
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= shape[static_cast<size_t>(d)];
  const int64_t channels = shape[static_cast<size_t>(axis)];
  for (size_t i = 0; i < q.size(); ++i) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels);
    const float z = zero_point.empty() ? 0.0f : zero_point[c];
    out[i] = (q[i] - z) * scale[c];
  }
  return out;
}

}  // namespace

Result<std::optional<ResolvedWeight>> resolve_weight(const onnx::ModelProto& model, const model::GraphView& view,
                                                     const std::string& value) {
  if (value.empty()) return std::optional<ResolvedWeight>{};
  if (model::is_weight(model, value)) {
    FETAFIX_ASSIGN_OR_RETURN(Tensor t, model::get_weight(model, value));
    ResolvedWeight w;
    w.values = t.to_float();
    w.shape = t.shape;
    w.stored_name = value;
    w.stored_dtype = t.dtype;
    return std::optional<ResolvedWeight>{std::move(w)};
  }
  auto p = view.producer(value);
  if (!p || view.reached_from_inputs(*p)) return std::optional<ResolvedWeight>{};
  const onnx::NodeProto& node = view.node(*p);
  const std::string& op = node.op_type();
  if (!node.domain().empty() || node.input_size() == 0) return std::optional<ResolvedWeight>{};
  if (op == "Identity" || op == "Cast" || op == "Transpose") {
    FETAFIX_ASSIGN_OR_RETURN(auto inner, resolve_weight(model, view, node.input(0)));
    if (!inner) return inner;
    inner->chain.insert(inner->chain.begin(), op);
    if (op == "Transpose") {
      std::vector<int64_t> perm;
      if (const auto* a = model::find_attribute(node, "perm")) {
        perm.assign(a->ints().begin(), a->ints().end());
      } else {
        perm.resize(inner->shape.size());
        std::iota(perm.rbegin(), perm.rend(), 0);  // ONNX default: reverse the dims
      }
      if (perm.size() != inner->shape.size())
        return make_error("Transpose '{}': perm has {} entries for a rank-{} weight", view.node_name(*p), perm.size(),
                          inner->shape.size());
      Tensor t(DType::kFloat32, inner->shape);
      std::memcpy(t.bytes.data(), inner->values.data(), t.bytes.size());
      Tensor moved = transpose(t, perm);
      inner->values = moved.to_float();
      inner->shape = moved.shape;
    }
    return inner;
  }
  if (op == "DequantizeLinear") {
    FETAFIX_ASSIGN_OR_RETURN(auto q, resolve_weight(model, view, node.input(0)));
    if (!q) return q;
    FETAFIX_ASSIGN_OR_RETURN(auto scale, resolve_weight(model, view, node.input_size() > 1 ? node.input(1) : ""));
    if (!scale) return std::optional<ResolvedWeight>{};
    std::vector<float> zero_point;
    if (node.input_size() > 2 && !node.input(2).empty()) {
      FETAFIX_ASSIGN_OR_RETURN(auto zp, resolve_weight(model, view, node.input(2)));
      if (!zp) return std::optional<ResolvedWeight>{};
      zero_point = std::move(zp->values);
    }
    FETAFIX_ASSIGN_OR_RETURN(int64_t axis, model::get_int_or(node, "axis", 1));
    if (scale->values.size() > 1) {
      const int64_t rank = static_cast<int64_t>(q->shape.size());
      const int64_t a = axis < 0 ? axis + rank : axis;
      if (a < 0 || a >= rank || q->shape[static_cast<size_t>(a)] != static_cast<int64_t>(scale->values.size()) ||
          (!zero_point.empty() && zero_point.size() != scale->values.size()))
        return make_error("DequantizeLinear '{}': {} scales do not fit axis {} of shape {}", view.node_name(*p),
                          scale->values.size(), axis, shape_to_string(q->shape));
    }
    q->values = dequantize(q->values, q->shape, scale->values, zero_point, axis);
    q->chain.insert(q->chain.begin(), op);
    q->dequantized = true;
    return q;
  }
  return std::optional<ResolvedWeight>{};
}

bool is_transparent_op(const std::string& op_type) {
  static const std::set<std::string> kTransparent{"Identity", "Cast",          "Transpose",      "Reshape",
                                                  "Squeeze",  "Unsqueeze",     "QuantizeLinear", "DequantizeLinear"};
  return kTransparent.count(op_type) != 0;
}

std::vector<size_t> following_chain(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                    size_t max_nodes, const std::string& skip_node) {
  std::vector<size_t> chain;
  size_t current = node;
  while (chain.size() < max_nodes) {
    const auto& n = view.node(current);
    if (n.output_size() == 0) break;
    auto uses = view.consumers(n.output(0));
    if (uses.size() != 1 || view.is_graph_output(n.output(0))) break;
    const size_t next = uses[0].node;
    const std::string& op = view.node(next).op_type();
    if (stop_ops.count(op)) break;
    current = next;
    if (is_transparent_op(op) || view.node_name(next) == skip_node) continue;
    chain.push_back(next);
  }
  return chain;
}

std::vector<size_t> nodes_downstream(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                     size_t max_depth) {
  std::vector<size_t> listed;
  std::set<size_t> seen{node};
  std::vector<size_t> frontier{node};
  for (size_t depth = 0; depth < max_depth && !frontier.empty(); ++depth) {
    std::vector<size_t> next;
    for (size_t n : frontier)
      for (const auto& out : view.node(n).output()) {
        if (out.empty()) continue;
        std::vector<size_t> users;
        for (const auto& use : view.consumers(out)) users.push_back(use.node);
        std::sort(users.begin(), users.end());
        for (size_t u : users) {
          if (!seen.insert(u).second || stop_ops.count(view.node(u).op_type())) continue;
          next.push_back(u);
          if (!is_transparent_op(view.node(u).op_type())) listed.push_back(u);
        }
      }
    frontier = std::move(next);
  }
  return listed;
}

Region make_region(const model::GraphView& view, const std::vector<size_t>& node_set, size_t last_node) {
  std::set<size_t> members(node_set.begin(), node_set.end());
  members.insert(last_node);
  Region region;
  std::set<size_t> visited;
  std::set<std::string> seen_inputs;
  // Post-order DFS from the last node: producers before consumers, inputs by position.
  std::function<void(size_t)> visit = [&](size_t n) {
    visited.insert(n);
    const auto& node = view.node(n);
    for (const auto& in : node.input()) {
      if (in.empty()) continue;
      auto p = view.producer(in);
      if (p && members.count(*p)) {
        if (!visited.count(*p)) visit(*p);
        continue;
      }
      const auto& real = view.real_inputs();
      const bool activation =
          p ? view.reached_from_inputs(*p) : std::find(real.begin(), real.end(), in) != real.end();
      if (activation && seen_inputs.insert(in).second) region.inputs.push_back(in);
    }
    region.nodes.push_back(n);
  };
  visit(last_node);
  const auto& last = view.node(last_node);
  region.output = last.output_size() > 0 ? last.output(0) : "";
  return region;
}

nlohmann::json region_to_json(const model::GraphView& view, const Region& region) {
  nlohmann::json nodes = nlohmann::json::array(), ops = nlohmann::json::array();
  for (size_t n : region.nodes) {
    nodes.push_back(view.node_name(n));
    ops.push_back(view.node(n).op_type());
  }
  return {{"nodes", nodes}, {"ops", ops}, {"inputs", region.inputs}, {"output", region.output}};
}

}  // namespace fetafix::localize::layer
