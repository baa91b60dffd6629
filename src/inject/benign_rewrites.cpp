// Rewrites that keep what the model computes (within float rounding), as converters and
// optimizers make them: a comparison must not report them as faults.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "inject/injection_context.h"
#include "model/attributes.h"
#include "model/weights.h"

namespace fetafix::inject::detail {
namespace {

using nlohmann::json;

bool op_is(const onnx::NodeProto& n, std::string_view op) { return n.domain().empty() && n.op_type() == op; }

bool is_float_weight(const onnx::ModelProto& m, const std::string& value) {
  const auto w = model::find_weight(m, value);
  return w && w->dtype == DType::kFloat32;
}

int count_uses(const onnx::GraphProto& g, const std::string& value) {
  int uses = 0;
  for (const auto& n : g.node()) uses += static_cast<int>(std::count(n.input().begin(), n.input().end(), value));
  for (const auto& o : g.output()) uses += o.name() == value;
  return uses;
}

const onnx::NodeProto* producer(const onnx::GraphProto& g, const std::string& value) {
  for (const auto& n : g.node())
    if (std::find(n.output().begin(), n.output().end(), value) != n.output().end()) return &n;
  return nullptr;
}

// A BatchNormalization in inference form: four float32 weights, only its first output used.
bool is_inference_bn(const onnx::ModelProto& m, const onnx::NodeProto& n) {
  if (!op_is(n, "BatchNormalization") || n.input_size() != 5) return false;
  for (int k = 1; k < 5; ++k)
    if (!is_float_weight(m, n.input(k))) return false;
  for (int k = 1; k < n.output_size(); ++k)
    if (!n.output(k).empty() && count_uses(m.graph(), n.output(k)) > 0) return false;
  return true;
}

// Per channel: y = a * x + c, computed in double.
Result<std::pair<std::vector<double>, std::vector<double>>> bn_affine(const onnx::ModelProto& m,
                                                                       const onnx::NodeProto& bn) {
  FETAFIX_ASSIGN_OR_RETURN(Tensor gamma, model::get_weight(m, bn.input(1)));
  FETAFIX_ASSIGN_OR_RETURN(Tensor beta, model::get_weight(m, bn.input(2)));
  FETAFIX_ASSIGN_OR_RETURN(Tensor mean, model::get_weight(m, bn.input(3)));
  FETAFIX_ASSIGN_OR_RETURN(Tensor var, model::get_weight(m, bn.input(4)));
  const int64_t c = gamma.numel();
  if (beta.numel() != c || mean.numel() != c || var.numel() != c)
    return make_error("node '{}': BatchNormalization parameters differ in length", bn.name());
  FETAFIX_ASSIGN_OR_RETURN(float eps, model::get_float_or(bn, "epsilon", 1e-5f));
  std::vector<double> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
  for (size_t k = 0; k < a.size(); ++k) {
    a[k] = gamma.data<float>()[k] / std::sqrt(static_cast<double>(var.data<float>()[k]) + eps);
    b[k] = beta.data<float>()[k] - mean.data<float>()[k] * a[k];
  }
  return std::make_pair(std::move(a), std::move(b));
}

Status remove_bn_parameters(Injection& in, const std::vector<std::string>& params, Injected& out) {
  for (const auto& p : params) {
    const bool was_weight = model::find_weight(in.model(), p).has_value();
    FETAFIX_TRY_STATUS(in.remove_weight_if_unused(p));
    if (was_weight && !model::find_weight(in.model(), p)) out.values.push_back(p);
  }
  return Status::Ok();
}

Result<Injected> fold_bn(Injection& in) {
  const auto& m = in.model();
  auto eligible = [&](const onnx::NodeProto& bn) {
    if (!is_inference_bn(m, bn)) return false;
    const onnx::NodeProto* conv = producer(m.graph(), bn.input(0));
    if (!conv || !op_is(*conv, "Conv") || conv->input_size() < 2 || count_uses(m.graph(), bn.input(0)) != 1) return false;
    if (!is_float_weight(m, conv->input(1)) || count_uses(m.graph(), conv->input(1)) != 1) return false;
    const bool has_bias = conv->input_size() > 2 && !conv->input(2).empty();
    return !has_bias || (is_float_weight(m, conv->input(2)) && count_uses(m.graph(), conv->input(2)) == 1);
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles,
                           in.select_nodes(eligible, "BatchNormalization after a Conv with its own weights",
                                           DefaultNodes::kAll));
  Injected out;
  for (const auto& bn_handle : handles) {
    const onnx::NodeProto bn = in.node(bn_handle);
    const std::string conv_handle = bn.input(0);
    const onnx::NodeProto conv = in.node(conv_handle);
    FETAFIX_ASSIGN_OR_RETURN(auto affine, bn_affine(m, bn));
    const auto& [a, c] = affine;
    FETAFIX_ASSIGN_OR_RETURN(Tensor w, model::get_weight(m, conv.input(1)));
    if (w.shape.empty() || w.shape[0] != static_cast<int64_t>(a.size()))
      return make_error("node '{}': Conv weight {} does not match {} BatchNormalization channels", in.node_name(conv_handle),
                        shape_to_string(w.shape), a.size());
    const int64_t per_channel = w.numel() / w.shape[0];
    for (int64_t k = 0; k < w.numel(); ++k)
      w.data<float>()[k] = static_cast<float>(w.data<float>()[k] * a[static_cast<size_t>(k / per_channel)]);
    Tensor bias(DType::kFloat32, {static_cast<int64_t>(a.size())});
    const bool has_bias = conv.input_size() > 2 && !conv.input(2).empty();
    Tensor old_bias = bias;
    if (has_bias) {
      FETAFIX_ASSIGN_OR_RETURN(old_bias, model::get_weight(m, conv.input(2)));
    }
    for (size_t k = 0; k < a.size(); ++k) bias.data<float>()[k] = static_cast<float>(old_bias.data<float>()[k] * a[k] + c[k]);

    const std::string conv_name = in.node_name(conv_handle);
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_weight(conv.input(1), w)));
    out.values.push_back(conv.input(1));
    if (has_bias) {
      FETAFIX_TRY_STATUS(in.apply(model::Edit::set_weight(conv.input(2), bias)));
      out.values.push_back(conv.input(2));
    } else {
      const std::string bias_value = in.fresh_name(conv_name + "_folded_bias");
      FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(bias_value, bias)));
      FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(conv_name, 2, bias_value)));
      out.values.push_back(bias_value);
    }
    FETAFIX_TRY_STATUS(in.redirect_uses(bn.output(0), conv_handle, bn_handle, out));
    out.removed_nodes.push_back(in.node_name(bn_handle));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_node(in.node_name(bn_handle))));
    FETAFIX_TRY_STATUS(remove_bn_parameters(in, {bn.input(1), bn.input(2), bn.input(3), bn.input(4)}, out));
    out.node_handles.push_back(conv_handle);
  }
  out.description = fmt::format("{} BatchNormalization node(s) folded into the Conv before them", handles.size());
  return out;
}

