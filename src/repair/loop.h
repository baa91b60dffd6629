// The repair loop's parts (driver.h says what it does), internal to src/repair:
//   Acceptance  — the current score, the screening subset and the rule that keeps an edit;
//   Loop        — rounds of localize -> plan -> try (driver.cpp), the group phase (groups.cpp)
//                 and the joint phase with its preset search and the PP revisit (joint.cpp).
// Every step is built by Loop::make_step and tried by Loop::try_step.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compare/evaluator.h"
#include "repair/driver.h"
#include "repair/repair.h"

namespace fetafix::repair::detail {

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline TypeCounts& counts_of(RepairResult& r, localize::FaultType type) {
  return r.counts[std::string(localize::fault_type_name(type))];
}
// An edit of the graph input's shape (ID): the images must be resized to the edited input.
inline bool changes_input_shape(const std::vector<model::Edit>& edits) {
  for (const auto& e : edits)
    if (e.kind == model::EditKind::kSetGraphInput) return true;
  return false;
}

// One seeded sampler for the whole repair (xorshift64): the same subset on every run.
std::vector<size_t> seeded_sample(std::vector<size_t> items, size_t keep, uint64_t salt);

// What decides whether an edit is kept: the current score, the rule (strict drop, the
// regression policy, ties with --allow-equal) and the screening subset every candidate is run on
// first — every disagreeing image (up to screen_disagreeing; beyond it a seeded sample) plus a
// seeded sample of screen_agreeing that agree.
class Acceptance {
 public:
  Acceptance(const RepairOptions& options, compare::LabelEvaluator& evaluator) : o_(options), eval_(evaluator) {}

  const compare::CandidateScore& current() const { return current_; }
  size_t disagreeing() const { return current_.disagreeing; }
  // A new current score (the start, or a kept step's): `working` becomes the base of partial runs,
  // and the screening subset follows the images that now disagree.
  void set_current(compare::CandidateScore score, const onnx::ModelProto& working);

  // Whether `score` is an improvement on the current one; `reason` says why not.
  bool acceptable(const compare::CandidateScore& score, std::string& reason) const;

  bool has_screen() const { return !screen_.empty(); }
  const std::vector<size_t>& screen() const { return screen_; }
  size_t screen_disagreeing() const { return screen_disagreeing_; }
  // Disagreeing images among the screening subset (every image without one) on `working`.
  std::optional<size_t> screen_score(const onnx::ModelProto& working);
  // Whether `working` lowers the disagreement on the screening subset (true without a subset);
  // `screened`: how many of it disagree then.
  bool passes_screen(const onnx::ModelProto& working, size_t& screened);

 private:
  void choose_screen();

  const RepairOptions& o_;
  compare::LabelEvaluator& eval_;
  compare::CandidateScore current_;
  std::vector<size_t> screen_;     // screening subset (empty: none)
  size_t screen_disagreeing_ = 0;  // of it, how many disagree now
};

using Members = std::vector<const RepairCandidate*>;

// One step to try: the edits (and a PP preset) for `findings` — one finding, the members of a
// group, or what a JOINT step applied.
struct StepSpec {
  StepKind kind = StepKind::kFinding;
  localize::FaultType type = localize::FaultType::kWB;
  std::string description;
  std::vector<const localize::Finding*> findings;
  std::vector<model::Edit> edits;
  std::optional<data::Preset> preset;
  bool screened_already = false;  // the caller saw the edits lower the disagreement on the screen
};

// What a JOINT step applied: each member re-planned on the Target with the ones before it.
struct JointApplied {
  std::vector<const localize::Finding*> applied;
  size_t skipped = 0;                      // could not be planned or applied
  std::map<std::string, size_t> per_type;  // applied findings by type name
};

// How a JOINT step scored: as it is, or with the preset the PP check proposed (preset_finding).
struct JointScore {
  Result<compare::CandidateScore> score = make_error("not scored");
  std::string reason;
  bool keep = false;
  data::Preset feed;  // what the images are fed with
  std::optional<localize::Finding> preset_finding;
};

class Loop {
 public:
  Loop(const compare::ModelSide& source, const compare::ModelSide& target,
       const RepairOptions& o, RepairResult& r, compare::LabelEvaluator& eval);
  Status run();
  bool stopped() const { return stopped_; }  // options.on_step asked to stop

