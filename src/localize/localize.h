// `fetafix localize`: the whole fault localization of paper §4.1 in one call. It measures
// disagreement on the detection images, runs the input-based checks (PP, ID, TSS), aligns
// the core layers, ranks them by activation analysis, runs the layer-based checks (WB, LH,
// CG) in rank order, and marks LH/CG findings equivalent or divergent on real activations.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "compare/compare.h"
#include "localize/activation_analysis.h"
#include "localize/equivalence.h"
#include "localize/finding.h"
#include "localize/input_checks.h"
#include "localize/layer_checks.h"
#include "match/match.h"

namespace fetafix::localize {

struct LocalizeOptions {
  compare::CompareOptions compare;                 // threads, batch, top-k, label offset, strict, progress
  std::vector<std::string> presets_to_try{"torch", "tf", "caffe", "raw", "uint8"};
  match::MatchOptions match;
  ActivationAnalysisOptions activation;
  LayerCheckOptions layer_checks;
  EquivalenceOptions equivalence;
  size_t probe_images = 4;  // images the equivalence filter runs the subgraphs on
  // PP check on a seeded sample: up to this many disagreeing images and as many agreeing ones
  // (0 = every image). Repair screens presets this way and verifies the winner on every image.
  size_t preprocessing_sample = 0;
  double preprocessing_min_gain = kDefaultPresetMinGain;  // see preprocessing_findings
};

// What the detection run told localization: which images agree, with the presets bound to
// each model's input. localize_faults gets it from compare_models; repair gets it from its
// evaluator, so the images are not run through both models again.
struct DetectionView {
  std::filesystem::path image_dir;
  std::vector<std::filesystem::path> files;    // the image folder's files, sorted
  std::vector<bool> usable;                    // decoded and compared
  std::vector<bool> agree;                     // top-1 equal (where usable)
  data::Preset source_preset, target_preset;   // bound to the models' inputs
};

// The data-driven stages; the static checks (ID, TSS, matching, WB, LH, CG, equivalence on a
// few probe images) always run.
struct LocalizeStages {
  bool preprocessing = true;        // PP: the Target run under every preset
  bool activation_analysis = true;  // the layer ranking
};

struct PhaseTime {
  std::string phase;
  double seconds = 0;
};

struct LocalizeResult {
  std::string source_label, target_label;
  compare::CompareResult detection;        // Source vs Target as given
  PreprocessingReport preprocessing;       // empty when nothing disagreed
  match::MatchResult matching;
  ActivationAnalysis activation;
  // Faults first (PP, ID, TSS, WB, LH, CG; layer findings in rank order), then the
  // differences the equivalence filter found harmless.
  std::vector<Finding> findings;
  std::vector<PhaseTime> timings;
  std::vector<std::string> notes;          // what was skipped and why

  size_t fault_count() const;              // findings not marked equivalent
};

Result<LocalizeResult> localize_faults(const compare::ModelSide& source, const compare::ModelSide& target,
                                       const std::filesystem::path& image_dir, const LocalizeOptions& options);

// Localization after a detection run the caller already has. `result.detection` stays empty.
Result<LocalizeResult> localize_detected(const compare::ModelSide& source, const compare::ModelSide& target,
                                         const DetectionView& detection, const LocalizeOptions& options,
                                         const LocalizeStages& stages = {});

// The layer ranking alone (for callers that ran the static stage first): activation analysis
// on a bounded, seeded subset of the detection images. Fills result.activation and the
// layer_rank of its findings, and re-sorts them.
Status rank_layers(const compare::ModelSide& source, const compare::ModelSide& target, const DetectionView& detection,
                   const LocalizeOptions& options, LocalizeResult& result);

// `fetafix localize --json` (schema: docs/localize-json.md).
nlohmann::json to_json(const LocalizeResult& result);
std::string format_report(const LocalizeResult& result, size_t max_ranked_listed = 10);

}  // namespace fetafix::localize
