// A localized fault: what kind, where in both models, and the evidence for it — typed, one
// struct per check. Localize's checks (src/localize/checks/) make these; localize groups, ranks
// and prints them; repair's planners (src/repair/strategies/) turn each kind of evidence into
// edits; the report and the evaluator follow a finding through the repair by its id.
// Adding a kind of finding: docs/architecture.md ("How to add a fault type or a check").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "data/preprocess.h"
#include "localize/op_forms.h"

namespace fetafix::localize {

// The paper's fault types. Inject's kinds are these plus benign rewrites; the report, the
// evaluator and the repair counts list them in this order.
enum class FaultType { kPP, kID, kTSS, kWB, kLH, kCG };
inline constexpr std::array<FaultType, 6> kAllFaultTypes{FaultType::kPP, FaultType::kID, FaultType::kTSS,
                                                         FaultType::kWB, FaultType::kLH, FaultType::kCG};

constexpr std::string_view fault_type_name(FaultType t) {
  switch (t) {
    case FaultType::kPP: return "PP";
    case FaultType::kID: return "ID";
    case FaultType::kTSS: return "TSS";
    case FaultType::kWB: return "WB";
    case FaultType::kLH: return "LH";
    case FaultType::kCG: return "CG";
  }
  return "?";
}

// Input-level types are about what the model is fed (its preprocessing, input dims, input
// layout): repair tries them before layer findings, and the layer ranking (local replay, activation
// analysis) does not rank them.
constexpr bool is_input_level(FaultType t) { return t == FaultType::kPP || t == FaultType::kID || t == FaultType::kTSS; }

// Whether Source and Target compute the same function on real activations where the
// finding is (LH and CG findings; see the equivalence filter).
enum class Equivalence { kNotChecked, kEquivalent, kDivergent };

constexpr std::string_view equivalence_name(Equivalence e) {
  switch (e) {
    case Equivalence::kNotChecked: return "not_checked";
    case Equivalence::kEquivalent: return "equivalent";
    case Equivalence::kDivergent: return "divergent";
  }
  return "?";
}

// ---- verdict and impact: what a difference means on these samples (docs/localize-json.md) ----
// kFault: samples disagree and the difference is not shown harmless; kHarmless: no sample
// disagrees, so it changes no outcome ("harmless on these samples"); kEquivalent: its region
// computes the Source region's function on the Source's own activations; kNote: not a fault by
// its nature (a dynamic input dim where the data fits both). Only kFault counts as a fault, is
// repaired, and makes `fetafix localize` exit 1.
enum class Verdict { kFault, kHarmless, kEquivalent, kNote };

constexpr std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kFault: return "fault";
    case Verdict::kHarmless: return "harmless";
    case Verdict::kEquivalent: return "equivalent";
    case Verdict::kNote: return "note";
  }
  return "?";
}

// The effect of one difference on the data, and its numeric size.
struct Impact {
  // Samples whose outcome (the comparator's agree/disagree) changes when this difference is
  // reverted: 0 when no sample disagrees (nothing to change); while samples disagree, measured by
  // `fetafix localize` (repair/impact.h) reverting each fault alone — WB faults as one group —
  // and nullopt where it was not measured.
  std::optional<size_t> outcome_changes;
  size_t samples = 0;     // samples the outcome count is over
  // "no_sample_disagrees", "reverted_alone", "reverted_with_group" (WB: every WB fault reverted
  // together, reverted_with names the others), "not_revertible" (no repair plans its revert) or
  // "not_measured".
  std::string basis;
  std::vector<std::string> reverted_with;  // ids of the findings reverted in the same step
  // The comparator's mean distance with the revert minus without it (negative: closer to the
  // Source); nullopt when not measured.
  std::optional<double> distance_change;
  // Numeric size: for LH/CG the Target region's output on the Source's activations against the
  // Source's (relative L2, max |diff|); for WB the stored values' max |diff|. nullopt: none.
  std::optional<double> relative_l2, max_abs_diff;
  nlohmann::json to_json() const;
};

