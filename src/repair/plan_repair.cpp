// plan_repair: the finding's evidence picks its planner (strategies/strategies.h).
#include <fmt/format.h>

#include "repair/repair.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair {
namespace detail {

PlanContext::PlanContext(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         const localize::Finding& finding)
    : source(source), finding(finding), target_(target) {
  const std::string& where = finding.target_node.empty() ? finding.source_node : finding.target_node;
  label_ = fmt::format("{} finding{}", localize::fault_type_name(finding.type()),
                       where.empty() ? "" : " at '" + where + "'");
}

Plan& PlanContext::plan() {
  if (!plan_) plan_.emplace(target_, label_);
  return *plan_;
}

}  // namespace detail

Result<RepairCandidate> plan_repair(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                    const localize::Finding& finding) {
  detail::PlanContext context(source, target, finding);
  // No overload for a kind of evidence: a compile error here, not a finding left unrepaired.
  FETAFIX_TRY_STATUS(std::visit([&](const auto& evidence) { return detail::plan_for(evidence, context); },
                                finding.evidence));
  RepairCandidate c;
  c.finding = finding;
  if (context.has_plan()) c.edits = context.plan().edits();
  c.description = std::move(context.description);
  c.preset = std::move(context.preset);
  return c;
}

}  // namespace fetafix::repair