Result<Injected> bn_as_mul_add(Injection& in) {
  const auto& m = in.model();
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(m.graph()));
  // The BN input's rank decides the constants' shape ([C,1,1] for NCHW images).
  auto input_rank = [&](const onnx::NodeProto& bn) -> int64_t {
    if (auto shape = view.shape(bn.input(0))) return static_cast<int64_t>(shape->size());
    const onnx::NodeProto* p = producer(m.graph(), bn.input(0));
    if (p && op_is(*p, "Conv") && spatial_rank(m, *p) > 0) return spatial_rank(m, *p) + 2;
    return 0;
  };
  auto eligible = [&](const onnx::NodeProto& bn) { return is_inference_bn(m, bn) && input_rank(bn) >= 2; };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "BatchNormalization of known input rank",
                                                         DefaultNodes::kAll));
  Injected out;
  for (const auto& bn_handle : handles) {
    const onnx::NodeProto bn = in.node(bn_handle);
    const std::string bn_name = in.node_name(bn_handle);
    FETAFIX_ASSIGN_OR_RETURN(auto affine, bn_affine(in.model(), bn));
    const auto& [a, c] = affine;
    std::vector<int64_t> shape(static_cast<size_t>(input_rank(bn) - 1), 1);
    shape[0] = static_cast<int64_t>(a.size());
    Tensor scale(DType::kFloat32, shape), shift(DType::kFloat32, shape);
    for (size_t k = 0; k < a.size(); ++k) {
      scale.data<float>()[k] = static_cast<float>(a[k]);
      shift.data<float>()[k] = static_cast<float>(c[k]);
    }
    const std::string scale_value = in.fresh_name(bn_name + "_a"), shift_value = in.fresh_name(bn_name + "_c");
    FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(scale_value, scale)));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(shift_value, shift)));
    const std::string scaled = in.fresh_name(bn_name + "_scaled"), shifted = in.fresh_name(bn_name + "_shifted");
    const auto position = static_cast<int64_t>(*in.node_index(bn_handle));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Mul", in.fresh_name(bn_name + "_scale"), {bn.input(0), scale_value}, {scaled}), position)));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Add", in.fresh_name(bn_name + "_shift"), {scaled, shift_value}, {shifted}), position + 1)));
    FETAFIX_TRY_STATUS(in.redirect_uses(bn.output(0), shifted, bn_handle, out));
    out.removed_nodes.push_back(in.node_name(bn_handle));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_node(in.node_name(bn_handle))));
    FETAFIX_TRY_STATUS(remove_bn_parameters(in, {bn.input(1), bn.input(2), bn.input(3), bn.input(4)}, out));
    out.node_handles.insert(out.node_handles.end(), {scaled, shifted});
    out.values.insert(out.values.end(), {scale_value, shift_value});
  }
  out.description = fmt::format("{} BatchNormalization node(s) rewritten as Mul + Add", handles.size());
  return out;
}

