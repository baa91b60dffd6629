// Exact structural rules of the equivalence filter (equivalence.h): rewrites shown equivalent
// from the two models alone, for the regions layer-local replay cannot clear — their entries
// cannot be fed from the Source (an upstream fault changed their spatial size: a Pad planted
// before a layer makes every later activation 57 wide against 56), or a difference that is
// another finding's (the matched layer's own weights, WB's) moves their output. Internal to
// src/localize; docs/layer-checks.md, "Equivalence filter".
#pragma once

#include <optional>
#include <string>

#include <onnx/onnx_pb.h>

#include "localize/finding.h"
#include "model/graph.h"

namespace fetafix::localize {

// Both models with their graph views, built once for every finding judged.
struct RuleModels {
  const onnx::ModelProto& source;
  const onnx::ModelProto& target;
  const model::GraphView& source_view;
  const model::GraphView& target_view;
};

// BatchNormalization ≡ Mul + Add: the regions are the same node for node once each
// BatchNormalization(x; γ, β, μ, σ², ε) on either side is read as Mul(x, a) then Add(·, c), with
// a = γ/√(σ²+ε) and c = β − μ·a per channel: each Mul or Add by a constant matches the other
// side's per element within rtol·max|constant| + atol, every other node has the same op type, the
// same attributes and the same constant inputs (Identity nodes left out). The weights of core
// layers (Conv, Gemm, MatMul, ConvTranspose) are not compared: the WB check compares them. Holds only where at least one BatchNormalization meets a Mul + Add.
// Returns the rule's name ("batch_norm_as_mul_add") when it holds.
std::optional<std::string> exact_rule(const RuleModels& models, const JudgedRegions& regions, double rtol, double atol);

}  // namespace fetafix::localize
