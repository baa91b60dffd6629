#include "repair/impact.h"

#include <optional>

#include <fmt/format.h>

#include "compare/evaluator.h"
#include "repair/loop.h"
#include "repair/repair.h"

namespace fetafix::repair {
namespace {

using localize::FaultType;
using localize::Finding;

// One revert: the faults it undoes and the edits (or, for PP, the preset) that undo them.
struct Revert {
  std::vector<Finding*> findings;
  std::vector<model::Edit> edits;
  std::optional<data::Preset> preset;
  std::string label;  // what the progress line calls it
};

// The reverts of the faults in listing order: one per fault, every WB fault in one (placed where
// the first is), at most `limit` of them; the faults past it stay "not_measured".
std::vector<Revert> plan_reverts(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 std::vector<Finding>& findings, size_t limit, ImpactRun& run) {
  std::vector<Revert> reverts;
  std::optional<size_t> weight_group;
  for (auto& f : findings) {
    if (!f.is_fault()) continue;
    const bool joins_group = f.type() == FaultType::kWB && weight_group;
    if (!joins_group && reverts.size() >= limit) {
      f.impact.basis = "not_measured";
      ++run.not_measured;
      continue;
    }
    auto planned = plan_repair(source, target, f);
    if (!planned.ok()) {
      f.impact.basis = "not_revertible";
      ++run.not_revertible;
      continue;
    }
    if (f.type() != FaultType::kWB) {
      reverts.push_back({{&f}, std::move(planned->edits), std::move(planned->preset), f.summary});
      continue;
    }
    if (!weight_group) {
      weight_group = reverts.size();
      reverts.emplace_back();
    }
    Revert& group = reverts[*weight_group];
    group.findings.push_back(&f);
    group.edits.insert(group.edits.end(), planned->edits.begin(), planned->edits.end());
    group.label = group.findings.size() == 1 ? f.summary
                                             : fmt::format("the Source's weights on {} tensors", group.findings.size());
  }
  return reverts;
}

// The Target with the revert applied, scored on every sample. An edit of the input's shape (ID)
// binds the Target's preprocessing again to the edited input, as repair does.
Result<compare::CandidateScore> score_revert(const compare::Evaluator& eval, const onnx::ModelProto& target,
                                             const Revert& revert) {
  if (revert.preset) return eval.score_with_preset(target, *revert.preset);
  onnx::ModelProto edited = target;
  model::EditLog log(edited);
  FETAFIX_TRY_STATUS(log.apply_all(revert.edits));
  if (!detail::changes_input_shape(revert.edits)) return eval.score(edited);
  data::Preset rebound = eval.target_preset();
  rebound.width = rebound.height = 0;
  return eval.score_with_preset(edited, rebound);
}

size_t outcome_changes(const std::vector<bool>& before, const std::vector<bool>& after) {
  size_t changed = 0;
  for (size_t i = 0; i < before.size() && i < after.size(); ++i) changed += before[i] != after[i];
  return changed;
}

void record(const Revert& revert, const compare::CandidateScore& base, const compare::CandidateScore& after) {
  for (Finding* f : revert.findings) {
    localize::Impact& impact = f->impact;
    impact.outcome_changes = outcome_changes(base.agree, after.agree);
    impact.samples = base.agree.size();
    impact.distance_change = after.distance - base.distance;
    impact.basis = revert.findings.size() > 1 ? "reverted_with_group" : "reverted_alone";
    impact.reverted_with.clear();
    for (const Finding* other : revert.findings)
      if (other != f) impact.reverted_with.push_back(other->id);
  }
}

}  // namespace

Result<ImpactRun> measure_impact(const compare::ModelSide& source, const compare::ModelSide& target,
                                 data::SampleSet samples, const compare::CompareOptions& options,
                                 std::vector<Finding>& findings, const ImpactOptions& impact) {
  ImpactRun run;
  std::vector<Revert> reverts = plan_reverts(*source.model, *target.model, findings, impact.limit, run);
  if (reverts.empty()) return run;
  compare::CompareOptions quiet = options;
  quiet.progress = ProgressMode::kQuiet;
  FETAFIX_ASSIGN_OR_RETURN(auto eval, compare::Evaluator::create(source, target, std::move(samples), quiet));
  FETAFIX_ASSIGN_OR_RETURN(const auto base, eval->score_full(*target.model));
  // Reverts run from the Target's cached values downstream of what they change (partial runs).
  FETAFIX_TRY_STATUS(eval->set_base(*target.model));
  for (const Revert& revert : reverts) {
    auto after = score_revert(*eval, *target.model, revert);
    ++run.reverts;
    if (!after.ok()) {
      for (Finding* f : revert.findings) f->impact.basis = "not_revertible";
      run.not_revertible += revert.findings.size();
      if (impact.log) impact.log(fmt::format("impact {}/{}: {}: the reverted Target does not run: {}", run.reverts,
                                             reverts.size(), revert.label, after.error().message));
      continue;
    }
    record(revert, base, *after);
    if (impact.log)
      impact.log(fmt::format("impact {}/{}: reverting {}: {} of {} samples change outcome (distance {:+.4g})",
                             run.reverts, reverts.size(), revert.label, outcome_changes(base.agree, after->agree),
                             base.agree.size(), after->distance - base.distance));
  }
  return run;
}

void add_fault_impact(const compare::ModelSide& source, const compare::ModelSide& target,
                      const data::SampleSet& samples, const compare::CompareOptions& options,
                      localize::LocalizeResult& result, const ImpactOptions& impact) {
  if (result.disagreeing == 0 || impact.limit == 0) return;
  auto run = measure_impact(source, target, samples, options, result.findings, impact);
  if (!run.ok()) {
    result.notes.push_back("impact not measured: " + run.error().message);
    return;
  }
  if (run->not_measured > 0)
    result.notes.push_back(fmt::format("{} fault(s) past the impact limit ({} reverts): impact not measured",
                                       run->not_measured, impact.limit));
}

}  // namespace fetafix::repair