// The pads of a Pad node that only pads spatial dims with zeros; empty when it does anything else.
std::vector<int64_t> zero_spatial_pads(const onnx::ModelProto& m, const onnx::NodeProto& pad) {
  auto mode = model::get_string_or(pad, "mode", "constant");
  if (!mode.ok() || *mode != "constant") return {};
  std::vector<int64_t> pads;
  if (auto attr = model::get_ints(pad, "pads"); attr.ok()) {
    pads = *attr;
    auto value = model::get_float_or(pad, "value", 0.0f);
    if (!value.ok() || *value != 0.0f) return {};
  } else {
    if (pad.input_size() < 2) return {};
    auto t = model::get_weight(m, pad.input(1));
    if (!t.ok() || t->dtype != DType::kInt64) return {};
    pads.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
    if (pad.input_size() > 2 && !pad.input(2).empty()) {
      auto value = model::get_weight(m, pad.input(2));
      if (!value.ok()) return {};
      for (float f : value->to_float())
        if (f != 0.0f) return {};
    }
    if (pad.input_size() > 3 && !pad.input(3).empty()) return {};  // axes (opset 18)
  }
  const size_t rank = pads.size() / 2;
  if (rank < 3 || pads.size() % 2) return {};
  if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) return {};
  if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; })) return {};
  return pads;
}

bool explicit_padding(const onnx::NodeProto& conv) {
  auto auto_pad = model::get_string_or(conv, "auto_pad", "NOTSET");
  return auto_pad.ok() && *auto_pad == "NOTSET";
}

Result<Injected> pad_into_conv(Injection& in) {
  const auto& m = in.model();
  auto eligible = [&](const onnx::NodeProto& pad) {
    if (!op_is(pad, "Pad") || zero_spatial_pads(m, pad).empty() || count_uses(m.graph(), pad.output(0)) != 1) return false;
    for (const auto& n : m.graph().node())
      if (n.input_size() > 0 && n.input(0) == pad.output(0))
        return op_is(n, "Conv") && explicit_padding(n) && spatial_rank(m, n) + 2 == static_cast<int64_t>(zero_spatial_pads(m, pad).size() / 2);
    return false;
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "zero Pad feeding only a Conv", DefaultNodes::kAll));
  Injected out;
  for (const auto& pad_handle : handles) {
    const onnx::NodeProto pad = in.node(pad_handle);
    const auto pads = zero_spatial_pads(m, pad);
    const size_t rank = pads.size() / 2, spatial = rank - 2;
    std::string conv_handle;
    for (const auto& n : m.graph().node())
      if (n.input_size() > 0 && n.input(0) == pad_handle) conv_handle = Injection::handle_of(n);
    const std::string conv = in.node_name(conv_handle);
    std::vector<int64_t> conv_pads(2 * spatial, 0);
    if (auto old = model::get_ints(in.node(conv_handle), "pads"); old.ok() && old->size() == conv_pads.size()) conv_pads = *old;
    for (size_t d = 0; d < spatial; ++d) {
      conv_pads[d] += pads[2 + d];
      conv_pads[spatial + d] += pads[rank + 2 + d];
    }
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_attribute(conv, Attr::ints("pads", conv_pads).proto)));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(conv, 0, pad.input(0))));
    out.removed_nodes.push_back(in.node_name(pad_handle));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_node(in.node_name(pad_handle))));
    for (int k = 1; k < pad.input_size(); ++k) {
      const bool was_weight = !pad.input(k).empty() && model::find_weight(in.model(), pad.input(k)).has_value();
      FETAFIX_TRY_STATUS(in.remove_weight_if_unused(pad.input(k)));
      if (was_weight && !model::find_weight(in.model(), pad.input(k))) out.values.push_back(pad.input(k));
    }
    out.node_handles.push_back(conv_handle);
  }
  out.description = fmt::format("{} zero Pad node(s) merged into the pads of the Conv after them", handles.size());
  return out;
}

