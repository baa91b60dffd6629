// Layer-local replay: the error each region of the Target adds by itself. A Target region (the
// nodes between matched boundaries) is run on the Source's own activations at its entries,
// layout-aligned, and its output is compared with the Source's activation at the same place on
// the same images. Unlike the activation analysis, an upstream fault does not propagate: every
// region starts from the Source's values, so the region that introduces a difference is the one
// whose error is large. Method, tolerance and cost: docs/local-replay.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "localize/activation_analysis.h"
#include "match/match.h"
#include "model/graph.h"

namespace fetafix::localize {

struct ReplayOptions {
  // A region reproduces the Source when its relative L2 error is at most this. Float32
  // reassociation and BatchNorm folding stay near 1e-6; converter faults (float16 or int8
  // weights, pads, epsilon, scales) are 1e-4 and more.
  double tolerance = 1e-5;
  int threads = 0;         // ONNX Runtime intra-op threads and comparison workers; 0 = all cores
  size_t batch_size = 8;   // images per inference call, at most
  // What one batch may hold: the captured Source values, the values fed to the Target regions
  // and their outputs. Batches shrink (down to one image) to stay under it.
  size_t memory_budget_bytes = size_t{256} << 20;
};

enum class ReplayStatus {
  kMeasured,            // the region ran on the Source's values; the errors are set
  kOutputShapeDiffers,  // its output cannot be aligned with the Source's (e.g. dropped pads)
  kInputUnavailable,    // an entry cannot be fed: Source and Target values do not align (upstream shape change)
  kFailed,              // the region could not be extracted or run (reason says why)
};
std::string_view replay_status_name(ReplayStatus status);

// One region of the Target to replay.
struct ReplayRegion {
  std::string id;             // the caller's name for it, reported back
  std::string source_output;  // the Source value the region must reproduce
  std::string target_output;  // the Target value that computes it
  // Target value <- Source value fed into it. Walking back from target_output stops at these, at
  // Target graph inputs (fed the Target's own inputs) and at weights; everything met on the way
  // is the region.
  std::vector<std::pair<std::string, std::string>> entries;
};

struct RegionError {
  std::string id;
  ReplayStatus status = ReplayStatus::kFailed;
  std::string reason;                         // set for every status but kMeasured
  std::vector<std::string> target_nodes;      // the Target nodes replayed, in graph order
  std::vector<std::string> entries_read;      // Target entry values it reads (fed from the Source)
  std::vector<std::string> graph_inputs_read;  // Target graph inputs it reads (fed the Target's inputs)
  std::vector<int64_t> source_shape, target_shape;  // output shapes, batch dim 1
  std::vector<int64_t> target_permutation;    // Target output read in the Source layout; empty = identity
  // With S the Source output and T the replayed Target output in the Source layout, over every
  // image: ||T - S||2 / ||S||2 (+inf when S is all zero and T is not), max |T - S|, max |S|.
  double relative_l2 = 0;
  double max_abs_error = 0;
  double max_abs_source = 0;
  // Per image, for rules judged image by image (e.g. max|T - S| <= rtol max|S| + atol).
  std::vector<double> image_max_abs_error, image_max_abs_source;
  size_t nan_mismatches = 0;       // elements NaN on exactly one side
  bool exceeds_tolerance = false;  // output shape differs, a NaN mismatch, or relative_l2 > tolerance

  // What rankings sort by (descending): +inf for a changed output shape or NaN mismatch, the
  // relative L2 error when measured, NaN (unranked) otherwise.
  double severity() const;
};

struct ReplayRun {
  std::vector<RegionError> regions;  // in the order asked for
  size_t images = 0;
  size_t batches = 0;     // inference calls per model
  size_t sessions = 0;    // ONNX Runtime sessions created
  double source_seconds = 0, target_seconds = 0;  // inference time of the Source capture and the Target regions
};

// Replays `regions` on every image: source_inputs and target_inputs are [N, ...] preprocessed
// images for each model's single input, image i the same photo on both sides. One Source run
// captures every value the regions need; one session holds every Target region (renamed copies
// side by side), so a batch costs one call per model. Fails only on bad arguments or when a
// model cannot be run; a region that cannot be replayed gets its status and reason.
Result<ReplayRun> replay_regions(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 const std::vector<ReplayRegion>& regions, const Tensor& source_inputs,
                                 const Tensor& target_inputs, const ReplayOptions& options = {});

// The value a matched layer is compared at: its first output followed along single-consumer
// edges through element-wise ops whose other inputs are weights (BatchNormalization, Relu,
// Clip, Mul/Add by a constant, Q/DQ, Cast, Identity, Transpose, ...), stopping at a fork, a
// graph output or any other op. Source and Target then meet at the same function when one side
// folded a BatchNormalization or split it into Mul + Add.
std::string layer_boundary(const model::GraphView& view, size_t node);

struct LayerReplay {
  std::string source_node, target_node;
  std::string source_value, target_value;  // the boundaries compared
  RegionError error;                       // id = "<source_node>"
  int rank = -1;  // 0 = largest error; -1 when not measured (input unavailable, failed)
};

struct LocalReplay {
  // Measured layers by rank (changed output shapes first, then relative L2 error descending,
  // ties in pair order), then the unranked ones in pair order.
  std::vector<LayerReplay> ranked;
  double tolerance = 0;
  size_t images = 0, batches = 0, sessions = 0;
  double source_seconds = 0, target_seconds = 0;
  std::string skipped_reason;  // set (and `ranked` empty) when the caller did not run it, and why

  const LayerReplay* find(const std::string& source_node) const;
  // Measured layers whose error exceeds the tolerance, in rank order.
  std::vector<const LayerReplay*> exceeding() const;
};

// The boundary (layer_boundary) of every matched pair on both sides, in pair order; error and
// rank left unset. Fails when a pair names a node a model lacks.
Result<std::vector<LayerReplay>> matched_boundaries(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                    const std::vector<match::NodeMatch>& pairs);

// Layer-local replay of every matched pair: pair k's Target region computes its boundary from
// the other pairs' boundaries (fed the Source's values) and the Target's input.
Result<LocalReplay> replay_matched_layers(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                          const std::vector<match::NodeMatch>& pairs, const Tensor& source_inputs,
                                          const Tensor& target_inputs, const ReplayOptions& options = {});

// The order in which localization lists layers and repair tries their findings (source node ->
// 0-based position): first the layers whose local replay error exceeds the tolerance, by replay
// rank (the error a layer adds by itself); then the others by the activation analysis's rank
// (the paper's Kruskal-Wallis ranking); layers neither ranks are left out. With replay not run,
// this is the activation analysis's ranking.
std::map<std::string, int> layer_order(const LocalReplay& replay, const ActivationAnalysis& activation);

nlohmann::json to_json(const RegionError& error);
nlohmann::json to_json(const LocalReplay& replay);

}  // namespace fetafix::localize
