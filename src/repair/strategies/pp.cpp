// PP: the Target is fed with the preset the check found best; no graph edit
// (src/localize/checks/pp.cpp).
#include <fmt/format.h>

#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {

Status plan_for(const localize::PreprocessingEvidence& e, PlanContext& c) {
  if (e.best >= e.trials.size() || !e.best_trial().measured)
    return make_error("{}: the best preset was not measured", c.label());
  c.preset = e.best_trial().bound;
  c.description = fmt::format("PP: feed the Target with preset '{}'", c.preset->name);
  return {};
}

}  // namespace fetafix::repair::detail
