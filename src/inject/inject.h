// Plants known faults (and known-harmless rewrites) into a model, each modelled on a reported
// converter bug, and says exactly what changed: the evaluation corpus's ground truth.
// Spec grammar, the faults and the ground-truth JSON: docs/inject.md.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "inject/fault_spec.h"

namespace fetafix::inject {

struct InjectionResult {
  onnx::ModelProto model;
  // {"format": "fetafix-injection", "version": 1, "seed", "replayable", "injections": [...], "edits": ...}
  nlohmann::json ground_truth;
};

// Applies `specs` in order to a copy of `model`. Every change except the two whole-model
// rewrites (benign:ort-optimized, benign:opset) is made through model::EditLog, so the ground
// truth's "edits" replayed on `model` (model::replay) give the same bytes. A whole-model rewrite
// must be the only spec. `seed` drives node=random. Deterministic: same inputs, same bytes.
// Errors are one line naming the spec, e.g. "fault 'lh:drop-pads': no Conv/MaxPool/AveragePool
// node has non-zero pads"; a spec that would change nothing is an error too.
Result<InjectionResult> inject(const onnx::ModelProto& model, const std::vector<FaultSpec>& specs,
                               uint64_t seed = 0);

}  // namespace fetafix::inject
