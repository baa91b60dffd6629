// One strategy per fault type; docs/repair-strategies.md says what each edits and why.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>

#include "localize/layer_support.h"
#include "model/attributes.h"
#include "model/builder.h"
#include "model/graph.h"
#include "model/weights.h"
#include "repair/plan.h"
#include "repair/repair.h"

namespace fetafix::repair {
namespace {

using detail::Plan;
using localize::FaultType;
using localize::Finding;
using nlohmann::json;

std::string finding_label(const Finding& f) {
  std::string where = f.target_node.empty() ? f.source_node : f.target_node;
  return fmt::format("{} finding{}", localize::fault_type_name(f.type), where.empty() ? "" : " at '" + where + "'");
}

// Evidence field access with one-line errors naming the finding.
Result<json> field(const Finding& f, const std::string& key) {
  if (!f.evidence.is_object() || !f.evidence.contains(key))
    return make_error("{}: evidence has no '{}'", finding_label(f), key);
  return f.evidence.at(key);
}

Result<std::vector<int64_t>> int_list(const Finding& f, const std::string& key) {
  FETAFIX_ASSIGN_OR_RETURN(json j, field(f, key));
  if (!j.is_array()) return make_error("{}: evidence '{}' is not a list", finding_label(f), key);
  std::vector<int64_t> out;
  for (const auto& v : j) {
    if (!v.is_number_integer()) return make_error("{}: evidence '{}' holds a non-integer", finding_label(f), key);
    out.push_back(v.get<int64_t>());
  }
  return out;
}

Tensor float_tensor_of(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  Tensor t(DType::kFloat32, shape);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<int64_t> inverse_perm(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return inv;
}

// ---- PP ------------------------------------------------------------------------------------

Result<RepairCandidate> plan_pp(const Finding& f) {
  FETAFIX_ASSIGN_OR_RETURN(json preset_json, field(f, "best_preset_json"));
  data::Preset preset;
  if (auto st = data::apply_overrides(preset, preset_json); !st.ok())
    return make_error("{}: best preset: {}", finding_label(f), st.error().message);
  RepairCandidate c;
  c.description = fmt::format("PP: feed the Target with preset '{}'", preset.name);
  c.preset = std::move(preset);
  return c;
}

// ---- ID ------------------------------------------------------------------------------------

Status plan_id(const onnx::ModelProto& target, const Finding& f, Plan& plan, std::string& description) {
  FETAFIX_ASSIGN_OR_RETURN(json expected, field(f, "target_shape_expected"));
  FETAFIX_ASSIGN_OR_RETURN(json input, field(f, "target_input"));
  if (!expected.is_array())
    return make_error("{}: the input ranks differ; no shape can be copied", finding_label(f));
  std::vector<int64_t> dims;
  for (const auto& d : expected) dims.push_back(d.is_number_integer() ? d.get<int64_t>() : -1);  // named: dynamic
  FETAFIX_ASSIGN_OR_RETURN(auto edit, model::set_graph_input_shape(plan.model(), input.get<std::string>(), dims));
  FETAFIX_TRY_STATUS(plan.add(std::move(edit)));
  description = fmt::format("ID: input '{}' shape {}", input.get<std::string>(), shape_to_string(dims));
  (void)target;
  return {};
}

// ---- TSS -----------------------------------------------------------------------------------

// Input index holding the axes of an op that takes them as an input (opset >= 13).
int axes_input_index(const std::string& op) {
  if (op == "Slice") return 3;
  return 1;  // Unsqueeze, Squeeze, Reduce*
}

Status plan_input_structure(const Finding& f, Plan& plan, std::string& description) {
  std::vector<std::string> changes;
  const json& ev = f.evidence;
  if (ev.contains("transpose") && ev["transpose"].is_object() && ev["transpose"].value("needs_change", false)) {
    const json& t = ev["transpose"];
    if (!t.contains("correct_perm") || !t["correct_perm"].is_array())
      return make_error("{}: no permutation gives the Source's structure", finding_label(f));
    const auto perm = t["correct_perm"].get<std::vector<int64_t>>();
    onnx::NodeProto holder;
    model::set_ints(holder, "perm", perm);
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(t["node"].get<std::string>(), holder.attribute(0))));
    changes.push_back(fmt::format("Transpose '{}' perm {}", t["node"].get<std::string>(), shape_to_string(perm)));
  }
  for (const auto& tied : ev.value("tied_nodes", json::array())) {
    if (!tied.value("needs_change", false)) continue;
    if (!tied.contains("corrected_value") || !tied["corrected_value"].is_number_integer())
      return make_error("{}: tied node '{}' has no corrected axis", finding_label(f), tied.value("node", ""));
    const std::string node = tied["node"].get<std::string>();
    const int64_t axis = tied["corrected_value"].get<int64_t>();
    const std::string attribute = tied.value("attribute", "axis");
    auto index = model::find_node(plan.model().graph(), node);
    if (!index) return make_error("{}: no node named '{}' in the Target", finding_label(f), node);
    const auto& proto = plan.model().graph().node(static_cast<int>(*index));
    onnx::NodeProto holder;
    if (attribute == "axis") {
      model::set_int(holder, "axis", axis);
      FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(node, holder.attribute(0))));
    } else if (model::find_attribute(proto, "axes")) {
      model::set_ints(holder, "axes", {axis});
      FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(node, holder.attribute(0))));
    } else {  // axes as a constant input: a new one, so a constant shared with other nodes stays
      const int slot = axes_input_index(proto.op_type());
      if (slot > proto.input_size()) return make_error("{}: node '{}' has no axes input", finding_label(f), node);
      const std::string name = plan.unique_value_name(node + "_fetafix_axes");
      FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(name, fetafix::int64_tensor({1}, {axis}))));
      FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(node, slot, name)));
    }
    changes.push_back(fmt::format("{} '{}' {} {}", tied.value("op", ""), node, attribute, axis));
  }
  if (changes.empty()) {
    // No Transpose or axis to correct: reorder what the layer sees.
    FETAFIX_ASSIGN_OR_RETURN(auto perm, int_list(f, "perm_to_source"));
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
    if (identity) return make_error("{}: the evidence names nothing to change", finding_label(f));
    FETAFIX_ASSIGN_OR_RETURN(json layer, field(f, "target_layer"));
    FETAFIX_TRY_STATUS(plan.insert_transpose_before(layer.get<std::string>(), 0, perm));
    changes.push_back(fmt::format("Transpose {} before '{}'", shape_to_string(perm), layer.get<std::string>()));
  }
  description = "TSS: ";
  for (size_t i = 0; i < changes.size(); ++i) description += (i ? "; " : "") + changes[i];
  return {};
}