Result<Injected> conv_pads_to_pad_node(Injection& in) {
  const auto& m = in.model();
  auto eligible = [&](const onnx::NodeProto& n) {
    if (!op_is(n, "Conv") || !explicit_padding(n) || model::is_weight(m, n.input(0))) return false;
    auto pads = model::get_ints(n, "pads");
    return pads.ok() && pads->size() == static_cast<size_t>(2 * spatial_rank(m, n)) &&
           std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p != 0; });
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "Conv with non-zero pads", DefaultNodes::kAll));
  Injected out;
  for (const auto& h : handles) {
    const auto conv_pads = *model::get_ints(in.node(h), "pads");
    const size_t spatial = conv_pads.size() / 2, rank = spatial + 2;
    std::vector<int64_t> pads(2 * rank, 0);
    for (size_t d = 0; d < spatial; ++d) {
      pads[2 + d] = conv_pads[d];
      pads[rank + 2 + d] = conv_pads[spatial + d];
    }
    const std::string conv = in.node_name(h);
    const std::string x = in.node(h).input(0);
    const std::string padded = in.fresh_name(conv + "_padded");
    onnx::NodeProto pad;
    if (in.opset() >= 11) {
      const std::string pads_value = in.fresh_name(conv + "_pads");
      FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(pads_value, int64_tensor({static_cast<int64_t>(pads.size())}, pads))));
      pad = make_node("Pad", in.fresh_name(conv + "_pad"), {x, pads_value}, {padded});
      out.values.push_back(pads_value);
    } else {
      pad = make_node("Pad", in.fresh_name(conv + "_pad"), {x}, {padded}, {Attr::ints("pads", pads).proto});
    }
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(pad, static_cast<int64_t>(*in.node_index(h)))));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(conv, 0, padded)));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_attribute(conv, "pads")));
    out.node_handles.insert(out.node_handles.end(), {padded, h});
  }
  out.description = fmt::format("the pads of {} Conv node(s) moved into a Pad node before each", handles.size());
  return out;
}

// Initializers stored as Constant nodes instead (paddle2onnx's form). The value gets a new name:
// an edit cannot define a value twice, even for a moment.
Result<Injected> weights_as_constants(Injection& in) {
  if (!in.spec().nodes.empty()) return make_error("'weights-as-constants' converts every initializer; it takes no node=");
  std::vector<std::string> initializers;
  for (const auto& init : in.graph().initializer()) {
    const bool listed_as_input = std::any_of(in.graph().input().begin(), in.graph().input().end(),
                                             [&](const auto& i) { return i.name() == init.name(); });
    if (!listed_as_input && in.value_used(init.name())) initializers.push_back(init.name());
  }
  if (initializers.empty()) return make_error("the model has no initializer to store as a Constant");
  Injected out;
  int64_t position = 0;
  for (const auto& value : initializers) {
    FETAFIX_ASSIGN_OR_RETURN(Tensor t, model::get_weight(in.model(), value));
    const std::string constant_value = in.fresh_name(value + "_const");
    onnx::AttributeProto attribute = Attr::tensor("value", t).proto;
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Constant", in.fresh_name(value + "_constant"), {}, {constant_value}, {attribute}), position++)));
    FETAFIX_TRY_STATUS(in.redirect_uses(value, constant_value, constant_value, out));
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_initializer(value)));
    out.node_handles.push_back(constant_value);
    out.values.insert(out.values.end(), {value, constant_value});
  }
  out.description = fmt::format("{} initializer(s) stored as Constant nodes", initializers.size());
  return out;
}

}  // namespace

Result<Injected> inject_benign(Injection& in) {
  const std::string& fault = in.spec().fault;
  if (fault != "nhwc" && !in.spec().value.empty()) return make_error("'{}' takes no value", fault);
  if (fault == "fold-bn") return fold_bn(in);
  if (fault == "bn-as-mul-add") return bn_as_mul_add(in);
  if (fault == "pad-into-conv") return pad_into_conv(in);
  if (fault == "conv-pads-to-pad-node") return conv_pads_to_pad_node(in);
  if (fault == "weights-as-constants") return weights_as_constants(in);
  if (fault == "nhwc") {
    if (!in.spec().value.empty()) return make_error("'nhwc' takes no value");
    FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
    FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
    FETAFIX_ASSIGN_OR_RETURN(const std::string layout, input_layout(dims, input));
    if (layout != "NCHW") return make_error("input '{}' {} is already NHWC", input, shape_to_string(dims));
    return flip_input_layout(in, {0, 3, 1, 2});
  }
  return make_error("fault '{}' is not supported yet", in.spec().text);
}

}  // namespace fetafix::inject::detail
