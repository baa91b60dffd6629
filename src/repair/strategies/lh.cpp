// LH: the Target's node gets the Source's value of the attribute (or loses it where the Source
// has the default); Clip bounds, inputs from opset 11 on, become constant inputs
// (src/localize/checks/lh.cpp). An operator substitution (checks/lh_op_forms.cpp): the Target's
// form is rewritten in place to compute the Source form's function (repair/op_rewrite.h).
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "model/attributes.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/opset.h"
#include "repair/op_rewrite.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {
namespace {

using localize::HyperparametersEvidence;
using nlohmann::json;

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

// Clip bounds are inputs from opset 11 on: the slot points at a new scalar, or at nothing.
Status plan_clip_bound(const HyperparametersEvidence& e, const onnx::NodeProto& node, PlanContext& c) {
  Plan& plan = c.plan();
  const std::string& target_node = c.finding.target_node;
  const std::string& name = e.attribute;
  const int slot = name == "min" ? 1 : 2;
  if (e.source_value.is_null()) {
    if (slot >= node.input_size()) return make_error("{}: Clip '{}' has no {} to remove", c.label(), target_node, name);
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(target_node, slot, "")));
    c.description = fmt::format("LH: Clip '{}' loses its {}", target_node, name);
    return {};
  }
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(plan.model().graph()));
  DType dtype = node.input_size() ? view.dtype(node.input(0)) : DType::kUndefined;
  if (!is_float_dtype(dtype)) dtype = DType::kFloat32;
  FETAFIX_ASSIGN_OR_RETURN(Tensor bound, floats_as({e.source_value.get<float>()}, {}, dtype));
  const std::string value = plan.unique_value_name(target_node + "_fetafix_" + name);
  FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(value, bound)));
  for (int k = node.input_size(); k < slot; ++k) FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(target_node, k, "")));
  FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(target_node, slot, value)));
  c.description = fmt::format("LH: Clip '{}' {} {}", target_node, name, e.source_value.dump());
  return {};
}

// The attribute to set: the Source's own when it has one (exact type and value), else one made
// from the effective value; in the Target attribute's type where the value allows.
Result<onnx::AttributeProto> source_attribute(const HyperparametersEvidence& e, const onnx::NodeProto& node,
                                              PlanContext& c) {
  onnx::AttributeProto attr;
  FETAFIX_ASSIGN_OR_RETURN(auto sview, model::GraphView::build(c.source.graph()));
  auto snode = sview.find_node(c.finding.source_node);
  const onnx::AttributeProto* own =
      snode && e.source_form == "attribute" ? model::find_attribute(sview.node(*snode), e.attribute) : nullptr;
  if (own) {
    attr = *own;
  } else {
    FETAFIX_ASSIGN_OR_RETURN(attr, attribute_from_json(e.attribute, e.source_value));
  }
  if (const auto* existing = model::find_attribute(node, e.attribute); existing && existing->type() != attr.type()) {
    auto typed = attribute_from_json(e.attribute, e.source_value);  // keep the Target's attribute type
    if (typed.ok() && typed->type() == existing->type()) attr = *typed;
  }
  return attr;
}

// The Target pads with a Pad node (folded into the Conv's pads by the check, through nodes that
// keep zeros): the Conv gets the Source's whole padding and the Pad is bypassed — its reader
// reads the Pad's input (the Pad, left unread, goes with the model's cleanup).
Status plan_pad_bypass(const HyperparametersEvidence& e, PlanContext& c) {
  if (e.attribute != "pads" || e.target_pad_node.empty())
    return make_error("{}: the Target pads with a Pad node but the finding is about '{}'", c.label(), e.attribute);
  Plan& plan = c.plan();
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(plan.model().graph()));
  const auto pad = view.find_node(e.target_pad_node);
  if (!pad) return make_error("{}: no Pad named '{}' in the Target", c.label(), e.target_pad_node);
  const auto& pad_node = view.node(*pad);
  const auto readers = view.consumers(pad_node.output(0));
  if (readers.size() != 1 || readers[0].input_index < 0 || view.is_graph_output(pad_node.output(0)))
    return make_error("{}: the Pad '{}' is read by more than the Conv's chain", c.label(), e.target_pad_node);
  const std::vector<int64_t> pads = e.source_value.is_array() ? e.source_value.get<std::vector<int64_t>>()
                                                              : std::vector<int64_t>{};
  if (pads.empty()) return make_error("{}: the Source's pads are not known", c.label());
  FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(view.node_name(readers[0].node), readers[0].input_index,
                                                          pad_node.input(0))));
  FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(c.finding.target_node, Attr::ints("pads", pads).proto)));
  c.description = fmt::format("LH: Conv '{}': pads {} with the Pad '{}' bypassed", c.finding.target_node,
                              e.source_value.dump(), e.target_pad_node);
  return {};
}

}  // namespace

Status plan_for(const HyperparametersEvidence& e, PlanContext& c) {
  const std::string& name = e.attribute;
  const std::string& target_node = c.finding.target_node;
  if (e.target_form == "pad_node") return plan_pad_bypass(e, c);
  Plan& plan = c.plan();
  auto index = model::find_node(plan.model().graph(), target_node);
  if (!index) return make_error("{}: no node named '{}' in the Target", c.label(), target_node);
  const onnx::NodeProto node = plan.model().graph().node(static_cast<int>(*index));
  if (node.op_type() == "Clip" && (name == "min" || name == "max") && model::default_opset(plan.model()) >= 11)
    return plan_clip_bound(e, node, c);

  std::vector<std::string> changes;
  // Explicit pads replace an auto_pad the Target resolves differently.
  if (name != "auto_pad" && e.target_form == "auto_pad" && model::find_attribute(node, "auto_pad")) {
    FETAFIX_TRY_STATUS(plan.add(model::Edit::remove_attribute(target_node, "auto_pad")));
    changes.push_back("auto_pad removed");
  }
  if (e.source_form == "default" || e.source_value.is_null()) {
    if (model::find_attribute(node, name)) {
      FETAFIX_TRY_STATUS(plan.add(model::Edit::remove_attribute(target_node, name)));
      changes.push_back(name + " removed (the default, as in the Source)");
    }
  } else {
    FETAFIX_ASSIGN_OR_RETURN(auto attr, source_attribute(e, node, c));
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(target_node, attr)));
    changes.push_back(name + " " + e.source_value.dump());
  }
  if (changes.empty()) return make_error("{}: the evidence names nothing to change", c.label());
  c.description = fmt::format("LH: {} '{}': ", node.op_type(), target_node);
  for (size_t i = 0; i < changes.size(); ++i) c.description += (i ? "; " : "") + changes[i];
  return {};
}

// The Target's form made to compute the Source's function where it is: its parameters set when
// its op carries them, else replaced by the Source function's spelling in the Target's opset.
Status plan_for(const localize::OperatorFormEvidence& e, PlanContext& c) {
  Plan& plan = c.plan();
  auto rewrite = plan_op_rewrites(plan.model(), {{e.target_form.output, e.source_form, e.target_form.input_shape}});
  if (!rewrite.ok()) return make_error("{}: {}", c.label(), rewrite.error().message);
  if (rewrite->edits.empty())
    return make_error("{}: the Target's '{}' already computes {}", c.label(), e.target_form.output,
                      e.source_form.describe());
  for (auto& edit : rewrite->edits) FETAFIX_TRY_STATUS(plan.add(std::move(edit)));
  c.description = "LH: " + rewrite->descriptions.front();
  return {};
}

}  // namespace fetafix::repair::detail