// ---- evidence: one struct per check ------------------------------------------------------
// Each names its fault type (kType), its check (kCheck, the JSON "check" key) and the stage of
// localize's pipeline it runs in (kStage). Beside the check, in src/localize/checks/<type>.cpp,
// are `run` (the check itself, as the pipeline calls it) and `to_json` (the evidence as
// `fetafix localize --json` writes it: docs/input-checks.md, docs/layer-checks.md).

// Where a check runs in localize's pipeline (localize.cpp): input checks see only the models
// and the detection run; structure checks also the matched layers and one decoded photo; layer
// checks also the observed value shapes, and their findings go through the equivalence filter.
enum class CheckStage { kInput, kStructure, kLayer };

struct Finding;
struct CheckContext;  // localize/checks/check.h

// PP: the Target run under its own preset, the Source's and the standard ones.
struct PresetTrial {
  std::string preset;          // the preset's name
  std::string role;            // "target" (the Target's current), "source" (the Source's), "standard"
  bool measured = false;       // false: skipped, see skipped_reason
  std::string skipped_reason;
  std::string same_as;         // an earlier trial with identical preprocessing whose numbers were reused
  size_t disagreeing = 0;
  double disagreement = 0;     // share of compared images whose top-1 differs from the Source's
  double top_k_agreement = 0;  // mean |top-k(S) ∩ top-k(T)| / k (label tasks)
  std::optional<double> distance;  // other tasks: the comparator's mean distance (ties between presets)
  data::Preset bound;          // the preset as bound to the Target's input (when measured)
};

