// Layer activation analysis (paper §4.1.4): which matched layers' activations differ between
// Source and Target in a way that the images whose top-1 label disagrees ("dissimilar") do
// not share with the images that agree ("similar"). Per element of each matched layer's
// output, the Target-Source differences over the dissimilar images are tested against those
// over a sample of similar images (Kruskal-Wallis, p < alpha); layers are ranked by the share
// of such "problematic" elements, aggregated over repeats with different similar samples.
// Method, options and memory streaming: docs/activation-analysis.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "localize/activation_io.h"  // align_target_layout
#include "localize/element_rule.h"   // ElementRule
#include "match/match.h"

namespace fetafix::localize {

struct ActivationAnalysisOptions {
  size_t max_similar = 100;     // similar images per repeat (fewer if fewer agree)
  size_t max_dissimilar = 100;  // dissimilar images, the same in every repeat
  int repeats = 3;              // each draws another seeded sample of similar images
  uint64_t seed = 1;
  double alpha = 0.05;          // an element is problematic when p < alpha; 0 < alpha <= 1
  enum class Aggregation {
    kBorda,         // sum over repeats of each layer's position by problematic fraction
    kMeanFraction,  // mean problematic fraction over repeats
    kMaxFraction,   // largest problematic fraction of any repeat
  };
  Aggregation aggregation = Aggregation::kBorda;
  int threads = 0;               // statistics workers and ONNX Runtime intra-op threads; 0 = all cores
  size_t batch_size = 8;         // images per inference call
  size_t layers_per_pass = 0;    // layers captured per pass over the images; 0 = as many as the budget holds
  // For what one pass holds: the differences of its layers over all images, and one batch of
  // captured activations. The probe (two images, all layers) comes on top.
  size_t memory_budget_bytes = size_t{1} << 30;
  // Checked before every batch: past it the analysis stops and returns an empty ranking with
  // skipped_reason saying so (repair's time limit reaches inside this long loop).
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

struct LayerScore {
  std::string source_node, target_node;
  std::string source_value, target_value;     // the captured outputs
  std::vector<int64_t> source_shape, target_shape;  // observed, batch dim included
  // aligned Target = transpose(Target, target_permutation) (on the shapes with size-1 dims
  // after the batch dim dropped); empty when no transpose is needed.
  std::vector<int64_t> target_permutation;
  int64_t elements = 0;                        // per image
  double problematic_fraction = 0;             // mean over repeats
  std::vector<double> per_repeat_fraction;
  std::vector<int64_t> per_repeat_problematic;  // element counts
  double mean_abs_diff_similar = 0;      // mean |Target - Source| over elements and similar images used
  double mean_abs_diff_dissimilar = 0;
  double score = 0;   // what the ranking sorts by: Borda sum (lower = more suspicious) or a fraction
  int rank = -1;      // 0 = most suspicious; -1 when skipped
  std::string skipped_reason;  // why the layer could not be analysed (e.g. shapes do not align)
};

struct ActivationAnalysis {
  // Analysed layers by rank, then skipped layers in pair order.
  std::vector<LayerScore> ranked;
  size_t similar_available = 0, dissimilar_available = 0;
  size_t similar_used = 0;     // images per repeat's similar sample
  size_t dissimilar_used = 0;
  int repeats = 0;
  size_t passes = 0;           // passes over the images (more when the memory budget is tight)
  std::vector<std::vector<size_t>> similar_samples;  // image indices, per repeat, ascending
  std::vector<size_t> dissimilar_sample;             // image indices, ascending
  std::string skipped_reason;  // set (and `ranked` empty) when there is nothing to compare
  bool timed_out = false;      // stopped at options.deadline
  // Where the time went (not in the JSON: it changes from run to run): running the models
  // (probes and passes) and the per-element tests.
  double inference_seconds = 0, statistics_seconds = 0;
  // Node runs per image over all passes, both models: about the two models' node counts when
  // every pass starts where the last one stopped (kept cuts), more when passes recompute.
  size_t nodes_run = 0;
};

// `source_inputs` and `target_inputs` are the preprocessed images for each model's single
// input ([N, ...]; the sides may use different presets), image i the same photo on both
// sides; agree[i] says whether image i's top-1 agrees. `pairs` name matched nodes; each
// node's first output is compared. Without dissimilar images, or with fewer than two similar
// ones, returns an empty ranking with skipped_reason set (not an error).
Result<ActivationAnalysis> analyze_layer_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                     const std::vector<match::NodeMatch>& pairs,
                                                     const Tensor& source_inputs, const Tensor& target_inputs,
                                                     const std::vector<bool>& agree,
                                                     const ActivationAnalysisOptions& options = {});
// The same for models with several inputs (any sample data, issue 11): one [N, ...] tensor per
// model input, in the order of the graph's inputs that are not initializers, row i of each from
// sample i.
Result<ActivationAnalysis> analyze_layer_activations(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                     const std::vector<match::NodeMatch>& pairs,
                                                     const std::vector<Tensor>& source_inputs,
                                                     const std::vector<Tensor>& target_inputs,
                                                     const std::vector<bool>& agree,
                                                     const ActivationAnalysisOptions& options = {});

nlohmann::json to_json(const ActivationAnalysis& analysis);
std::string aggregation_name(ActivationAnalysisOptions::Aggregation aggregation);

}  // namespace fetafix::localize
