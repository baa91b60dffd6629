// WB: the Source's values for the finding's tensor, as the Target's node must see them, written
// where the Target stores the tensor, or as a new initializer the node reads
// (src/localize/checks/wb.cpp).
#include <fmt/format.h>

#include "model/attributes.h"
#include "model/batch_norm.h"
#include "model/edit.h"
#include "model/graph.h"
#include "model/layout.h"
#include "model/resolve_weight.h"
#include "model/weights.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {
namespace {

using localize::WeightsEvidence;

struct Values {
  std::vector<float> values;
  std::vector<int64_t> shape;
};

// The Source's BatchNormalization that the Target folded into this layer, folded into `v` (the
// layer's weight or bias) the way the WB check folded it for the comparison.
Status fold_source_batch_norm(const model::GraphView& view, size_t core_node, const WeightsEvidence& e,
                              PlanContext& c, Values& v) {
  const auto& core = view.node(core_node);
  FETAFIX_ASSIGN_OR_RETURN(auto main, model::resolve_weight(c.source, view, core.input(1)));
  if (!main) return make_error("{}: Source '{}' has no main weight", c.label(), c.finding.source_node);
  auto bn = view.find_node(e.folded_bn_node);
  if (!bn || view.node(*bn).op_type() != "BatchNormalization")
    return make_error("{}: folded BatchNormalization '{}' not found in the Source", c.label(), e.folded_bn_node);
  std::vector<std::vector<float>> p;  // scale, B, mean, var
  for (int i = 1; i <= 4; ++i) {
    FETAFIX_ASSIGN_OR_RETURN(auto w, model::resolve_weight(c.source, view, view.node(*bn).input(i)));
    if (!w) return make_error("{}: BatchNormalization input {} is not a weight", c.label(), i);
    p.push_back(std::move(w->values));
  }
  FETAFIX_ASSIGN_OR_RETURN(float eps, model::get_float_or(view.node(*bn), "epsilon", 1e-5f));
  const std::string& op = core.op_type();
  int64_t axis = 1;  // the output channels of the main weight as the node consumes it
  if (op == "Conv") axis = 0;
  if (op == "Gemm") axis = model::get_int_or(core, "transB", 0).ok() && model::get_int_or(core, "transB", 0).value() ? 0 : 1;
  const auto channels = static_cast<size_t>(main->shape[static_cast<size_t>(axis)]);
  for (const auto& values : p)
    if (values.size() != channels)
      return make_error("{}: BatchNormalization has {} channels, the layer {}", c.label(), values.size(), channels);
  const std::vector<double> scale = model::batch_norm_scale(p[0], p[3], eps);
  if (e.role == "weight") {
    model::scale_channels(v.values, v.shape, axis, static_cast<int64_t>(channels), scale);
  } else {
    if (v.values.empty()) v.values.assign(channels, 0.0f), v.shape = {static_cast<int64_t>(channels)};
    model::fold_bias(v.values, p[2], p[1], scale);
  }
  return {};
}

// The Source's values for the finding's tensor as the Target's node must see them: resolved
// through the Source's weight chain, its BN folded in when the Target folded it, permuted into
// the Target's layout (the same steps the WB check compared).
Result<std::vector<float>> source_values(const WeightsEvidence& e, PlanContext& c) {
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(c.source.graph()));
  const std::string& source_node = c.finding.source_node;
  auto node = view.find_node(source_node);
  if (!node) return make_error("{}: no node named '{}' in the Source", c.label(), source_node);
  if (e.bn_folded == "source")
    return make_error("{}: the Source folded a BatchNormalization the Target keeps; unfolding is not supported",
                      c.label());
  Values v;
  const int input = e.source_input_index;
  if (input >= 0) {
    if (input >= view.node(*node).input_size())
      return make_error("{}: Source node '{}' has no input {}", c.label(), source_node, input);
    FETAFIX_ASSIGN_OR_RETURN(auto w, model::resolve_weight(c.source, view, view.node(*node).input(input)));
    if (!w) return make_error("{}: Source input {} of '{}' is not a weight", c.label(), input, source_node);
    v = {std::move(w->values), std::move(w->shape)};
  }
  if (e.bn_folded == "target" && (e.role == "weight" || e.role == "bias"))
    FETAFIX_TRY_STATUS(fold_source_batch_norm(view, *node, e, c, v));
  const auto& perm = e.layout_permutation;
  if (!perm.empty() && !v.values.empty()) {
    if (perm.size() != v.shape.size())
      return make_error("{}: layout permutation has {} axes, the Source tensor {}", c.label(), perm.size(),
                        v.shape.size());
    v.values = model::transpose(model::float_tensor(v.values, v.shape), perm).to_float();
  }
  return std::move(v.values);
}

