// The passes of the activation analysis as chained segments. Each pass captures some layers'
// activations for every image; instead of running each model from its input in every pass, a
// pass runs only the nodes no earlier pass computed, from values an earlier pass kept for every
// image (the cut between what is computed and what is still needed). Keeping a cut costs
// memory (its values for every image), so a cut is kept only when it fits the cache budget;
// otherwise the next pass computes again from the last kept cut (or the input).
// docs/activation-analysis.md, "Passes".
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "runtime/session.h"

namespace fetafix::localize {

struct SegmentPlan {
  std::vector<std::string> entries;      // kept values this pass reads (from earlier passes)
  std::vector<std::string> outputs;      // what the segment model returns, in its output order
  std::vector<std::string> keep;         // of those, the values kept for later passes
  std::vector<std::string> cache_after;  // every value kept after this pass
  // Computes `outputs` from `entries` and the graph inputs; nullopt when the pass needs nothing
  // computed (its values are all kept already).
  std::optional<onnx::ModelProto> model;
};

struct CapturePlanInput {
  // values_per_pass[p]: the values pass p must deliver for every image.
  std::vector<std::vector<std::string>> values_per_pass;
  // Every value of the model, as one run showed it (observe_value_shapes on a batch).
  const std::map<std::string, runtime::ValueInfo>* values = nullptr;
  int64_t probe_batch = 0;     // dim 0 of the values in `values`: a value with another dim 0 is not per-image
  size_t rows = 0;             // images per pass
  size_t cache_budget = 0;     // bytes the kept values may take (all rows); 0 = never keep
  int64_t fixed_batch = 0;     // the model's fixed batch (0: dynamic), for the entry inputs
};

Result<std::vector<SegmentPlan>> plan_capture_segments(const onnx::ModelProto& model, const CapturePlanInput& input);

}  // namespace fetafix::localize
