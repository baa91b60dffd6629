// The greedy repair loop (paper §4.2, with its accept/revert logic fixed): localize, turn
// each finding into an edit set, keep an edit only when label disagreement on the whole
// detection set strictly drops, undo it exactly otherwise; input-based faults first, then
// layer-based ones in rank order (divergent before unchecked before equivalent). Similar
// weight findings are tried together and bisected to the smallest set that gives the gain.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <onnx/onnx_pb.h>

#include "compare/compare.h"
#include "localize/localize.h"
#include "repair/patch.h"

namespace fetafix::repair {

enum class RegressionPolicy {
  kAllowIfTotalDrops,  // an edit may make an agreeing image disagree if the total still drops
  kStrict,             // an edit that makes any agreeing image disagree is rejected
};

struct RepairStep;

struct RepairOptions {
  localize::LocalizeOptions localize;  // its `compare` holds threads, batch size, label offset, ...
  double time_limit_seconds = 7200;
  int max_rejections = 3;              // consecutive rejected edits per strategy before it stops
  bool allow_equal = false;            // keep ties that lower the probability distance
  RegressionPolicy regression = RegressionPolicy::kAllowIfTotalDrops;
  int max_rounds = 4;                  // localize -> repair rounds
  // Independent samples (--validate-images, --validate-data): disagreement before and after.
  std::optional<data::SampleSet> validation;
  // Fast evaluation (docs/repair.md). Candidates are screened on a subset first — every image
  // that disagrees (up to screen_disagreeing; beyond it a seeded sample) plus a seeded sample
  // of screen_agreeing that agree — and only those that lower the disagreement there are run on
  // the whole detection set, which alone decides. With every disagreeing image in the subset
  // the screen never rejects an edit the whole set would keep.
  size_t screen_disagreeing = 256;
  size_t screen_agreeing = 32;
  bool partial_execution = true;           // re-run only what an edit changes, from cached values
  size_t partial_budget_bytes = size_t{1} << 30;
  int max_bisection_probes = 16;           // screening runs spent shrinking a group of weight fixes
  size_t preprocessing_sample = localize::kPreprocessingSample;  // PP check: disagreeing (and as many agreeing) images
  // When a round keeps nothing, its untried-or-rejected non-PP findings are applied together and
  // kept if that lowers the disagreement (faults that each break every label on their own).
  bool joint_step = true;
  // The layer ranking only orders the remaining candidates: caps on the localize options'
  // similar/dissimilar counts (`fetafix localize` takes the same by default).
  size_t ranking_max_similar = localize::kRankingSimilar;
  size_t ranking_max_dissimilar = localize::kRankingDissimilar;
  std::function<void(const std::string&)> log;  // progress lines; may be empty
  // Called with every step once it is decided (kept or not), between steps; returning false
  // stops the repair with an error (the Python module's progress callback and Ctrl-C). One
  // process only: ranks under mpirun could stop at different steps.
  std::function<bool(const RepairStep&)> on_step;
};

// What a step tried: one finding's repair, a group of findings of one type tried together
// (WB*, LH*: the same fix on many tensors or nodes), or the findings of a stuck round applied
// together (JOINT).
enum class StepKind { kFinding, kGroup, kJoint };

struct RepairStep {
  int round = 0;
  StepKind kind = StepKind::kFinding;
  localize::FaultType type = localize::FaultType::kWB;  // of the finding(s); unused for JOINT
  std::string description;
  std::string source_node, target_node;
  bool kept = false;
  std::string reason;        // why rejected (or "kept")
  size_t disagreeing_before = 0, disagreeing_after = 0;
  size_t edits = 0;
  double seconds = 0;
  bool screened_out = false;  // rejected on the screening subset, never run on every image
  // The findings (localize::Finding::id) the step was made for: one, a group's members, the
  // findings a JOINT step applied (and the PP finding whose preset it chose), or the PP finding
  // whose preset a revert undoes. The report and the evaluator follow findings by these.
  std::vector<std::string> finding_ids;
  std::vector<std::string> target_nodes;  // every Target node the step's findings name (a group: all of them)
  std::vector<std::string> finding_summaries;  // a group or JOINT step: each member finding's summary
  bool reverts = false;  // undoes the kept PP step whose finding it names (the Target's own preset back)

  // "WB", "WB*" for a group, "JOINT": the step's "type" in the repair log.
  std::string type_label() const;
};

// Per finding: a group step (WB*, LH*) counts each of its findings as tried (and kept).
struct TypeCounts {
  size_t localized = 0, tried = 0, kept = 0;
};

struct Validation {
  size_t images = 0;
  size_t initial_disagreeing = 0, final_disagreeing = 0;
  std::vector<std::string> newly_disagreeing;  // agreed before repair, disagree after
};

// How a repair ended: nothing disagrees any more, fewer samples disagree, or no fewer.
enum class RepairOutcome { kRepaired, kImproved, kNoImprovement };

struct RepairResult {
  onnx::ModelProto repaired;
  Patch patch;
  size_t images = 0;
  size_t initial_disagreeing = 0, final_disagreeing = 0;
  std::vector<double> history;                  // discrepancy at start and after each kept step
  std::vector<RepairStep> steps;
  std::map<std::string, TypeCounts> counts;     // by fault type name
  std::vector<localize::PhaseTime> timings;
  bool time_limit_reached = false;
  std::string stop_reason;
  std::optional<Validation> validation;
  size_t full_runs = 0, partial_runs = 0;   // Target evaluations by kind
  // What each round localized (static checks, plus the ranking when it ran); its findings carry
  // the layer ranks. `detection` inside is empty: the flags came from the evaluator.
  std::vector<localize::LocalizeResult> localizations;
  std::vector<std::string> image_files;     // detection images, relative to the folder
  std::vector<bool> initial_agree, final_agree;  // per image

  RepairOutcome outcome() const {
    return final_disagreeing == 0                     ? RepairOutcome::kRepaired
           : final_disagreeing < initial_disagreeing ? RepairOutcome::kImproved
                                                     : RepairOutcome::kNoImprovement;
  }
};

// "repaired", "improved", "no_improvement".
std::string_view outcome_name(RepairOutcome outcome);

Result<RepairResult> repair_target(const compare::ModelSide& source, const compare::ModelSide& target,
                                   const std::filesystem::path& image_dir, const RepairOptions& options);
// The same on samples already opened (a folder, or arrays held in memory: data/samples.h), as
// compare_models takes them; options.localize.compare.samples is not read again.
Result<RepairResult> repair_target(const compare::ModelSide& source, const compare::ModelSide& target,
                                   data::SampleSet samples, const RepairOptions& options);

// The repair log (`fetafix repair --json`, schema fetafix.repair/1, docs/repair.md).
nlohmann::json to_json(const RepairResult& result);
// One step as the log lists it (an element of "steps").
nlohmann::json to_json(const RepairStep& step);
std::string format_report(const RepairResult& result);

}  // namespace fetafix::repair
