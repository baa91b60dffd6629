#include "model/resolve_weight.h"

#include <cstring>
#include <numeric>

#include "model/attributes.h"
#include "model/layout.h"
#include "model/weights.h"

namespace fetafix::model {

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

Result<std::optional<ResolvedWeight>> resolve_weight(const onnx::ModelProto& model, const GraphView& view,
                                                     const std::string& value) {
  if (value.empty()) return std::optional<ResolvedWeight>{};
  if (is_weight(model, value)) {
    FETAFIX_ASSIGN_OR_RETURN(Tensor t, get_weight(model, value));
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
      if (const auto* a = find_attribute(node, "perm")) {
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
    FETAFIX_ASSIGN_OR_RETURN(int64_t axis, get_int_or(node, "axis", 1));
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

}  // namespace fetafix::model
