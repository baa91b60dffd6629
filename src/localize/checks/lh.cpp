// LH (paper §4.1, layer hyperparameters): the attributes of each matched layer and of its paired
// neighbours, as the node effectively has them (ONNX defaults applied, auto_pad resolved, a zero
// Pad right before a Conv folded into its pads, Clip bounds read from inputs). One finding per
// differing attribute; its repair sets the Source's value on the Target's node.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>
#include <onnx/defs/schema.h>

#include "localize/checks/check.h"
#include "localize/layer_pairs.h"
#include "model/attributes.h"

namespace fetafix::localize {
namespace {

using layer::resolve_input;
using layer::Side;
using layer::Views;
using nlohmann::json;

// One attribute as the node effectively has it.
struct Reading {
  bool applicable = false;  // present, or absent with a known ONNX default
  bool explicit_value = false;
  json value;               // null: absent without default (or an absent Clip bound: no bound)
  std::string form;         // "attribute", "input", "default", "auto_pad", "pad_node"
};

json attribute_json(const onnx::AttributeProto& a) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: return a.i();
    case onnx::AttributeProto::FLOAT: return static_cast<double>(a.f());
    case onnx::AttributeProto::STRING: return a.s();
    case onnx::AttributeProto::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case onnx::AttributeProto::FLOATS: {
      std::vector<double> v(a.floats().begin(), a.floats().end());
      return v;
    }
    default: return std::string(model::attribute_type_name(a.type()));
  }
}

bool is_kernel_op(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "MaxPool" || op == "AveragePool" || op == "LpPool";
}

std::optional<std::vector<int64_t>> shape_of(const Side& side, const std::string& value) {
  auto it = side.observed_shapes.find(value);
  if (it != side.observed_shapes.end()) return it->second;
  return side.view.shape(value);
}

bool known_dims(const std::vector<int64_t>& dims) {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d > 0; });
}

// The attribute's default as the ONNX operator schemas state it (OpSchemaRegistry) for the node's
// op at the model's opset; nullopt when the schema gives none (or the registry does not know the op).
std::optional<json> schema_default(const onnx::NodeProto& node, const std::string& name, int64_t opset) {
  const bool default_domain = node.domain().empty() || node.domain() == "ai.onnx";
  if (!default_domain || opset <= 0) return std::nullopt;
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(node.op_type(), static_cast<int>(opset), "");
  if (!schema) return std::nullopt;
  const auto& attributes = schema->attributes();
  auto it = attributes.find(name);
  if (it == attributes.end() || !it->second.default_value.has_type()) return std::nullopt;
  const onnx::AttributeProto& a = it->second.default_value;
  switch (a.type()) {
    case onnx::AttributeProto::INT: return json(a.i());
    // The shortest decimal that reads back as the float (1e-05, as a person writes it).
    case onnx::AttributeProto::FLOAT: return json(std::stod(fmt::format("{}", a.f())));
    case onnx::AttributeProto::STRING: return json(a.s());
    case onnx::AttributeProto::INTS: return json(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    default: return std::nullopt;
  }
}

// Defaults where the schema gives none: ops the registry does not know (a domain of its own, an
// undeclared opset, an op newer than the installed ONNX), and attributes an older opset lacks but
// whose absence behaves as the later default (MaxPool before opset 10 has no ceil_mode: it floors,
// as ceil_mode 0 does) — so an opset upgrade alone is no hyperparameter difference.
std::optional<json> fallback_default(const std::string& op, const std::string& name, int64_t opset) {
  if (is_kernel_op(op)) {
    if (name == "auto_pad") return json("NOTSET");
    if ((op == "Conv" || op == "ConvTranspose") && name == "group") return json(1);
    if ((op == "MaxPool" || op == "AveragePool") && name == "ceil_mode") return json(0);
    if (op == "AveragePool" && name == "count_include_pad") return json(0);
  }
  if (name == "epsilon" && (op == "BatchNormalization" || op == "InstanceNormalization" ||
                            op == "LayerNormalization" || op == "GroupNormalization"))
    return json(1e-5);
  if (name == "axis") {
    if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") return json(opset >= 13 ? -1 : 1);
    if (op == "Flatten" || op == "QuantizeLinear" || op == "DequantizeLinear") return json(1);
    if (op == "Gather" || op == "GatherElements" || op == "Split" || op == "ArgMax" || op == "ArgMin") return json(0);
    if (op == "LayerNormalization") return json(-1);
  }
  return std::nullopt;
}

std::optional<json> default_value(const onnx::NodeProto& node, const std::string& name, int64_t opset,
                                  std::optional<size_t> spatial_rank, std::optional<std::vector<int64_t>> kernel) {
  const std::string& op = node.op_type();
  // What the schemas state only in words: one per spatial axis, or the weight's kernel.
  if (is_kernel_op(op)) {
    if (spatial_rank && (name == "strides" || name == "dilations")) return json(std::vector<int64_t>(*spatial_rank, 1));
    if (spatial_rank && name == "pads") return json(std::vector<int64_t>(*spatial_rank * 2, 0));
    if ((op == "Conv" || op == "ConvTranspose") && name == "kernel_shape" && kernel) return json(*kernel);
  }
  // No Clip bound is no bound (opset 6's schema says ±FLT_MAX, which clips nothing either).
  if (op == "Clip" && (name == "min" || name == "max")) return json(nullptr);
  if (auto d = schema_default(node, name, opset)) return d;
  return fallback_default(op, name, opset);
}

// Pads implied by auto_pad on an input of spatial dims `in` (ONNX: SAME_UPPER puts the odd
// pixel at the end, SAME_LOWER at the beginning).
std::vector<int64_t> implied_pads(const std::string& auto_pad, const std::vector<int64_t>& in,
                                  const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations) {
  const size_t r = in.size();
  std::vector<int64_t> pads(2 * r, 0);
  if (auto_pad == "VALID") return pads;
  for (size_t i = 0; i < r; ++i) {
    const int64_t out = (in[i] + strides[i] - 1) / strides[i];
    const int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in[i]);
    const int64_t small = total / 2, large = total - small;
    pads[i] = auto_pad == "SAME_UPPER" ? small : large;
    pads[i + r] = auto_pad == "SAME_UPPER" ? large : small;
  }
  return pads;
}

