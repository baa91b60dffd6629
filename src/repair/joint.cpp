// The joint phase of the repair loop, with its preset search, and the revisit of a kept PP
// preset (docs/repair.md, "JOINT").
#include <fmt/format.h>

#include "localize/input_checks.h"
#include "repair/loop.h"

namespace fetafix::repair::detail {
namespace {

using localize::FaultType;
using localize::Finding;

std::string joint_description(const JointApplied& j) {
  std::vector<std::string> parts;
  for (const auto& [type, n] : j.per_type) parts.push_back(fmt::format("{} {}", type, n));
  const size_t n = j.applied.size();
  return fmt::format("{} finding{} applied {}({}){}", n, n == 1 ? "" : "s", n == 1 ? "" : "together ",
                     fmt::join(parts, ", "), j.skipped ? fmt::format("; {} could not be planned", j.skipped) : "");
}

}  // namespace

// When a round keeps nothing, its untried-or-rejected non-PP findings are applied together.
void Loop::try_joint_phase(const Members& order, const std::set<const RepairCandidate*>& handled,
                           const std::set<const RepairCandidate*>& kept_inputs) {
  Members rest;
  for (const auto* c : order)
    if (!kept_inputs.count(c) && !(handled.count(c) && !localize::is_input_level(c->finding.type())) &&
        c->finding.type() != FaultType::kPP && c->finding.is_fault())
      rest.push_back(c);
  // CG findings are the least certain (a differently built graph differs in structure for
  // no fault): if the whole set fails, once more without them. resnet101v2-tf-to-keras: a
  // CG region replacement around the layer whose dilations are repaired kept the set at
  // 89 -> 89; without it, 89 -> 0.
  Members structural;
  for (const auto* c : rest)
    if (c->finding.type() != FaultType::kCG) structural.push_back(c);
  if (!rest.empty() && !try_joint(rest) && !structural.empty() && structural.size() < rest.size() && !out_of_time())
    try_joint(structural);
}

// The PP finding the check makes for the working Target (which the images are fed as
// `current`, unbound), on a seeded sample of the detection images; nullopt when no preset beats
// `current` there by kDefaultPresetMinGain.
std::optional<Finding> Loop::preset_finding_for(const data::Preset& current) {
  std::vector<size_t> all(eval_.images());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto chosen = seeded_sample(all, 2 * std::max<size_t>(o_.preprocessing_sample, 1), 13);
  localize::PreprocessingCheckOptions pp;
  pp.presets = o_.localize.presets_to_try;
  pp.compare = o_.localize.compare;
  pp.compare.progress = ProgressMode::kQuiet;
  pp.subset = chosen;  // ascending
  compare::ModelSide side = target_side_;
  side.model = &working_;
  side.preset = current;
  auto report = localize::measure_preprocessing(source_, side, eval_.samples(), pp);
  if (!report.ok()) return std::nullopt;
  auto findings = localize::preprocessing_findings(*report, o_.localize.preprocessing_min_gain);
  if (findings.empty() || !report->best) return std::nullopt;
  return std::move(findings.front());
}

// Applies each member, re-planned on the Target with the ones before it applied (input-based
// first: an ID edit and a TSS edit both rewrite the graph input).
JointApplied Loop::apply_joint_members(const Members& members) {
  JointApplied j;
  for (const auto* c : members) {
    if (out_of_time()) break;  // what is applied so far is still scored
    auto plan = plan_repair(*source_.model, working_, c->finding);
    if (!plan.ok() || plan->preset || !log_.apply_all(plan->edits).ok()) {
      ++j.skipped;
      continue;
    }
    j.applied.push_back(&c->finding);
    j.per_type[std::string(localize::fault_type_name(c->finding.type()))]++;
  }
  return j;
}

// The joint edits (applied) scored as they are; when that keeps nothing, with the preset the PP
// check proposes on the edited Target (the preprocessing may be wrong too). A single finding was
// scored already (and rejected) in the round: only the preset search is new for it.
JointScore Loop::score_joint(bool alone, bool rebinding) {
  JointScore s;
  s.feed = rebinding ? rebound_preset() : eval_.target_preset();
  if (!alone) {
    s.score = rebinding ? eval_.score_with_preset(working_, s.feed) : eval_.score_full(working_);
    s.keep = s.score.ok() && acceptance_.acceptable(*s.score, s.reason);
  }
  if (s.keep || !(alone || s.score.ok()) || r_.patch.preprocess || out_of_time()) return s;
  auto pp = preset_finding_for(s.feed);
  if (!pp) return s;
  const data::Preset& best = std::get<localize::PreprocessingEvidence>(pp->evidence).best_trial().bound;
  auto with = eval_.score_with_preset(working_, best);
  std::string why;
  if (with.ok() && acceptance_.acceptable(*with, why)) {
    s.score = std::move(with);
    s.reason.clear();
    s.keep = true;
    s.feed = best;
    s.preset_finding = std::move(pp);
  } else if (alone) {
    s.score = std::move(with);
    s.reason = why;
  }
  return s;
}

// When no finding alone lowers the disagreement — several faults each enough to break every
// label (an input transposed, resized and a layer's pads dropped) — they are tried together and
// one score decides. PP is left out (its presets are alternatives, not a fault to stack) and its
// check runs again next round.
bool Loop::try_joint(const Members& members) {
  const auto t0 = Clock::now();
  const size_t log_before = log_.size();
  const JointApplied j = apply_joint_members(members);
  const bool alone = j.applied.size() == 1;
  if (j.applied.empty() || (alone && r_.patch.preprocess)) {
    undo_to(log_before);
    return false;
  }
  RepairStep step = make_step(StepKind::kJoint, FaultType::kPP, joint_description(j), j.applied);
  step.edits = log_.size() - log_before;
  const std::vector<model::Edit> edits(log_.edits().begin() + static_cast<std::ptrdiff_t>(log_before), log_.edits().end());
  const bool rebinding = changes_input_shape(edits);
  JointScore s = score_joint(alone, rebinding);
  if (alone && !s.score.ok()) {  // no preset to try with it: nothing new was scored
    undo_to(log_before);
    return false;
  }
  const data::Preset* preset = s.preset_finding ? &s.feed : nullptr;
  if (preset) {
    counts_of(r_, FaultType::kPP).localized++;
    counts_of(r_, FaultType::kPP).tried++;
    step.description += fmt::format(", with preset '{}'", preset->name);
  }
  for (const auto& [type, n] : j.per_type) r_.counts[type].tried += n;
  if (s.keep && (rebinding || preset)) {
    if (auto st = eval_.set_target_preset(working_, s.feed); !st.ok()) {
      s.reason = st.error().message;
    } else {
      target_side_.preset = s.feed;
      input_rebound_ = input_rebound_ || rebinding;
      if (preset) {
        r_.patch.preprocess = *preset;
        counts_of(r_, FaultType::kPP).kept++;
      }
    }
  }
  if (s.keep && s.reason.empty()) {
    kept_after_preprocessing_ = !preset;
    for (const auto& [type, n] : j.per_type) r_.counts[type].kept += n;
    if (!r_.patch.preprocess) pp_due_ = true;  // the preprocessing can be judged again now
    if (preset) {
      step.finding_summaries.push_back("preprocessing: preset '" + preset->name + "'");
      step.finding_ids.push_back(s.preset_finding->id);
    }
    accept(step, std::move(s.score).value());
    return record(std::move(step), std::nullopt, t0);
  }
  undo_to(log_before);
  step.reason = s.score.ok() ? s.reason : "the edited Target does not run: " + s.score.error().message;
  return record(std::move(step), s.score.ok() ? std::optional(s.score->disagreeing) : std::nullopt, t0);
}

// PP goes first, so a preset can be kept because it hides part of a fault found only later
// (feeding [-1, 1] inputs keeps unbounded activations small). Once later repairs are kept, the
// Target's own preprocessing is tried again and restored when it now disagrees less.
void Loop::revisit_preprocessing() {
  if (!r_.patch.preprocess || !kept_after_preprocessing_) return;
  kept_after_preprocessing_ = false;
  data::Preset own = original_preset_;
  if (input_rebound_) own.width = own.height = 0;  // an ID repair changed the input size
  RepairStep step = make_step(StepKind::kFinding, FaultType::kPP,
                              fmt::format("PP: back to the Target's own preset '{}' instead of '{}'", own.name,
                                          r_.patch.preprocess->name),
                              {});
  if (last_preset_step_) {  // names the finding whose preset it undoes
    step.source_node = last_preset_step_->source_node;
    step.target_node = last_preset_step_->target_node;
    step.finding_ids = last_preset_step_->finding_ids;
    step.target_nodes = last_preset_step_->target_nodes;
  }
  step.reverts = true;
  const auto t0 = Clock::now();
  auto score = eval_.score_with_preset(working_, own);
  std::string reason;
  if (score.ok() && acceptance_.acceptable(*score, reason)) {
    if (auto st = eval_.set_target_preset(working_, own); st.ok()) {
      target_side_.preset = own;
      r_.patch.preprocess.reset();
      auto& pp = counts_of(r_, FaultType::kPP);
      if (pp.kept > 0) --pp.kept;  // the preset it undoes is no longer a kept repair
      accept(step, std::move(score).value());
    } else {
      step.reason = st.error().message;
    }
  } else {
    step.reason = score.ok() ? reason : "the Target does not run with it: " + score.error().message;
  }
  record(std::move(step), score.ok() ? std::optional(score->disagreeing) : std::nullopt, t0);
}

}  // namespace fetafix::repair::detail
