// The group phase of the repair loop: the same fix on many tensors or nodes tried as one step,
// decided whole, bisected only when rejected (docs/repair.md, "Group testing").
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "repair/loop.h"
#include "repair/op_rewrite.h"

namespace fetafix::repair::detail {
namespace {

using localize::FaultType;

std::vector<model::Edit> concat(const Members& cs) {
  std::vector<model::Edit> out;
  for (auto* c : cs) out.insert(out.end(), c->edits.begin(), c->edits.end());
  return out;
}

std::vector<std::string> target_nodes_of(const Members& set) {
  std::vector<std::string> names;
  for (auto* c : set)
    if (std::find(names.begin(), names.end(), c->finding.target_node) == names.end())
      names.push_back(c->finding.target_node);
  return names;
}

std::string listed(const std::vector<std::string>& names) {
  constexpr size_t kListed = 4;
  std::string out = fmt::format("{}", fmt::join(names.begin(), names.begin() + std::min(kListed, names.size()), ", "));
  if (names.size() > kListed) out += fmt::format(" and {} more", names.size() - kListed);
  return out;
}

std::string describe_weights(const Members& set, size_t of) {
  const auto names = target_nodes_of(set);
  return fmt::format("Source weights into {} of {} differing tensors ({} layers): {}", set.size(), of, names.size(),
                     listed(names));
}

std::string describe_hyperparameters(const Members& set, size_t of) {
  if (const auto* f = std::get_if<localize::OperatorFormEvidence>(&set.front()->finding.evidence))
    return fmt::format("LH: the Source's {} for {} on {} of {} forms: {}", f->source_form.describe(),
                       f->target_form.describe(), set.size(), of, listed(target_nodes_of(set)));
  const auto& e = std::get<localize::HyperparametersEvidence>(set.front()->finding.evidence);
  const std::string value = e.source_value.is_null() ? "none" : e.source_value.dump();
  return fmt::format("LH: the Source's {} {} on {} of {} {} nodes: {}", e.attribute, value, set.size(), of,
                     e.target_op, listed(target_nodes_of(set)));
}

bool is_op_form(const RepairCandidate* c) {
  return std::holds_alternative<localize::OperatorFormEvidence>(c->finding.evidence);
}

// Non-equivalent LH findings grouped by what differs: op, attribute, kind and both values; an
// operator substitution by both functions as described (parameters included).
std::map<std::string, Members> hyperparameter_groups(const std::vector<RepairCandidate>& candidates) {
  std::map<std::string, Members> groups;
  for (const auto& c : candidates) {
    if (!c.finding.is_fault()) continue;
    if (const auto* f = std::get_if<localize::OperatorFormEvidence>(&c.finding.evidence)) {
      groups["op_form|" + f->source_form.describe() + "|" + f->target_form.describe()].push_back(&c);
      continue;
    }
    const auto* e = std::get_if<localize::HyperparametersEvidence>(&c.finding.evidence);
    if (!e) continue;
    groups[fmt::format("{}|{}|{}|{}|{}", nlohmann::json(e->source_op).dump(), nlohmann::json(e->attribute).dump(),
                       nlohmann::json(e->kind).dump(), e->source_value.dump(), e->target_value.dump())]
        .push_back(&c);
  }
  return groups;
}

}  // namespace

// The edits of a set of group members. Each member's edits were planned alone on the Target;
// operator rewrites insert nodes at positions of that Target, so a set of them is planned again
// as one (each request on the Target with the ones before it rewritten).
std::vector<model::Edit> Loop::group_edits(const Members& set) const {
  if (set.empty() || !std::all_of(set.begin(), set.end(), is_op_form)) return concat(set);
  std::vector<OpRewriteRequest> requests;
  for (auto* c : set) {
    const auto& e = std::get<localize::OperatorFormEvidence>(c->finding.evidence);
    requests.push_back({e.target_form.output, e.source_form, e.target_form.input_shape});
  }
  auto plan = plan_op_rewrites(working_, requests);
  return plan.ok() ? std::move(plan->edits) : concat(set);
}

// Weight findings first as a group: one evaluation instead of one per layer when they help
// together; bisection (on the screening subset) only when the whole group is rejected. Findings
// already handled (kept by an earlier try of the group) are left out.
void Loop::try_weight_group(const std::vector<RepairCandidate>& candidates, std::set<const RepairCandidate*>& handled) {
  Members weights;
  for (const auto& c : candidates)
    if (c.finding.type() == FaultType::kWB && c.finding.is_fault() && !handled.count(&c)) weights.push_back(&c);
  if (weights.size() > 1 && !out_of_time()) try_group(FaultType::kWB, weights, handled, describe_weights);
}

// The same hyperparameter difference on many nodes (a converter drops every Clip's max, or
// every Conv's pads) is one fault made many times: one node's fix alone may change no label.
void Loop::try_hyperparameter_groups(const std::vector<RepairCandidate>& candidates,
                                     std::set<const RepairCandidate*>& handled) {
  for (const auto& [key, members] : hyperparameter_groups(candidates)) {
    if (members.size() < 2 || out_of_time()) continue;
    if (std::any_of(members.begin(), members.end(), [&](auto* c) { return handled.count(c) > 0; })) continue;
    try_group(FaultType::kLH, members, handled, describe_hyperparameters);
    if (acceptance_.disagreeing() == 0) break;
  }
}

// Tries `members` as one step ("WB*" or "LH*"): screening first (do they help together at
// all?), then the whole group is decided on every image. Each member puts the Source's own
// value back, so a kept group leaves the Target like the Source everywhere the checks saw a
// difference — keeping only the few that flip the detection images left validation images
// disagreeing (2 % on the corpus's int8 cases) and cost a bisection plus a second full pass.
// Only when the group is rejected (it makes images worse somewhere) does delta debugging look
// for the subset that carries the gain.
void Loop::try_group(FaultType type, const Members& members, std::set<const RepairCandidate*>& handled,
                     Describe describe) {
  const std::string label = std::string(localize::fault_type_name(type)) + "*";
  probes_ = 0;
  const size_t start = acceptance_.has_screen() ? acceptance_.screen_disagreeing() : acceptance_.disagreeing();
  auto together = probe(group_edits(members));
  if (!together || *together >= start) {
    say(fmt::format("round {}: the {} {} fixes together do not lower the disagreement{}", round_, members.size(),
                    label, acceptance_.has_screen() ? " on the screening images" : ""));
    return;
  }
  if (try_group_step(type, members, members.size(), /*screened=*/true, handled, describe) || out_of_time()) return;
  const auto t0 = Clock::now();
  Members smallest = minimize(members, {}, *together);
  say(fmt::format("round {}: bisection kept {} of {} {} fixes ({} probes on {} images, {:.1f} s)", round_,
                  smallest.size(), members.size(), label, probes_,
                  acceptance_.has_screen() ? acceptance_.screen().size() : acceptance_.current().agree.size(),
                  seconds_since(t0)));
  if (smallest.size() >= members.size() || !try_group_step(type, smallest, members.size(), false, handled, describe) ||
      acceptance_.disagreeing() == 0)
    return;
  // Whatever the rest of the group adds on top is tried as one more step.
  Members rest;
  for (auto* c : members)
    if (!handled.count(c)) rest.push_back(c);
  if (!rest.empty()) try_group_step(type, rest, members.size(), false, handled, describe);
}

// One group step for `set` (of a group of `of` findings); its members are handled when kept.
bool Loop::try_group_step(FaultType type, const Members& set, size_t of, bool screened,
                          std::set<const RepairCandidate*>& handled, Describe describe) {
  StepSpec spec{StepKind::kGroup, type, describe(set, of), {}, group_edits(set), std::nullopt, screened};
  for (auto* c : set) spec.findings.push_back(&c->finding);
  const bool kept = try_step(spec);
  if (kept)
    for (auto* c : set) handled.insert(c);
  return kept;
}

// Disagreeing images on the screening subset (every image without one) with `edits`
// applied, then undone; nullopt if they fail.
std::optional<size_t> Loop::probe(const std::vector<model::Edit>& edits) {
  ++probes_;
  const size_t log_before = log_.size();
  if (!log_.apply_all(edits).ok()) return std::nullopt;
  auto disagreeing = acceptance_.screen_score(working_);
  undo_to(log_before);
  return disagreeing;
}

bool Loop::bisection_spent() {
  return probes_ >= static_cast<size_t>(std::max(o_.max_bisection_probes, 0)) || out_of_time();
}

// A small subset of `cands` that, with `fixed`, reaches `goal` disagreements or fewer
// (delta debugging: halves first, then each half with the other held fixed). Anytime: when
// the probe budget runs out, the sets it returns still reach the goal.
Members Loop::minimize(Members cands, const Members& fixed, size_t goal) {
  if (cands.size() <= 1 || bisection_spent()) return cands;
  const size_t half = cands.size() / 2;
  Members a(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(half));
  Members b(cands.begin() + static_cast<std::ptrdiff_t>(half), cands.end());
  auto with = [&](const Members& part) {
    auto all = fixed;
    all.insert(all.end(), part.begin(), part.end());
    return all;
  };
  if (auto s = probe(group_edits(with(a))); s && *s <= goal) return minimize(a, fixed, goal);
  if (bisection_spent()) return cands;
  if (auto s = probe(group_edits(with(b))); s && *s <= goal) return minimize(b, fixed, goal);
  auto ka = minimize(a, with(b), goal);
  auto kb = minimize(b, with(ka), goal);
  ka.insert(ka.end(), kb.begin(), kb.end());
  return ka;
}

}  // namespace fetafix::repair::detail