 private:
  // ---- rounds (driver.cpp)
  Status repair_round();
  Result<localize::LocalizeResult> localize_round(const localize::LocalizeOptions& lo);
  std::vector<RepairCandidate> plan_candidates(const std::vector<localize::Finding>& findings);
  void try_input_findings(const std::vector<RepairCandidate>& candidates, std::set<const RepairCandidate*>& handled,
                          std::set<const RepairCandidate*>& kept_inputs);
  Status rank_candidates(const localize::LocalizeOptions& lo, localize::LocalizeResult& loc,
                         std::vector<RepairCandidate>& candidates);
  void try_layer_findings(const Members& order, std::set<const RepairCandidate*>& handled);
  void record_localization(localize::LocalizeResult loc, const std::vector<RepairCandidate>& candidates);
  Status finish_round(Clock::time_point t1);
  localize::DetectionView detection_view() const;

  // ---- one step (driver.cpp)
  RepairStep make_step(StepKind kind, localize::FaultType type, std::string description,
                       const std::vector<const localize::Finding*>& findings) const;
  bool try_step(const StepSpec& spec);
  bool try_candidate(const RepairCandidate& c);
  void accept(RepairStep& step, compare::CandidateScore score);
  bool record(RepairStep step, std::optional<size_t> scored, Clock::time_point t0);
  void undo_to(size_t log_size);
  data::Preset rebound_preset() const;

  // ---- groups (groups.cpp)
  void try_weight_group(const std::vector<RepairCandidate>& candidates, std::set<const RepairCandidate*>& handled);
  void try_hyperparameter_groups(const std::vector<RepairCandidate>& candidates,
                                 std::set<const RepairCandidate*>& handled);
  using Describe = std::string (*)(const Members& set, size_t of);
  void try_group(localize::FaultType type, const Members& members, std::set<const RepairCandidate*>& handled,
                 Describe describe);
  bool try_group_step(localize::FaultType type, const Members& set, size_t of, bool screened,
                      std::set<const RepairCandidate*>& handled, Describe describe);
  std::vector<model::Edit> group_edits(const Members& set) const;
  std::optional<size_t> probe(const std::vector<model::Edit>& edits);
  bool bisection_spent();
  Members minimize(Members cands, const Members& fixed, size_t goal);

  // ---- the joint step and the preprocessing revisit (joint.cpp)
  void try_joint_phase(const Members& order, const std::set<const RepairCandidate*>& handled,
                       const std::set<const RepairCandidate*>& kept_inputs);
  bool try_joint(const Members& members);
  JointApplied apply_joint_members(const Members& members);
  JointScore score_joint(bool alone, bool rebinding);
  std::optional<localize::Finding> preset_finding_for(const data::Preset& current);
  void revisit_preprocessing();

  // ---- time
  void say(const std::string& line) const;
  bool out_of_time();
  bool report_steps();
  Clock::time_point deadline() const;

  const compare::ModelSide& source_;
  compare::ModelSide target_side_;
  const RepairOptions& o_;
  RepairResult& r_;
  compare::LabelEvaluator& eval_;
  onnx::ModelProto working_;
  model::EditLog log_;
  Acceptance acceptance_;
  Clock::time_point start_;
  int round_ = 0;
  size_t kept_ = 0;
  size_t kept_at_round_start_ = 0;
  bool pp_due_ = true;
  bool stopped_ = false;                           // options.on_step asked to stop
  size_t reported_steps_ = 0;                      // steps handed to options.on_step
  std::map<localize::FaultType, int> rejections_;  // this round's rejections in a row, per type
  size_t probes_ = 0;                              // screening runs of the current bisection
  std::optional<RepairStep> last_preset_step_;     // the step that kept the current PP preset
  data::Preset original_preset_;                   // the Target's preprocessing as given
  bool input_rebound_ = false;                     // an ID repair re-bound the preprocessing to a new input
  bool kept_after_preprocessing_ = false;          // a repair was kept after the last kept PP preset
  std::set<std::string> seen_;                     // ids of the findings localized so far
};

}  // namespace fetafix::repair::detail
