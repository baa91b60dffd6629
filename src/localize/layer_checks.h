// Layer-based checks over matched Source/Target layers (paper §4.1, "WB", "LH", "CG"):
// weights and biases (checks/wb.cpp), layer hyperparameters (checks/lh.cpp), and the
// computational graph just before a layer (checks/cg.cpp). Each check walks the given pairs in
// the given (ranked) order and sets Finding::layer_rank to the pair's position in that list.
// Details: docs/layer-checks.md.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "localize/finding.h"
#include "match/match.h"

namespace fetafix::localize {

struct LayerCheckOptions {
  // WB: an element differs when |source - target| > weight_atol + weight_rtol * |source|.
  // Exact by default: float16 rounding and quantization are faults to be found and counted.
  double weight_atol = 0;
  double weight_rtol = 0;
  // WB after folding a BatchNormalization into one side: folding itself rounds, so elements
  // differ only beyond folded_rtol * max|folded tensor| (plus weight_atol).
  double folded_rtol = 1e-5;
  // Ops whose parameters are compared when they follow a matched layer on both sides.
  std::set<std::string> neighbour_weight_ops{"BatchNormalization", "Mul", "Add", "Sub", "Div", "PRelu",
                                             "InstanceNormalization", "LayerNormalization"};
  // LH: attributes compared on matched layers and on their neighbours.
  std::vector<std::string> hyperparameters{"pads",    "strides", "kernel_shape", "dilations", "group",
                                           "auto_pad", "epsilon", "min",          "max",       "axis",
                                           "ceil_mode", "count_include_pad"};
  // How many non-transparent nodes after a matched layer count as its neighbours.
  size_t max_neighbours = 3;
  // LH also pairs nodes past forks: those within this many edges after a matched layer (not
  // through another core layer) are paired by op type and order when both sides have as many
  // of that op there. Finds the Clip inside a hard-swish, x * Clip(x + 3, 0, 6) / 6, whose x
  // feeds two nodes so the single-consumer chain stops before it. 0 turns it off.
  size_t fan_out_depth = 4;
  // Core layers: neighbour chains stop before them, CG regions start after them.
  std::set<std::string> core_ops = match::default_core_ops();
  // CG: ops left out of the compared op sequences (still part of the region that the
  // equivalence filter runs). Quantization is judged by WB and activations, not by CG.
  std::set<std::string> cg_ignored_ops{"Identity", "QuantizeLinear", "DequantizeLinear"};
  // Observed value shapes (runtime::observe_value_shapes), used to turn auto_pad=SAME_* into
  // explicit pads; declared shapes are used where these are absent.
  std::map<std::string, std::vector<int64_t>> source_shapes, target_shapes;
};

// WB: the main weight and bias of each pair (aligned by NodeMatch::weight_permutation, BN
// folded first where the pair says so) and the parameters of paired neighbours. One finding
// per differing tensor. Fails when a pair names a node that does not exist.
Result<std::vector<Finding>> check_weights(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                           const std::vector<match::NodeMatch>& pairs,
                                           const LayerCheckOptions& options = {});

// LH: options.hyperparameters on each pair and its paired neighbours, ONNX defaults applied,
// auto_pad resolved to pads where shapes are known, a zero Pad right before a Conv folded into
// its pads, Clip bounds read from attributes or constant inputs. One finding per attribute.
Result<std::vector<Finding>> check_hyperparameters(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                   const std::vector<match::NodeMatch>& pairs,
                                                   const LayerCheckOptions& options = {});

// LH, operator substitution: the form (localize/op_forms.h) each pair's output goes through
// next, compared; one finding per pair of forms computing different functions, except single
// same-op nodes whose differing attributes check_hyperparameters compares (docs/op-forms.md).
Result<std::vector<Finding>> check_operator_forms(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                  const std::vector<match::NodeMatch>& pairs,
                                                  const LayerCheckOptions& options = {});

// CG: the region from the previous core layer (or fork point) to each pair's node, compared
// as op sequences. One finding per pair whose sequences differ.
Result<std::vector<Finding>> check_graph(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                         const std::vector<match::NodeMatch>& pairs,
                                         const LayerCheckOptions& options = {});

// CG: graph outputs a converter added: Target outputs that pair with no Source output (by name
// first, then in order among outputs of the same element type). Empty when the Target has no
// more outputs than the Source. Needs no matched layers.
Result<std::vector<Finding>> check_extra_outputs(const onnx::ModelProto& source, const onnx::ModelProto& target);

}  // namespace fetafix::localize
