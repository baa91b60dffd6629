// TSS: the wrong Transpose perm or axis before the first layer is corrected, or a Transpose
// reorders what a layer or a Flatten/Reshape sees (src/localize/checks/tss.cpp).
#include <fmt/format.h>

#include "model/attributes.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/graph.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {
namespace {

using TiedNode = localize::InputStructureEvidence::TiedNode;

// Input index holding the axes of an op that takes them as an input (opset >= 13).
int axes_input_index(const std::string& op) {
  if (op == "Slice") return 3;
  return 1;  // Unsqueeze, Squeeze, Reduce*
}

// The tied node's axis or axes set to the corrected value: an attribute where it has one, else a
// new constant input (so a constant shared with other nodes stays).
Status correct_axis(const TiedNode& tied, PlanContext& c) {
  if (!tied.corrected_value)
    return make_error("{}: tied node '{}' has no corrected axis", c.label(), tied.node);
  Plan& plan = c.plan();
  const int64_t axis = *tied.corrected_value;
  auto index = model::find_node(plan.model().graph(), tied.node);
  if (!index) return make_error("{}: no node named '{}' in the Target", c.label(), tied.node);
  const auto& proto = plan.model().graph().node(static_cast<int>(*index));
  onnx::NodeProto holder;
  if (tied.attribute == "axis") {
    model::set_int(holder, "axis", axis);
    return plan.add(model::Edit::set_attribute(tied.node, holder.attribute(0)));
  }
  if (model::find_attribute(proto, "axes")) {
    model::set_ints(holder, "axes", {axis});
    return plan.add(model::Edit::set_attribute(tied.node, holder.attribute(0)));
  }
  const int slot = axes_input_index(proto.op_type());
  if (slot > proto.input_size()) return make_error("{}: node '{}' has no axes input", c.label(), tied.node);
  const std::string name = plan.unique_value_name(tied.node + "_fetafix_axes");
  FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(name, fetafix::int64_tensor({1}, {axis}))));
  return plan.add(model::Edit::set_node_input(tied.node, slot, name));
}

}  // namespace

Status plan_for(const localize::InputStructureEvidence& e, PlanContext& c) {
  Plan& plan = c.plan();
  std::vector<std::string> changes;
  if (e.transpose && e.transpose->needs_change) {
    if (!e.transpose->correct_perm) return make_error("{}: no permutation gives the Source's structure", c.label());
    const auto& perm = *e.transpose->correct_perm;
    onnx::NodeProto holder;
    model::set_ints(holder, "perm", perm);
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_attribute(e.transpose->node, holder.attribute(0))));
    changes.push_back(fmt::format("Transpose '{}' perm {}", e.transpose->node, shape_to_string(perm)));
  }
  for (const auto& tied : e.tied_nodes) {
    if (!tied.needs_change) continue;
    FETAFIX_TRY_STATUS(correct_axis(tied, c));
    changes.push_back(fmt::format("{} '{}' {} {}", tied.op, tied.node, tied.attribute, *tied.corrected_value));
  }
  if (changes.empty()) {
    // No Transpose or axis to correct: reorder what the layer sees.
    if (!e.perm_to_source) return make_error("{}: evidence 'perm_to_source' is not a list", c.label());
    const auto& perm = *e.perm_to_source;
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
    if (identity) return make_error("{}: the evidence names nothing to change", c.label());
    FETAFIX_TRY_STATUS(plan.insert_transpose_before(e.target_layer, 0, perm));
    changes.push_back(fmt::format("Transpose {} before '{}'", shape_to_string(perm), e.target_layer));
  }
  c.description = "TSS: ";
  for (size_t i = 0; i < changes.size(); ++i) c.description += (i ? "; " : "") + changes[i];
  return {};
}

Status plan_for(const localize::FlattenStructureEvidence& e, PlanContext& c) {
  Plan& plan = c.plan();
  const std::string& node_name = c.finding.target_node;
  auto index = model::find_node(plan.model().graph(), node_name);
  if (!index) return make_error("{}: no node named '{}' in the Target", c.label(), node_name);
  const auto& node = plan.model().graph().node(static_cast<int>(*index));
  if (node.input_size() == 0 || node.input(0) != e.target_value)
    return make_error("{}: node '{}' does not read '{}'", c.label(), node_name, e.target_value);
  FETAFIX_TRY_STATUS(plan.insert_transpose_before(node_name, 0, e.perm_to_source));
  c.description = fmt::format("TSS: Transpose {} before {} '{}'", shape_to_string(e.perm_to_source), node.op_type(),
                              node_name);
  return {};
}

}  // namespace fetafix::repair::detail
