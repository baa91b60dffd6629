// `fetafix localize`: the whole fault localization of paper §4.1 in one call. It measures
// disagreement on the detection images, runs the input-based checks (PP, ID, TSS), aligns
// the core layers, runs the layer-based checks (WB, LH, CG), marks LH/CG findings equivalent
// or divergent on real activations, and ranks the layers twice: by activation analysis (the
// paper's method) and by layer-local replay (the error each layer adds by itself,
// docs/local-replay.md); findings are listed in the replay's order.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "compare/compare.h"
#include "localize/activation_analysis.h"
#include "localize/equivalence.h"
#include "localize/finding.h"
#include "localize/input_checks.h"
#include "localize/layer_checks.h"
#include "localize/local_replay.h"
#include "match/match.h"

namespace fetafix::localize {

// How much of the detection set the data-driven stages take, the same in `fetafix localize` and
// in every repair round (both do the same work: docs/activation-analysis.md, "Localize and
// repair"). The rankings only order the findings, and layer-local replay, which ranks them
// first, runs on its own sample; the PP check screens presets on a sample and the repair's
// whole set decides.
inline constexpr size_t kRankingSimilar = 30;       // activation analysis: similar images per repeat
inline constexpr size_t kRankingDissimilar = 30;    // activation analysis: dissimilar images
inline constexpr size_t kPreprocessingSample = 16;  // PP check: disagreeing (and as many agreeing) images

// The activation analysis as localization runs it: the library's options (the paper's 100 +
// 100) with the sample sizes above.
inline ActivationAnalysisOptions localization_activation_options() {
  ActivationAnalysisOptions o;
  o.max_similar = kRankingSimilar;
  o.max_dissimilar = kRankingDissimilar;
  return o;
}

struct LocalizeOptions {
  compare::CompareOptions compare;                 // threads, batch, top-k, label offset, strict, progress
  std::vector<std::string> presets_to_try{"torch", "tf", "caffe", "raw", "uint8"};
  match::MatchOptions match;
  ActivationAnalysisOptions activation = localization_activation_options();
  LayerCheckOptions layer_checks;
  EquivalenceOptions equivalence;
  ReplayOptions replay;     // layer-local replay (docs/local-replay.md)
  size_t replay_images = 32;  // disagreeing images replay runs on (a seeded sample); 0 = no replay
  size_t probe_images = 4;  // images the equivalence filter runs the subgraphs on
  // PP check on a seeded sample: up to this many disagreeing images and as many agreeing ones
  // (0 = every image). Repair verifies a preset it keeps on every image.
  size_t preprocessing_sample = kPreprocessingSample;
  double preprocessing_min_gain = kDefaultPresetMinGain;  // see preprocessing_findings
};

// What the detection run told localization: which samples agree, with the presets bound to
// each model's input. localize_faults gets it from compare_models; repair gets it from its
// evaluator, so the samples are not run through both models again. Samples of any kind (images,
// .npz, .npy, .wav; data/samples.h): every model run of localization feeds them as compare does.
struct DetectionView {
  std::filesystem::path image_dir;             // the sample folder
  data::SampleSet samples;                     // the samples, with the constant inputs
  std::vector<std::filesystem::path> files;    // samples.files()' paths, sorted
  std::vector<bool> usable;                    // decoded and compared
  std::vector<bool> agree;                     // the task's comparator says they agree (where usable)
  data::Preset source_preset, target_preset;   // bound to the models' image inputs (when the samples are images)
};

// The data-driven stages; the static checks (ID, TSS, matching, WB, LH, CG, equivalence on a
// few probe images) always run.
struct LocalizeStages {
  bool preprocessing = true;        // PP: the Target run under every preset
  bool activation_analysis = true;  // the layer rankings (activation analysis and local replay)
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
  LocalReplay replay;                      // the error each matched layer adds by itself
  size_t disagreeing = 0;                  // detection images whose top-1 differs
  // Faults first (PP, ID, TSS, WB, LH, CG; layer findings in rank order), then harmless
  // differences, equivalent ones and notes (Verdict's order).
  std::vector<Finding> findings;
  std::vector<PhaseTime> timings;
  std::vector<std::string> notes;          // what was skipped and why

  size_t fault_count() const;              // findings whose verdict is kFault
  size_t verdict_count(Verdict v) const;
  // Some image disagrees and no finding is a fault: nothing the checks know explains it
  // (`fetafix localize` says so, names the layers with the largest replay error, exits 1).
  bool unexplained_disagreement() const { return disagreeing > 0 && fault_count() == 0; }
  // No fault and no unexplained disagreement: what `fetafix localize` exits 0 for.
  bool nothing_to_repair() const { return fault_count() == 0 && !unexplained_disagreement(); }
};

// Each finding's verdict and impact (finding.h) from the data: equivalent when its region
// computes the Source's function; else harmless when no sample disagrees (it changes no
// outcome), a fault otherwise; a note (set by its check) stays a note.
void assign_verdicts(std::vector<Finding>& findings, size_t disagreeing, size_t compared);

Result<LocalizeResult> localize_faults(const compare::ModelSide& source, const compare::ModelSide& target,
                                       const std::filesystem::path& image_dir, const LocalizeOptions& options);
// The same on samples already opened (a folder, or arrays held in memory: data/samples.h), as
// compare_models takes them; options.compare.samples is not read again.
Result<LocalizeResult> localize_faults(const compare::ModelSide& source, const compare::ModelSide& target,
                                       data::SampleSet samples, const LocalizeOptions& options);

// A finding's impact in words, as the console report and the HTML report print it: what reverting
// it changed (faults measured by repair/impact.h; "" when not measured) and its numeric size
// ("" when none).
std::string impact_outcome_text(const Impact& impact);
std::string impact_size_text(const Impact& impact);

// "borda", "mean" or "max" (--aggregation): how the activation analysis' repeats combine.
Result<ActivationAnalysisOptions::Aggregation> aggregation_from_name(std::string_view name);
// The op types matched and ranked as layers (--core-ops): the matcher's and the layer checks'.
void set_core_ops(LocalizeOptions& options, const std::vector<std::string>& ops);

// Localization after a detection run the caller already has. `result.detection` stays empty.
Result<LocalizeResult> localize_detected(const compare::ModelSide& source, const compare::ModelSide& target,
                                         const DetectionView& detection, const LocalizeOptions& options,
                                         const LocalizeStages& stages = {});

// The layer rankings alone (for callers that ran the static stage first): activation analysis
// on a bounded, seeded subset of the detection images, and layer-local replay on up to
// options.replay_images disagreeing ones. Fills result.activation and result.replay, sets the
// layer_rank of its findings to their layer's position in layer_order (local_replay.h), and
// re-sorts them.
Status rank_layers(const compare::ModelSide& source, const compare::ModelSide& target, const DetectionView& detection,
                   const LocalizeOptions& options, LocalizeResult& result);

// `fetafix localize --json` (schema: docs/localize-json.md).
nlohmann::json to_json(const LocalizeResult& result);
std::string format_report(const LocalizeResult& result, size_t max_ranked_listed = 10);

}  // namespace fetafix::localize