std::vector<int64_t> json_ints(const json& j) {
  std::vector<int64_t> v;
  if (j.is_array())
    for (const auto& x : j) v.push_back(x.is_number() ? x.get<int64_t>() : 0);
  return v;
}

// A zero Pad whose zeros reach a Conv unchanged: the Pad, its pads (begin..., end... over all
// dims) and the element-wise nodes between them (each mapping 0 to 0, nearest the Conv first).
struct FoldedPad {
  size_t pad = 0;
  std::vector<int64_t> pads;
  std::vector<size_t> between;
};

// Nodes a zero Pad may stand behind and still pad the Conv it feeds: a port's range Clip of int8
// activations, a ReLU, a per-channel scale between the Pad and the Conv leave its zeros zero.
constexpr size_t kMaxNodesBetweenPadAndConv = 4;

// Whether every input of `n` but `x` is a constant whose values satisfy `ok`.
Result<bool> constants_satisfy(const Side& side, size_t n, const std::string& x, const std::function<bool(float)>& ok) {
  const auto& node = side.view.node(n);
  for (int i = 0; i < node.input_size(); ++i) {
    if (node.input(i) == x || node.input(i).empty()) continue;
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, i));
    if (!w || !std::all_of(w->values.begin(), w->values.end(), ok)) return false;
  }
  return true;
}