// Where the Target stores what the node reads, when the path there only moves data (Identity,
// Transpose, each read by one node): the stored name and the perms on the way, nearest the
// node first. nullopt when anything else is on the path.
struct StoredAt {
  std::string value;
  std::vector<std::vector<int64_t>> perms;
};
std::optional<StoredAt> stored_behind(const model::GraphView& view, std::string value) {
  StoredAt at;
  while (true) {
    auto producer = view.producer(value);
    if (!producer) break;
    const auto& p = view.node(*producer);
    if (p.op_type() == "Identity") {
      at.perms.emplace_back();
    } else if (p.op_type() == "Transpose") {
      auto perm = model::get_ints(p, "perm");
      if (!perm.ok()) return std::nullopt;
      at.perms.push_back(*perm);
    } else {
      return std::nullopt;
    }
    if (view.consumers(value).size() != 1) return std::nullopt;
    value = p.input(0);
  }
  at.value = std::move(value);
  return at;
}

}  // namespace

// Write where the Target stores it when the path there only moves data: the stored tensor keeps
// its name, layout and dtype. Otherwise (Cast, DequantizeLinear, a stored dtype that is not
// float, a tensor shared with other nodes) the node gets a new float initializer holding exactly
// what it should see.
Status plan_for(const WeightsEvidence& e, PlanContext& c) {
  FETAFIX_ASSIGN_OR_RETURN(auto values, source_values(e, c));
  Plan& plan = c.plan();
  const onnx::ModelProto& target = plan.model();
  const std::string& target_node = c.finding.target_node;
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(target.graph()));
  auto node = view.find_node(target_node);
  if (!node) return make_error("{}: no node named '{}' in the Target", c.label(), target_node);
  const int input = e.input_index;

  // Shape and dtype the node sees, and the stored tensor behind it.
  std::vector<int64_t> seen_shape;
  std::optional<model::ResolvedWeight> resolved;
  if (input >= 0) {
    if (input >= view.node(*node).input_size())
      return make_error("{}: Target node '{}' has no input {}", c.label(), target_node, input);
    FETAFIX_ASSIGN_OR_RETURN(resolved, model::resolve_weight(target, view, view.node(*node).input(input)));
    if (!resolved) return make_error("{}: Target input {} of '{}' is not a weight", c.label(), input, target_node);
    seen_shape = resolved->shape;
  } else {
    seen_shape = {static_cast<int64_t>(values.size())};  // a bias the Target lacks
  }
  const auto count = static_cast<size_t>(shape_numel(seen_shape));
  if (values.empty() && e.role == "bias") values.assign(count, 0.0f);  // a bias the Source lacks is zero
  if (values.size() == 1 && count != 1) values.assign(count, values[0]);
  if (values.size() != count)
    return make_error("{}: {} Source values cannot fill the Target's {} {}", c.label(), values.size(), e.role,
                      shape_to_string(seen_shape));

  const auto at = input >= 0 ? stored_behind(view, view.node(*node).input(input)) : std::nullopt;
  auto stored = at ? model::find_weight(target, at->value) : std::nullopt;
  if (stored && is_float_dtype(stored->dtype) && view.consumers(at->value).size() == 1) {
    Tensor t = model::float_tensor(values, seen_shape);
    for (const auto& perm : at->perms)
      if (!perm.empty()) t = model::transpose(t, model::inverse_permutation(perm));
    FETAFIX_ASSIGN_OR_RETURN(Tensor typed, floats_as(t.to_float(), stored->shape, stored->dtype));
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_weight(at->value, typed)));
    c.description = fmt::format("WB: Source values into '{}' ({}{})", at->value, dtype_name(typed.dtype),
                                shape_to_string(typed.shape));
    return {};
  }
  DType seen = input >= 0 ? view.dtype(view.node(*node).input(input)) : DType::kUndefined;
  if (!is_float_dtype(seen)) seen = DType::kFloat32;
  if (resolved && resolved->chain.empty() && is_float_dtype(resolved->stored_dtype)) seen = resolved->stored_dtype;
  FETAFIX_ASSIGN_OR_RETURN(Tensor typed, floats_as(values, seen_shape, seen));
  const std::string base = resolved ? resolved->stored_name : target_node + "_" + e.role;
  const std::string name = plan.unique_value_name(base + "_fetafix");
  const int slot = input >= 0 ? input : 2;
  FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(name, typed)));
  for (int k = view.node(*node).input_size(); k < slot; ++k)  // omitted optional inputs before it
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(target_node, k, "")));
  FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(target_node, slot, name)));
  c.description = fmt::format("WB: new initializer '{}' ({}{}) as input {} of '{}'", name, dtype_name(seen),
                              shape_to_string(seen_shape), slot, target_node);
  return {};
}

}  // namespace fetafix::repair::detail