Status plan_flatten_structure(const Finding& f, Plan& plan, std::string& description) {
  FETAFIX_ASSIGN_OR_RETURN(json perm_json, field(f, "perm_to_source"));
  if (!perm_json.is_array()) return make_error("{}: no permutation maps the Target's order onto the Source's", finding_label(f));
  const auto perm = perm_json.get<std::vector<int64_t>>();
  FETAFIX_ASSIGN_OR_RETURN(json value, field(f, "target_value"));
  auto index = model::find_node(plan.model().graph(), f.target_node);
  if (!index) return make_error("{}: no node named '{}' in the Target", finding_label(f), f.target_node);
  const auto& node = plan.model().graph().node(static_cast<int>(*index));
  if (node.input_size() == 0 || node.input(0) != value.get<std::string>())
    return make_error("{}: node '{}' does not read '{}'", finding_label(f), f.target_node, value.get<std::string>());
  FETAFIX_TRY_STATUS(plan.insert_transpose_before(f.target_node, 0, perm));
  description = fmt::format("TSS: Transpose {} before {} '{}'", shape_to_string(perm), node.op_type(), f.target_node);
  return {};
}

// ---- WB ------------------------------------------------------------------------------------

// The Source's values for the finding's tensor as the Target's node must see them: resolved
// through the Source's weight chain, its BN folded in when the Target folded it, permuted into
// the Target's layout (the same steps the WB check compared).
Result<std::vector<float>> source_values_for(const onnx::ModelProto& source, const Finding& f) {
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(source.graph()));
  auto node = view.find_node(f.source_node);
  if (!node) return make_error("{}: no node named '{}' in the Source", finding_label(f), f.source_node);
  const json& ev = f.evidence;
  const std::string role = ev.value("role", "");
  const int input = ev.value("source_input_index", -1);
  const std::string folded = ev.value("bn_folded", "none");
  if (folded == "source")
    return make_error("{}: the Source folded a BatchNormalization the Target keeps; unfolding is not supported",
                      finding_label(f));
  std::vector<float> values;
  std::vector<int64_t> shape;
  if (input >= 0) {
    if (input >= view.node(*node).input_size())
      return make_error("{}: Source node '{}' has no input {}", finding_label(f), f.source_node, input);
    FETAFIX_ASSIGN_OR_RETURN(auto w, localize::layer::resolve_weight(source, view, view.node(*node).input(input)));
    if (!w) return make_error("{}: Source input {} of '{}' is not a weight", finding_label(f), input, f.source_node);
    values = std::move(w->values);
    shape = std::move(w->shape);
  }
  if (folded == "target" && (role == "weight" || role == "bias")) {
    // w' = w * gamma / sqrt(var + eps) along the output-channel axis; b' = (b - mean) * scale + beta.
    const auto& core = view.node(*node);
    FETAFIX_ASSIGN_OR_RETURN(auto main, localize::layer::resolve_weight(source, view, core.input(1)));
    if (!main) return make_error("{}: Source '{}' has no main weight", finding_label(f), f.source_node);
    auto bn = view.find_node(ev.value("folded_bn_node", ""));
    if (!bn || view.node(*bn).op_type() != "BatchNormalization")
      return make_error("{}: folded BatchNormalization '{}' not found in the Source", finding_label(f),
                        ev.value("folded_bn_node", ""));
    std::vector<std::vector<float>> p;
    for (int i = 1; i <= 4; ++i) {
      FETAFIX_ASSIGN_OR_RETURN(auto w, localize::layer::resolve_weight(source, view, view.node(*bn).input(i)));
      if (!w) return make_error("{}: BatchNormalization input {} is not a weight", finding_label(f), i);
      p.push_back(std::move(w->values));
    }
    FETAFIX_ASSIGN_OR_RETURN(float eps, model::get_float_or(view.node(*bn), "epsilon", 1e-5f));
    const std::string& op = core.op_type();
    int64_t axis = 1;
    if (op == "Conv") axis = 0;
    if (op == "Gemm") axis = model::get_int_or(core, "transB", 0).ok() && model::get_int_or(core, "transB", 0).value() ? 0 : 1;
    const auto channels = static_cast<size_t>(main->shape[static_cast<size_t>(axis)]);
    for (const auto& v : p)
      if (v.size() != channels) return make_error("{}: BatchNormalization has {} channels, the layer {}", finding_label(f), v.size(), channels);
    std::vector<double> scale(channels);
    for (size_t c = 0; c < channels; ++c) scale[c] = p[0][c] / std::sqrt(static_cast<double>(p[3][c]) + eps);
    if (role == "weight") {
      int64_t inner = 1;
      for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
      for (size_t i = 0; i < values.size(); ++i)
        values[i] = static_cast<float>(values[i] * scale[static_cast<size_t>((static_cast<int64_t>(i) / inner) % static_cast<int64_t>(channels))]);
    } else {
      if (values.empty()) values.assign(channels, 0.0f), shape = {static_cast<int64_t>(channels)};
      for (size_t c = 0; c < channels && c < values.size(); ++c)
        values[c] = static_cast<float>((values[c] - p[2][c]) * scale[c] + p[1][c]);
    }
  }
  std::vector<int64_t> perm;
  if (ev.contains("layout_permutation") && ev["layout_permutation"].is_array())
    perm = ev["layout_permutation"].get<std::vector<int64_t>>();
  if (!perm.empty() && !values.empty()) {
    if (perm.size() != shape.size())
      return make_error("{}: layout permutation has {} axes, the Source tensor {}", finding_label(f), perm.size(), shape.size());
    values = localize::layer::transpose(float_tensor_of(values, shape), perm).to_float();
  }
  return values;
}