// The input of `n` that varies when `n` maps 0 to 0 element-wise (its other inputs constants):
// Relu, Clip/Max/Min with bounds around 0, Mul by or Div by a finite constant, ...; nullopt
// when it does not.
Result<std::optional<std::string>> zero_keeping_input(const Side& side, size_t n) {
  using Out = std::optional<std::string>;
  const auto& node = side.view.node(n);
  const std::string& op = node.op_type();
  if (node.input_size() == 0 || node.output_size() != 1) return Out{};
  static const std::set<std::string> kUnary{"Identity", "Relu", "LeakyRelu", "Cast", "Tanh", "Elu", "Selu", "Neg"};
  if (kUnary.count(op)) return node.input_size() == 1 ? Out{node.input(0)} : Out{};
  const auto finite = [](float v) { return std::isfinite(v); };
  if (op == "Clip") {
    if (const auto* a = model::find_attribute(node, "min"); a && a->f() > 0) return Out{};
    if (const auto* a = model::find_attribute(node, "max"); a && a->f() < 0) return Out{};
    for (int i = 1; i < node.input_size() && i <= 2; ++i) {
      if (node.input(i).empty()) continue;
      FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, i));
      if (!w || w->values.size() != 1 || (i == 1 ? w->values[0] > 0 : w->values[0] < 0)) return Out{};
    }
    return Out{node.input(0)};
  }
  const std::map<std::string, std::function<bool(float)>> kBinary{
      {"Mul", finite},
      {"Div", [](float v) { return std::isfinite(v) && v != 0; }},
      {"Max", [](float v) { return v <= 0; }},
      {"Min", [](float v) { return v >= 0; }}};
  auto it = kBinary.find(op);
  if (it == kBinary.end() || node.input_size() != 2) return Out{};
  for (int i = 0; i < 2; ++i) {
    if (op == "Div" && i == 1) break;  // c / x is no scaling of x
    FETAFIX_ASSIGN_OR_RETURN(bool constant_other, constants_satisfy(side, n, node.input(i), it->second));
    FETAFIX_ASSIGN_OR_RETURN(auto self, resolve_input(side, n, i));
    if (constant_other && !self) return Out{node.input(i)};
  }
  return Out{};
}

// The pads of a zero-valued constant Pad padding only spatial dims; nullopt when it is anything else.
Result<std::optional<std::vector<int64_t>>> zero_pad_pads(const Side& side, size_t p) {
  using Out = std::optional<std::vector<int64_t>>;
  const auto& pad = side.view.node(p);
  FETAFIX_ASSIGN_OR_RETURN(std::string mode, model::get_string_or(pad, "mode", "constant"));
  if (mode != "constant" || pad.input_size() > 3) return Out{};  // opset 18 `axes`: not folded
  std::vector<int64_t> pads;
  float value = 0;
  if (const auto* a = model::find_attribute(pad, "pads")) {
    pads.assign(a->ints().begin(), a->ints().end());
    FETAFIX_ASSIGN_OR_RETURN(value, model::get_float_or(pad, "value", 0.0f));
  } else {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, p, 1));
    if (!w) return Out{};
    for (float x : w->values) pads.push_back(static_cast<int64_t>(x));
    if (pad.input_size() > 2 && !pad.input(2).empty()) {
      FETAFIX_ASSIGN_OR_RETURN(auto cv, resolve_input(side, p, 2));
      if (!cv || cv->values.size() != 1) return Out{};
      value = cv->values[0];
    }
  }
  const size_t rank = pads.size() / 2;
  if (value != 0.0f || rank < 3 || pads.size() != 2 * rank) return Out{};
  if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) return Out{};
  return Out{pads};
}

// A zero Pad feeding only `conv`, directly or through up to kMaxNodesBetweenPadAndConv nodes
// that keep zeros (each read only by the next), so `Pad + Conv(pads 0)` compares with
// `Conv(pads)`. nullopt when there is none.
Result<std::optional<FoldedPad>> foldable_pad(const Side& side, size_t conv) {
  using Out = std::optional<FoldedPad>;
  const auto& node = side.view.node(conv);
  if (node.input_size() == 0) return Out{};
  FoldedPad folded;
  std::string value = node.input(0);
  for (size_t step = 0; step <= kMaxNodesBetweenPadAndConv; ++step) {
    auto p = side.view.producer(value);
    if (!p || side.view.consumers(value).size() != 1 || side.view.is_graph_output(value)) return Out{};
    if (side.view.node(*p).op_type() == "Pad") {
      FETAFIX_ASSIGN_OR_RETURN(auto pads, zero_pad_pads(side, *p));
      if (!pads) return Out{};
      folded.pad = *p;
      folded.pads = std::move(*pads);
      return Out{std::move(folded)};
    }
    FETAFIX_ASSIGN_OR_RETURN(auto x, zero_keeping_input(side, *p));
    if (!x) return Out{};
    folded.between.push_back(*p);
    value = *x;
  }
  return Out{};
}

