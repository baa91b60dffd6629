// ID: the Target's image input declares the Source's dims (src/localize/checks/id.cpp).
#include <fmt/format.h>

#include "model/edit.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {

Status plan_for(const localize::InputDimensionsEvidence& e, PlanContext& c) {
  if (!e.target_shape_expected)
    return make_error("{}: the input ranks differ; no shape can be copied", c.label());
  std::vector<int64_t> dims;
  for (const auto& d : *e.target_shape_expected) dims.push_back(d.fixed ? d.value : -1);  // dynamic: -1
  Plan& plan = c.plan();
  FETAFIX_ASSIGN_OR_RETURN(auto edit, model::set_graph_input_shape(plan.model(), e.target_input, dims));
  FETAFIX_TRY_STATUS(plan.add(std::move(edit)));
  c.description = fmt::format("ID: input '{}' shape {}", e.target_input, shape_to_string(dims));
  return {};
}

}  // namespace fetafix::repair::detail