Status plan_wb(const onnx::ModelProto& source, const Finding& f, Plan& plan, std::string& description) {
  if (f.evidence.value("check", "") != "weights") return make_error("{}: not a weights finding", finding_label(f));
  FETAFIX_ASSIGN_OR_RETURN(auto values, source_values_for(source, f));
  const onnx::ModelProto& target = plan.model();
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(target.graph()));
  auto node = view.find_node(f.target_node);
  if (!node) return make_error("{}: no node named '{}' in the Target", finding_label(f), f.target_node);
  const int input = f.evidence.value("input_index", -1);
  const std::string role = f.evidence.value("role", "");

  // Shape and dtype the node sees, and the stored tensor behind it.
  std::vector<int64_t> seen_shape;
  std::optional<localize::layer::ResolvedWeight> resolved;
  if (input >= 0) {
    if (input >= view.node(*node).input_size())
      return make_error("{}: Target node '{}' has no input {}", finding_label(f), f.target_node, input);
    FETAFIX_ASSIGN_OR_RETURN(resolved, localize::layer::resolve_weight(target, view, view.node(*node).input(input)));
    if (!resolved) return make_error("{}: Target input {} of '{}' is not a weight", finding_label(f), input, f.target_node);
    seen_shape = resolved->shape;
  } else {
    seen_shape = {static_cast<int64_t>(values.size())};  // a bias the Target lacks
  }
  const auto count = static_cast<size_t>(shape_numel(seen_shape));
  if (values.empty() && role == "bias") values.assign(count, 0.0f);  // a bias the Source lacks is zero
  if (values.size() == 1 && count != 1) values.assign(count, values[0]);
  if (values.size() != count)
    return make_error("{}: {} Source values cannot fill the Target's {} {}", finding_label(f), values.size(), role,
                      shape_to_string(seen_shape));

  // Write where the Target stores it when the path there only moves data (Identity, Transpose):
  // the stored tensor keeps its name, layout and dtype. Otherwise (Cast, DequantizeLinear, a
  // stored dtype that is not float, a tensor shared with other nodes) the node gets a new float
  // initializer holding exactly what it should see.
  std::vector<std::vector<int64_t>> perms;  // nearest the consumer first
  std::string value = input >= 0 ? view.node(*node).input(input) : "";
  bool direct = input >= 0;
  while (direct) {
    auto producer = view.producer(value);
    if (!producer) break;
    const auto& p = view.node(*producer);
    if (p.op_type() == "Identity") {
      perms.emplace_back();
    } else if (p.op_type() == "Transpose") {
      auto perm = model::get_ints(p, "perm");
      if (!perm.ok()) { direct = false; break; }
      perms.push_back(*perm);
    } else {
      direct = false;
      break;
    }
    if (view.consumers(value).size() != 1) direct = false;
    value = p.input(0);
  }
  auto stored = direct ? model::find_weight(target, value) : std::nullopt;
  if (stored && detail::is_float_dtype(stored->dtype) && view.consumers(value).size() == 1) {
    Tensor t = float_tensor_of(values, seen_shape);
    for (const auto& perm : perms)
      if (!perm.empty()) t = localize::layer::transpose(t, inverse_perm(perm));
    FETAFIX_ASSIGN_OR_RETURN(Tensor typed, detail::floats_as(t.to_float(), stored->shape, stored->dtype));
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_weight(value, typed)));
    description = fmt::format("WB: Source values into '{}' ({}{})", value, dtype_name(typed.dtype), shape_to_string(typed.shape));
    return {};
  }
  DType seen = input >= 0 ? view.dtype(view.node(*node).input(input)) : DType::kUndefined;
  if (!detail::is_float_dtype(seen)) seen = DType::kFloat32;
  if (resolved && resolved->chain.empty() && detail::is_float_dtype(resolved->stored_dtype)) seen = resolved->stored_dtype;
  FETAFIX_ASSIGN_OR_RETURN(Tensor typed, detail::floats_as(values, seen_shape, seen));
  const std::string base = resolved ? resolved->stored_name : f.target_node + "_" + role;
  const std::string name = plan.unique_value_name(base + "_fetafix");
  const int slot = input >= 0 ? input : 2;
  FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(name, typed)));
  for (int k = view.node(*node).input_size(); k < slot; ++k)  // omitted optional inputs before it
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(f.target_node, k, "")));
  FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(f.target_node, slot, name)));
  description = fmt::format("WB: new initializer '{}' ({}{}) as input {} of '{}'", name, dtype_name(seen),
                            shape_to_string(seen_shape), slot, f.target_node);
  return {};
}

