#include "inject/dequantize.h"

#include <set>

#include <fmt/format.h>

#include "model/builder.h"
#include "model/graph.h"
#include "model/opset.h"
#include "model/weights.h"

namespace fetafix::inject {

namespace {

// The integer range of a quantized type, from its zero point's dtype (uint8 when absent).
std::pair<float, float> integer_range(DType t) {
  switch (t) {
    case DType::kInt8: return {-128.0f, 127.0f};
    case DType::kUInt16: return {0.0f, 65535.0f};
    case DType::kInt16: return {-32768.0f, 32767.0f};
    default: return {0.0f, 255.0f};
  }
}

// (q - zero_point) * scale, per tensor or along `axis`.
Result<Tensor> dequantize_weight(const onnx::ModelProto& m, const onnx::NodeProto& dq) {
  FETAFIX_ASSIGN_OR_RETURN(Tensor q, model::get_weight(m, dq.input(0)));
  FETAFIX_ASSIGN_OR_RETURN(Tensor scale, model::get_weight(m, dq.input(1)));
  std::vector<float> zero(static_cast<size_t>(scale.numel()), 0.0f);
  if (dq.input_size() > 2 && !dq.input(2).empty()) {
    FETAFIX_ASSIGN_OR_RETURN(Tensor zp, model::get_weight(m, dq.input(2)));
    if (zp.numel() != scale.numel()) return make_error("'{}': zero point and scale sizes differ", dq.name());
    zero = zp.to_float();
  }
  const auto qs = q.to_float(), ss = scale.to_float();
  Tensor f(DType::kFloat32, q.shape);
  if (scale.numel() == 1) {
    for (size_t k = 0; k < qs.size(); ++k) f.data<float>()[k] = (qs[k] - zero[0]) * ss[0];
    return f;
  }
  int64_t axis = 1;
  for (const auto& a : dq.attribute())
    if (a.name() == "axis") axis = a.i();
  const int64_t rank = static_cast<int64_t>(q.shape.size());
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank || q.shape[axis] != scale.numel())
    return make_error("'{}': per-axis scale of {} does not fit axis {} of {}", dq.name(), scale.numel(), axis,
                      shape_to_string(q.shape));
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= q.shape[d];
  const int64_t channels = q.shape[axis];
  for (size_t k = 0; k < qs.size(); ++k) {
    const size_t c = static_cast<size_t>((static_cast<int64_t>(k) / inner) % channels);
    f.data<float>()[k] = (qs[k] - zero[c]) * ss[c];
  }
  return f;
}

}  // namespace

Result<onnx::ModelProto> dequantize_qdq(const onnx::ModelProto& qdq, DequantizeReport* report) {
  DequantizeReport rep;
  const int64_t opset = model::default_opset(qdq);
  if (opset < 11) return make_error("dequantize: opset {} is older than 11 (Clip bounds as inputs)", opset);
  onnx::ModelProto out = qdq;
  auto& g = *out.mutable_graph();
  g.clear_node();
  std::vector<onnx::TensorProto> added;
  for (const auto& node : qdq.graph().node()) {
    if (node.op_type() == "DequantizeLinear" && model::is_weight(qdq, node.input(0))) {
      auto f = dequantize_weight(qdq, node);
      if (!f.ok()) return make_error("dequantize: {}", f.error().message);
      added.push_back(model::tensor_to_proto(*f, node.output(0)));
      ++rep.weights_folded;
      continue;
    }
    if (node.op_type() == "QuantizeLinear") {
      FETAFIX_ASSIGN_OR_RETURN(Tensor scale, model::get_weight(qdq, node.input(1)));
      if (scale.numel() != 1) return make_error("dequantize: '{}' quantizes per axis; only per-tensor activations are supported", node.name());
      float zero = 0;
      DType qtype = DType::kUInt8;
      if (node.input_size() > 2 && !node.input(2).empty()) {
        FETAFIX_ASSIGN_OR_RETURN(Tensor zp, model::get_weight(qdq, node.input(2)));
        zero = zp.to_float()[0];
        qtype = zp.dtype;
      }
      const auto [qmin, qmax] = integer_range(qtype);
      const float s = scale.to_float()[0];
      const std::string lo = node.output(0) + "_clip_min", hi = node.output(0) + "_clip_max";
      added.push_back(model::tensor_to_proto(float_tensor({}, {(qmin - zero) * s}), lo));
      added.push_back(model::tensor_to_proto(float_tensor({}, {(qmax - zero) * s}), hi));
      onnx::NodeProto clip;
      clip.set_op_type("Clip");
      clip.set_name(node.name().empty() ? node.output(0) + "_clip" : node.name());
      clip.add_input(node.input(0));
      clip.add_input(lo);
      clip.add_input(hi);
      clip.add_output(node.output(0));
      *g.add_node() = clip;
      ++rep.activations_clipped;
      continue;
    }
    if (node.op_type() == "DequantizeLinear") {
      // The input's DequantizeLinear (uint8 image -> float) is part of the model's contract.
      bool from_graph_input = false;
      for (const auto& in : qdq.graph().input()) from_graph_input |= in.name() == node.input(0);
      if (from_graph_input) {
        *g.add_node() = node;
        ++rep.dequantize_kept;
        continue;
      }
      onnx::NodeProto identity;
      identity.set_op_type("Identity");
      identity.set_name(node.name());
      identity.add_input(node.input(0));
      identity.add_output(node.output(0));
      *g.add_node() = identity;
      continue;
    }
    *g.add_node() = node;
  }
  for (auto& t : added) *g.add_initializer() = std::move(t);
  // Drop initializers nothing reads any more (the int8 weights, scales and zero points).
  std::set<std::string> used;
  for (const auto& n : g.node())
    for (const auto& in : n.input()) used.insert(in);
  for (const auto& o : g.output()) used.insert(o.name());
  auto* inits = g.mutable_initializer();
  for (int i = inits->size() - 1; i >= 0; --i)
    if (!used.count(inits->Get(i).name())) inits->DeleteSubrange(i, 1);
  // value_info of the old int8 values would now declare the wrong type.
  g.clear_value_info();
  if (report) *report = rep;
  return out;
}

}  // namespace fetafix::inject