Result<std::map<std::string, Reading>> read_hyperparameters(const Side& side, size_t n, const LayerCheckOptions& options,
                                                           std::optional<FoldedPad>& folded) {
  const auto& node = side.view.node(n);
  const std::string& op = node.op_type();
  const int64_t opset = layer::default_opset(side.model);
  std::optional<std::vector<int64_t>> input_shape;
  if (node.input_size() > 0) input_shape = shape_of(side, node.input(0));

  // Spatial rank and (Conv) kernel from kernel_shape, the weight's shape, or the input's rank.
  std::optional<size_t> spatial_rank;
  std::optional<std::vector<int64_t>> kernel;
  if (const auto* a = model::find_attribute(node, "kernel_shape")) spatial_rank = a->ints_size();
  if ((op == "Conv" || op == "ConvTranspose") && node.input_size() > 1) {
    auto ws = shape_of(side, node.input(1));
    if (!ws) {
      FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, 1));
      if (w) ws = w->shape;
    }
    if (ws && ws->size() >= 2) {
      kernel = std::vector<int64_t>(ws->begin() + 2, ws->end());
      if (!spatial_rank) spatial_rank = kernel->size();
    }
  }
  if (!spatial_rank && input_shape && input_shape->size() >= 2) spatial_rank = input_shape->size() - 2;

  std::map<std::string, Reading> readings;
  auto read = [&](const std::string& name) -> Status {
    Reading r;
    if (const auto* a = model::find_attribute(node, name)) {
      r = {true, true, attribute_json(*a), "attribute"};
    } else if (op == "Clip" && (name == "min" || name == "max") && opset >= 11) {
      const int index = name == "min" ? 1 : 2;
      if (index < node.input_size() && !node.input(index).empty()) {
        FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, index));
        r = {true, true, w && w->values.size() == 1 ? json(static_cast<double>(w->values[0])) : json("<computed>"),
             "input"};
      } else {
        r = {true, false, nullptr, "default"};
      }
    } else if (auto d = default_value(node, name, opset, spatial_rank, kernel)) {
      r = {true, false, *d, "default"};
    }
    if (name == "axis" && r.value.is_number_integer() && r.value.get<int64_t>() < 0 && input_shape)
      r.value = r.value.get<int64_t>() + static_cast<int64_t>(input_shape->size());
    readings[name] = std::move(r);
    return {};
  };
  for (const auto& name : options.hyperparameters) FETAFIX_TRY_STATUS(read(name));
  // Pad resolution below needs these even when the caller does not compare them.
  for (const char* name : {"pads", "strides", "dilations", "kernel_shape", "auto_pad"})
    if (!readings.count(name)) FETAFIX_TRY_STATUS(read(name));

  if (is_kernel_op(op) && op != "ConvTranspose") {
    Reading& auto_pad = readings["auto_pad"];
    const std::string mode = auto_pad.value.is_string() ? auto_pad.value.get<std::string>() : "NOTSET";
    if (mode != "NOTSET" && input_shape && spatial_rank && input_shape->size() == *spatial_rank + 2) {
      const std::vector<int64_t> in(input_shape->begin() + 2, input_shape->end());
      const auto k = json_ints(readings["kernel_shape"].value);
      const auto s = json_ints(readings["strides"].value);
      const auto d = json_ints(readings["dilations"].value);
      if (known_dims(in) && k.size() == in.size() && s.size() == in.size() && d.size() == in.size()) {
        readings["pads"] = {true, true, implied_pads(mode, in, k, s, d), "auto_pad"};
        auto_pad.value = "NOTSET";
      }
    }
    if (op == "Conv" && auto_pad.value == "NOTSET") {
      FETAFIX_ASSIGN_OR_RETURN(auto pad, foldable_pad(side, n));
      auto conv_pads = json_ints(readings["pads"].value);
      if (pad && spatial_rank && conv_pads.size() == 2 * *spatial_rank && pad->pads.size() == 2 * (*spatial_rank + 2)) {
        const size_t r = *spatial_rank, full = r + 2;
        for (size_t i = 0; i < r; ++i) {
          conv_pads[i] += pad->pads[2 + i];
          conv_pads[r + i] += pad->pads[full + 2 + i];
        }
        readings["pads"] = {true, true, conv_pads, "pad_node"};
        folded = std::move(pad);
      }
    }
  }
  return readings;
}