// ---- LH ------------------------------------------------------------------------------------

// An attribute named `name` holding `value` (the effective value the LH check reported).
Result<onnx::AttributeProto> attribute_from_json(const std::string& name, const json& value) {
  static const std::set<std::string> kInts{"pads", "strides", "kernel_shape", "dilations", "perm", "axes"};
  static const std::set<std::string> kFloats{"epsilon", "min", "max", "alpha", "beta"};
  onnx::NodeProto holder;
  if (value.is_string()) {
    model::set_string(holder, name, value.get<std::string>());
  } else if (value.is_array()) {
    bool all_int = std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_number_integer(); });
    if (all_int && !kFloats.count(name)) model::set_ints(holder, name, value.get<std::vector<int64_t>>());
    else model::set_floats(holder, name, value.get<std::vector<float>>());
  } else if (value.is_number()) {
    if (value.is_number_integer() && !kFloats.count(name) && !kInts.count(name)) model::set_int(holder, name, value.get<int64_t>());
    else model::set_float(holder, name, value.get<float>());
  } else {
    return make_error("attribute '{}': no value to set", name);
  }
  return holder.attribute(0);
}

Status plan_lh(const onnx::ModelProto& source, const Finding& f, Plan& plan, std::string& description) {
  const json& ev = f.evidence;
  if (ev.value("check", "") != "hyperparameters") return make_error("{}: not a hyperparameters finding", finding_label(f));
  const std::string name = ev.value("attribute", "");
  const std::string source_form = ev.value("source_form", ""), target_form = ev.value("target_form", "");
  const json source_value = ev.contains("source_value") ? ev["source_value"] : json(nullptr);
  if (target_form == "pad_node")
    return make_error("{}: the Target pads with a Pad node; editing it is not supported", finding_label(f));
  auto index = model::find_node(plan.model().graph(), f.target_node);
  if (!index) return make_error("{}: no node named '{}' in the Target", finding_label(f), f.target_node);
  const onnx::NodeProto node = plan.model().graph().node(static_cast<int>(*index));

  // Clip bounds are inputs from opset 11 on: point the slot at a new scalar, or at nothing.
  if (node.op_type() == "Clip" && (name == "min" || name == "max") && localize::layer::default_opset(plan.model()) >= 11) {
    const int slot = name == "min" ? 1 : 2;
    if (source_value.is_null()) {
      if (slot >= node.input_size()) return make_error("{}: Clip '{}' has no {} to remove", finding_label(f), f.target_node, name);
      FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(f.target_node, slot, "")));
      description = fmt::format("LH: Clip '{}' loses its {}", f.target_node, name);
      return {};
    }
    FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(plan.model().graph()));
    DType dtype = node.input_size() ? view.dtype(node.input(0)) : DType::kUndefined;
    if (!detail::is_float_dtype(dtype)) dtype = DType::kFloat32;
    FETAFIX_ASSIGN_OR_RETURN(Tensor bound, detail::floats_as({source_value.get<float>()}, {}, dtype));
    const std::string value = plan.unique_value_name(f.target_node + "_fetafix_" + name);
    FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(value, bound)));
    for (int k = node.input_size(); k < slot; ++k) FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(f.target_node, k, "")));
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(f.target_node, slot, value)));
    description = fmt::format("LH: Clip '{}' {} {}", f.target_node, name, source_value.dump());
    return {};
  }

  std::vector<std::string> changes;
  // Explicit pads replace an auto_pad the Target resolves differently.
  if (name != "auto_pad" && target_form == "auto_pad" && model::find_attribute(node, "auto_pad")) {
    FETAFIX_TRY_STATUS(plan.add(model::Edit::remove_attribute(f.target_node, "auto_pad")));
    changes.push_back("auto_pad removed");
  }
  if (source_form == "default" || source_value.is_null()) {
    if (model::find_attribute(node, name)) {
      FETAFIX_TRY_STATUS(plan.add(model::Edit::remove_attribute(f.target_node, name)));
      changes.push_back(name + " removed (the default, as in the Source)");
    }
  } else {
    // The Source's own attribute when it has one (exact type and value), else the effective value.
    onnx::AttributeProto attr;
    FETAFIX_ASSIGN_OR_RETURN(auto sview, model::GraphView::build(source.graph()));
    auto snode = sview.find_node(f.source_node);
    const onnx::AttributeProto* own = snode && source_form == "attribute" ? model::find_attribute(sview.node(*snode), name) : nullptr;
    if (own) {
      attr = *own;
    } else {
      FETAFIX_ASSIGN_OR_RETURN(attr, attribute_from_json(name, source_value));
    }
    if (const auto* existing = model::find_attribute(node, name); existing && existing->type() != attr.type()) {
      auto typed = attribute_from_json(name, source_value);  // keep the Target's attribute type
      if (typed.ok() && typed->type() == existing->type()) attr = *typed;
    }
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(f.target_node, attr)));
    changes.push_back(name + " " + source_value.dump());
  }
  if (changes.empty()) return make_error("{}: the evidence names nothing to change", finding_label(f));
  description = fmt::format("LH: {} '{}': ", node.op_type(), f.target_node);
  for (size_t i = 0; i < changes.size(); ++i) description += (i ? "; " : "") + changes[i];
  return {};
}

