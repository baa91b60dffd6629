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

// `fetafix localize --json` (schema: docs/localize-json.md).
nlohmann::json to_json(const LocalizeResult& result);
std::string format_report(const LocalizeResult& result, size_t max_ranked_listed = 10);

}  // namespace fetafix::localize