struct PreprocessingEvidence {
  static constexpr FaultType kType = FaultType::kPP;
  static constexpr std::string_view kCheck = "preprocessing";
  static constexpr CheckStage kStage = CheckStage::kInput;
  size_t images_compared = 0, images_skipped = 0;
  std::vector<PresetTrial> trials;  // trials[0]: the Target's current preset
  size_t best = 0;                  // the trial that disagrees least
  const PresetTrial& current_trial() const { return trials.at(0); }
  const PresetTrial& best_trial() const { return trials.at(best); }
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// ID: a declared input dim: fixed, or dynamic (with its symbolic name when it has one).
struct DeclaredDim {
  bool fixed = false;
  int64_t value = -1;
  std::string param;
  nlohmann::json to_json() const;  // the number, the param's name, or "?"
};

struct InputDimensionsEvidence {
  static constexpr FaultType kType = FaultType::kID;
  static constexpr std::string_view kCheck = "input_dimensions";
  static constexpr CheckStage kStage = CheckStage::kInput;
  struct Difference {
    std::string axis;  // "N", "C", "H", "W", or "d<i>" when the layout is unknown
    size_t source_position = 0, target_position = 0;
    DeclaredDim source, target;
    std::string kind;  // "size", "dynamic_in_source_fixed_in_target", "fixed_in_source_dynamic_in_target"
  };
  std::string source_input, target_input;
  std::vector<DeclaredDim> source_shape, target_shape;
  std::string source_layout, target_layout;  // "NCHW", "NHWC" or "unknown"
  std::string source_dtype, target_dtype;
  bool rank_differs = false;
  std::vector<Difference> differences;
  // The Source's dims placed in the Target's layout; nullopt when the ranks differ.
  std::optional<std::vector<DeclaredDim>> target_shape_expected;
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// TSS: which logical axis (N, C, H, W) sits where.
using Axes = std::vector<std::string>;

struct InputStructureEvidence {
  static constexpr FaultType kType = FaultType::kTSS;
  static constexpr std::string_view kCheck = "input_structure";
  static constexpr CheckStage kStage = CheckStage::kInput;
  // The last Transpose before the Target's first layer.
  struct Transpose {
    std::string node;
    std::optional<std::vector<int64_t>> perm;          // as written; nullopt: unreadable
    std::optional<Axes> input_structure;               // what it reads, once tied axes are repaired
    std::optional<std::vector<int64_t>> correct_perm;  // gives the Source's structure
    bool needs_change = false;
  };
  // A node before the first layer whose attribute or input names axes, tied to the Source's.
  struct TiedNode {
    std::string node, op, attribute;  // attribute: "axis" or "axes"
    std::vector<int64_t> value;
    Axes logical_axes;
    bool mismatch = false;
    std::optional<std::string> source_node;
    std::optional<Axes> source_logical_axes;
    // Only with a mismatch: the value naming the Source's axis, and whether the node needs it.
    std::optional<int64_t> corrected_value;
    bool needs_change = false;
  };
  std::string source_input, target_input;
  Axes source_input_structure, target_input_structure;
  std::string source_layer, target_layer;  // the first layout-sensitive layers
  Axes source_structure, target_structure;  // what they see
  bool structure_differs = false;
  std::optional<Transpose> transpose;
  std::optional<std::vector<int64_t>> perm_to_source;  // reorders what the Target's layer sees
  std::vector<TiedNode> tied_nodes;
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

struct FlattenStructureEvidence {
  static constexpr FaultType kType = FaultType::kTSS;
  static constexpr std::string_view kCheck = "flatten_structure";
  static constexpr CheckStage kStage = CheckStage::kStructure;
  std::string source_op, target_op;
  std::string source_value, target_value;  // the tensors entering the Flatten/Reshape
  std::vector<int64_t> source_shape, target_shape;
  std::vector<int64_t> perm_to_source;     // Transpose(target_value, perm) has the Source's order
  std::vector<int64_t> target_structure;   // its inverse
  std::string perm_basis;                  // "values", "shape" or "stable_order"
  std::vector<std::vector<int64_t>> candidate_perms;
  double value_error = 0, output_error = 0;
  std::string paired_by;                   // "match:<layer>" or "order"
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// WB: one compared tensor.
struct WeightSide {
  std::string tensor;            // stored name; "" when the side has none
  std::string dtype = "absent";  // stored dtype
  std::vector<int64_t> shape;
  std::vector<std::string> chain;  // ops between the stored tensor and the node, nearest the node first
  bool dequantized = false;
};

struct WeightsEvidence {
  static constexpr FaultType kType = FaultType::kWB;
  static constexpr std::string_view kCheck = "weights";
  static constexpr CheckStage kStage = CheckStage::kLayer;
  std::string role;  // "weight", "bias", "parameter"
  WeightSide source, target;
  int input_index = -1, source_input_index = -1;  // -1: the side has no such input
  std::vector<int64_t> layout_permutation;         // applied to the Source's values; empty: none
  std::optional<double> max_abs_diff, mean_abs_diff;  // nullopt with a shape mismatch
  int64_t differing = 0, total = 0;
  bool shape_mismatch = false;
  std::string bn_folded = "none";  // "target", "source" or "none"
  std::string folded_bn_node;
  std::string core_source_node, core_target_node;  // the matched layer the tensor belongs to
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// LH and CG: the subgraphs the equivalence filter runs, and what it found.
struct RegionNames {
  std::vector<std::string> nodes, ops, inputs;  // canonical node order; entry values
  std::string output;
  nlohmann::json to_json() const;
};
struct JudgedRegions {
  RegionNames source, target;
  std::string equivalence_error;  // why the filter could not judge them ("" if it could)
  // The exact structural rule that showed them equivalent where the replay could not
  // (equivalence_rules.h, e.g. "batch_norm_as_mul_add"); "" when none did.
  std::string equivalence_rule;
  void add_to(nlohmann::json& evidence) const;
};

struct HyperparametersEvidence {
  static constexpr FaultType kType = FaultType::kLH;
  static constexpr std::string_view kCheck = "hyperparameters";
  static constexpr CheckStage kStage = CheckStage::kLayer;
  std::string attribute;
  std::string kind;                               // "missing", "extra", "different"
  nlohmann::json source_value, target_value;      // effective values; null: absent without default
  bool source_explicit = false, target_explicit = false;
  std::string source_form, target_form;           // "attribute", "input", "default", "auto_pad", "pad_node"
  std::string source_op, target_op;
  std::string core_source_node, core_target_node;
  std::string source_pad_node, target_pad_node;   // a Pad folded into the Conv's pads ("" if none)
  JudgedRegions regions;
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// LH, operator substitution: the function after a matched layer (an activation, a Resize, a
// softmax), recognized whatever its spelling (op_forms.h), differs between Source and Target —
// ReLU for ReLU6, a hard-sigmoid's slope, GELU's tanh form for erf. Its check is
// checks/lh_op_forms.cpp; its repair rewrites the Target's form in place (repair/op_rewrite.h).
// Why LH and not CG: docs/op-forms.md.
struct OperatorFormEvidence {
  static constexpr FaultType kType = FaultType::kLH;
  static constexpr std::string_view kCheck = "op_form";
  static constexpr CheckStage kStage = CheckStage::kLayer;
  OpForm source_form, target_form;
  std::vector<std::string> differences;  // "hi: 6 vs inf", "function: hard_swish vs swish"
  std::string core_source_node, core_target_node;  // the matched layer the forms follow
  JudgedRegions regions;                           // the forms' nodes
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

struct GraphEvidence {
  static constexpr FaultType kType = FaultType::kCG;
  static constexpr std::string_view kCheck = "graph";
  static constexpr CheckStage kStage = CheckStage::kLayer;
  std::vector<std::string> source_ops, target_ops;      // compared op sequences
  std::vector<std::string> source_nodes, target_nodes;  // their nodes
  size_t first_difference = 0;
  std::string core_source_node, core_target_node;
  JudgedRegions regions;
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

struct ExtraOutputEvidence {
  static constexpr FaultType kType = FaultType::kCG;
  static constexpr std::string_view kCheck = "extra_outputs";
  static constexpr CheckStage kStage = CheckStage::kLayer;
  std::string target_output;
  std::vector<std::string> source_outputs, target_outputs;
  nlohmann::json to_json() const;
  static Result<std::vector<Finding>> run(const CheckContext& context);  // the check
};

// Every kind of evidence, in the order localize runs their checks within a stage. A kind
// repair has no planner for does not compile (src/repair/strategies/strategies.h).
using Evidence = std::variant<InputDimensionsEvidence, InputStructureEvidence, PreprocessingEvidence,
                              FlattenStructureEvidence, WeightsEvidence, HyperparametersEvidence, OperatorFormEvidence,
                              GraphEvidence, ExtraOutputEvidence>;

// ---- the finding ----------------------------------------------------------------------------

struct Finding {
  Evidence evidence;
  // Stable: the same for the same type, check, nodes and summary, in every run and every repair
  // round ("WB-3f0c5a9e21d4"). Repair steps name the findings they were made for by it.
  std::string id;
  std::string source_node;   // node names in each model; empty where the fault has no node
  std::string target_node;   //   (PP, or an input-level ID finding)
  std::string summary;       // one line a person reads, e.g. "pads [1,1,1,1] in Source, missing in Target"
  Equivalence equivalence = Equivalence::kNotChecked;
  Verdict verdict = Verdict::kFault;  // set by localize once the data is judged
  Impact impact;
  int layer_rank = -1;       // 0-based position of the layer in layer_order (local_replay.h); -1 if none

  bool is_fault() const { return verdict == Verdict::kFault; }

  FaultType type() const;
  std::string_view check() const;
  // The regions the equivalence filter judges (LH and CG evidence); null for other kinds.
  const JudgedRegions* regions() const;
  JudgedRegions* regions();
};

// The id of a finding with these fields.
std::string finding_id(FaultType type, std::string_view check, const std::string& source_node,
                       const std::string& target_node, const std::string& summary);
// A finding with its id.
Finding make_finding(Evidence evidence, std::string source_node, std::string target_node, std::string summary,
                     int layer_rank = -1);
// The evidence as `fetafix localize --json` writes it ({"check": ..., ...}).
nlohmann::json evidence_json(const Finding& finding);

}  // namespace fetafix::localize