// ---- CG ------------------------------------------------------------------------------------

Status plan_extra_output(const Finding& f, Plan& plan, std::string& description) {
  FETAFIX_ASSIGN_OR_RETURN(json output, field(f, "target_output"));
  FETAFIX_TRY_STATUS(plan.add(model::Edit::remove_graph_output(output.get<std::string>())));
  description = fmt::format("CG: remove the extra graph output '{}'", output.get<std::string>());
  return {};
}

// The Target region is replaced by renamed copies of the Source region's nodes, reading the
// Target's entry values, with the Source's weights as new initializers; the consumers of the
// Target region's output are pointed at the copy's, and the old nodes are removed where
// nothing else reads them.
Status plan_graph_region(const onnx::ModelProto& source, const Finding& f, Plan& plan, std::string& description) {
  FETAFIX_ASSIGN_OR_RETURN(json sr, field(f, "source_region"));
  FETAFIX_ASSIGN_OR_RETURN(json tr, field(f, "target_region"));
  const auto s_entries = sr.at("inputs").get<std::vector<std::string>>();
  const auto t_entries = tr.at("inputs").get<std::vector<std::string>>();
  if (s_entries.size() != t_entries.size())
    return make_error("{}: the regions have {} and {} entry values", finding_label(f), s_entries.size(), t_entries.size());
  const std::string s_out = sr.at("output").get<std::string>(), t_out = tr.at("output").get<std::string>();
  FETAFIX_ASSIGN_OR_RETURN(auto sview, model::GraphView::build(source.graph()));

  {
    FETAFIX_ASSIGN_OR_RETURN(auto tview, model::GraphView::build(plan.model().graph()));
    if (tview.is_graph_output(t_out))
      return make_error("{}: the region output '{}' is a graph output; replacing it is not supported", finding_label(f), t_out);
    if (tview.consumers(t_out).empty()) return make_error("{}: nothing reads the region output '{}'", finding_label(f), t_out);
  }
  // Who reads the old output, remembered by their first output (synthesized names shift).
  std::vector<std::pair<std::string, int>> readers;
  for (const auto& n : plan.model().graph().node())
    for (int k = 0; k < n.input_size(); ++k)
      if (n.input(k) == t_out) {
        if (n.output_size() == 0) return make_error("{}: a reader of '{}' has no output", finding_label(f), t_out);
        readers.emplace_back(n.output(0), k);
      }
  int position = plan.model().graph().node_size();
  for (const auto& [out, k] : readers) position = std::min(position, plan.producer_index(out));

  // Old region nodes, by first output, consumers first (so each removal frees its inputs).
  std::vector<std::string> old_outputs;
  for (const auto& name : tr.at("nodes")) {
    auto i = model::find_node(plan.model().graph(), name.get<std::string>());
    if (!i) return make_error("{}: no node named '{}' in the Target", finding_label(f), name.get<std::string>());
    const auto& n = plan.model().graph().node(static_cast<int>(*i));
    if (n.output_size()) old_outputs.push_back(n.output(0));
  }

  std::map<std::string, std::string> renamed;  // Source value -> Target value
  for (size_t i = 0; i < s_entries.size(); ++i) renamed[s_entries[i]] = t_entries[i];
  std::vector<onnx::NodeProto> copies;
  size_t weights_copied = 0;
  for (const auto& name : sr.at("nodes")) {
    auto i = sview.find_node(name.get<std::string>());
    if (!i) return make_error("{}: no node named '{}' in the Source", finding_label(f), name.get<std::string>());
    onnx::NodeProto copy = sview.node(*i);
    for (int k = 0; k < copy.input_size(); ++k) {
      const std::string in = copy.input(k);
      if (in.empty()) continue;
      if (auto r = renamed.find(in); r != renamed.end()) {
        copy.set_input(k, r->second);
        continue;
      }
      // A weight the Source node reads: stored ones keep their dtype; computed ones (a
      // DequantizeLinear chain) are copied as the float values the node sees.
      Tensor t;
      if (model::is_weight(source, in)) {
        FETAFIX_ASSIGN_OR_RETURN(t, model::get_weight(source, in));
      } else {
        FETAFIX_ASSIGN_OR_RETURN(auto w, localize::layer::resolve_weight(source, sview, in));
        if (!w) return make_error("{}: Source node '{}' reads '{}' from outside the region", finding_label(f),
                                  name.get<std::string>(), in);
        t = float_tensor_of(w->values, w->shape);
      }
      const std::string value = plan.unique_value_name("fetafix_cg_" + in);
      FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(value, t)));
      ++weights_copied;
      renamed[in] = value;
      copy.set_input(k, value);
    }
    copy.set_name(plan.unique_node_name("fetafix_cg_" + name.get<std::string>()));
    for (int k = 0; k < copy.output_size(); ++k) {
      if (copy.output(k).empty()) continue;
      std::string value = plan.unique_value_name("fetafix_cg_" + copy.output(k));
      // Reserve the name against later copies before the node is inserted.
      for (const auto& c : copies)
        for (const auto& o : c.output())
          if (o == value) value = plan.unique_value_name("fetafix_cg_" + copy.output(k) + "_" + std::to_string(copies.size()));
      renamed[copy.output(k)] = value;
      copy.set_output(k, value);
    }
    copies.push_back(std::move(copy));
  }
  auto out = renamed.find(s_out);
  if (out == renamed.end()) return make_error("{}: the Source region does not compute '{}'", finding_label(f), s_out);
  for (size_t k = 0; k < copies.size(); ++k)
    FETAFIX_TRY_STATUS(plan.add(model::Edit::insert_node(copies[k], position + static_cast<int64_t>(k))));
  for (const auto& [reader_output, k] : readers)
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(plan.producer_name(reader_output), k, out->second)));
  size_t removed = 0;
  for (auto it = old_outputs.rbegin(); it != old_outputs.rend(); ++it) {
    const std::string name = plan.producer_name(*it);
    if (!name.empty() && plan.try_add(model::Edit::remove_node(name))) ++removed;
  }
  description = fmt::format("CG: {} Target node(s) replaced by {} Source node(s) ({} weight(s) copied), output '{}' -> '{}'",
                            removed, copies.size(), weights_copied, t_out, out->second);
  return {};
}

}  // namespace