bool values_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_float() || b.is_number_float())
      return static_cast<float>(a.get<double>()) == static_cast<float>(b.get<double>());
    return a.get<int64_t>() == b.get<int64_t>();
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!values_equal(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

std::string value_text(const Reading& r) {
  if (!r.applicable) return "absent";
  const std::string v = r.value.is_null() ? "none" : r.value.dump();
  return r.explicit_value ? v : v + " (default)";
}

Status compare_hyperparameters(const Side& src, const Side& tgt, const Views& v, size_t s, size_t t,
                               const match::NodeMatch& pair, int rank, const LayerCheckOptions& options,
                               std::vector<Finding>& out) {
  std::optional<FoldedPad> s_pad, t_pad;
  FETAFIX_ASSIGN_OR_RETURN(auto rs, read_hyperparameters(src, s, options, s_pad));
  FETAFIX_ASSIGN_OR_RETURN(auto rt, read_hyperparameters(tgt, t, options, t_pad));
  for (const auto& name : options.hyperparameters) {
    const Reading& a = rs[name];
    const Reading& b = rt[name];
    if (!a.applicable && !b.applicable) continue;
    if (a.applicable && b.applicable && values_equal(a.value, b.value)) continue;
    const char* kind = a.explicit_value && !b.explicit_value   ? "missing"
                       : !a.explicit_value && b.explicit_value ? "extra"
                                                               : "different";
    const std::string source_node = v.source.node_name(s), target_node = v.target.node_name(t);
    const std::string& op = v.source.node(s).op_type();
    std::string summary =
        std::string(kind) == "missing"
            ? fmt::format("{} {} in Source, missing in Target ({} '{}')", name, value_text(a), op, target_node)
        : std::string(kind) == "extra"
            ? fmt::format("{} {} in Target, not set in Source ({} '{}')", name, value_text(b), op, target_node)
            : fmt::format("{} {} in Source, {} in Target ({} '{}')", name, value_text(a), value_text(b), op,
                          target_node);
    std::vector<size_t> s_nodes{s}, t_nodes{t};
    for (auto [pad, nodes] : {std::pair{&s_pad, &s_nodes}, std::pair{&t_pad, &t_nodes}}) {
      if (!*pad) continue;
      nodes->push_back((*pad)->pad);
      nodes->insert(nodes->end(), (*pad)->between.begin(), (*pad)->between.end());
    }
    HyperparametersEvidence e;
    e.attribute = name;
    e.kind = kind;
    e.source_value = a.value;
    e.target_value = b.value;
    e.source_explicit = a.explicit_value;
    e.target_explicit = b.explicit_value;
    e.source_form = a.form;
    e.target_form = b.form;
    e.source_op = op;
    e.target_op = v.target.node(t).op_type();
    e.core_source_node = pair.source_node;
    e.core_target_node = pair.target_node;
    e.source_pad_node = s_pad ? v.source.node_name(s_pad->pad) : "";
    e.target_pad_node = t_pad ? v.target.node_name(t_pad->pad) : "";
    e.regions.source = layer::region_names(v.source, layer::make_region(v.source, s_nodes, s));
    e.regions.target = layer::region_names(v.target, layer::make_region(v.target, t_nodes, t));
    Finding f = make_finding(std::move(e), source_node, target_node, std::move(summary), rank);
    out.push_back(std::move(f));
  }
  return {};
}

}  // namespace

Result<std::vector<Finding>> check_hyperparameters(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                   const std::vector<match::NodeMatch>& pairs,
                                                   const LayerCheckOptions& options) {
  const layer::PairCompare attributes = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                                     const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_hyperparameters(a, b, v, s, t, pair, r, options, out);
  };
  return layer::over_pairs_and_neighbours(source, target, pairs, options, attributes, attributes,
                                   [](const Views&, size_t) { return true; }, /*fan_out=*/true);
}

json HyperparametersEvidence::to_json() const {
  json j{
      {"attribute", attribute},
      {"kind", kind},
      {"source_value", source_value},
      {"target_value", target_value},
      {"source_explicit", source_explicit},
      {"target_explicit", target_explicit},
      {"source_form", source_form},
      {"target_form", target_form},
      {"source_op", source_op},
      {"target_op", target_op},
      {"core_source_node", core_source_node},
      {"core_target_node", core_target_node},
      {"source_pad_node", source_pad_node},
      {"target_pad_node", target_pad_node},
  };
  regions.add_to(j);
  return j;
}

Result<std::vector<Finding>> HyperparametersEvidence::run(const CheckContext& c) {
  return check_hyperparameters(*c.source.model, *c.target.model, c.matching->pairs, *c.layer_options);
}

}  // namespace fetafix::localize