Result<RepairCandidate> plan_repair(const onnx::ModelProto& source, const onnx::ModelProto& target, const Finding& f) {
  if (f.type == FaultType::kPP) {
    FETAFIX_ASSIGN_OR_RETURN(auto c, plan_pp(f));
    c.finding = f;
    return c;
  }
  Plan plan(target, finding_label(f));
  std::string description;
  const std::string check = f.evidence.is_object() ? f.evidence.value("check", "") : "";
  Status st;
  switch (f.type) {
    case FaultType::kID: st = plan_id(target, f, plan, description); break;
    case FaultType::kTSS:
      if (check == "input_structure") st = plan_input_structure(f, plan, description);
      else if (check == "flatten_structure") st = plan_flatten_structure(f, plan, description);
      else st = make_error("{}: unknown TSS check '{}'", finding_label(f), check);
      break;
    case FaultType::kWB: st = plan_wb(source, f, plan, description); break;
    case FaultType::kLH: st = plan_lh(source, f, plan, description); break;
    case FaultType::kCG:
      if (check == "extra_outputs") st = plan_extra_output(f, plan, description);
      else if (check == "graph") st = plan_graph_region(source, f, plan, description);
      else st = make_error("{}: unknown CG check '{}'", finding_label(f), check);
      break;
    case FaultType::kPP: break;
  }
  if (!st.ok()) return st.error();
  RepairCandidate c;
  c.finding = f;
  c.edits = plan.edits();
  c.description = std::move(description);
  return c;
}

std::vector<Finding> find_extra_outputs(const onnx::ModelProto& source, const onnx::ModelProto& target) {
  const auto& so = source.graph().output();
  const auto& to = target.graph().output();
  std::vector<Finding> out;
  if (to.size() <= so.size()) return out;
  std::vector<bool> source_paired(static_cast<size_t>(so.size())), target_paired(static_cast<size_t>(to.size()));
  for (int t = 0; t < to.size(); ++t)
    for (int s = 0; s < so.size(); ++s)
      if (!source_paired[s] && so[s].name() == to[t].name()) source_paired[s] = target_paired[t] = true;
  auto elem = [](const onnx::ValueInfoProto& v) { return v.type().tensor_type().elem_type(); };
  for (int t = 0; t < to.size(); ++t) {
    if (target_paired[t]) continue;
    for (int s = 0; s < so.size(); ++s)
      if (!source_paired[s] && elem(so[s]) == elem(to[t])) {
        source_paired[s] = target_paired[t] = true;
        break;
      }
  }
  json source_names = json::array(), target_names = json::array();
  for (const auto& v : so) source_names.push_back(v.name());
  for (const auto& v : to) target_names.push_back(v.name());
  const auto names = model::name_nodes(target.graph());
  for (int t = 0; t < to.size(); ++t) {
    if (target_paired[t]) continue;
    Finding f;
    f.type = FaultType::kCG;
    for (int n = 0; n < target.graph().node_size(); ++n)
      for (const auto& o : target.graph().node(n).output())
        if (o == to[t].name()) f.target_node = names.names[static_cast<size_t>(n)];
    f.summary = fmt::format("graph output '{}' exists in the Target only ({} outputs vs {} in the Source)", to[t].name(),
                            to.size(), so.size());
    f.evidence = {{"check", "extra_outputs"},
                  {"target_output", to[t].name()},
                  {"source_outputs", source_names},
                  {"target_outputs", target_names}};
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace fetafix::repair
