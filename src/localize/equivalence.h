// Equivalence filter for LH and CG findings: do the Source and Target pieces a finding points
// at compute the same function on real activations? Converters rewrite graphs in ways that
// look different and are not (Pad+Conv vs Conv(pads), BatchNormalization vs Mul+Add, a BN
// folded into its Conv); in the paper 95 % of LH and 91 % of CG repairs changed nothing.
// Method and tolerances: docs/layer-checks.md.
#pragma once

#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "localize/finding.h"
#include "match/match.h"

namespace fetafix::localize {

struct EquivalenceOptions {
  // Outputs (and region entries) agree on a probe image when
  //   max |source - target| <= rtol * max |source| + atol.
  // rtol covers float reassociation and BN folding (~1e-6 relative); real faults such as a
  // changed epsilon or pads move outputs far more.
  double rtol = 1e-4;
  double atol = 1e-6;
  int threads = 1;  // ONNX Runtime intra-op threads for the captures and subgraph runs
};

// Marks every LH and CG finding that carries regions kEquivalent or kDivergent; other findings
// are left as they are. The verdict is the region's alone: layer-local replay (local_replay.h)
// feeds the Target region the Source's own activations at the Source region's entries
// (layout-aligned) and compares its output with the Source's at the Source region's output, per
// probe image. So an upstream difference never reaches the region, and the same pattern gets
// the same verdict wherever it sits. Exact rewrites (Pad + Conv(pads 0) vs Conv(pads), a folded
// or split BatchNormalization, a Clip bound beyond the range the activations reach) give equal
// outputs on the data and so are equivalent. The region's measured size goes to finding.impact
// (relative_l2, max_abs_diff). A finding whose regions cannot be replayed stays kNotChecked,
// with the reason in evidence["equivalence_error"]. Inputs: [N, ...] preprocessed probe images
// for each model's single input, image i the same photo on both sides. Fails only when a full
// model cannot be run on them. A region whose own entries cannot be fed from the Source (they
// do not align, or the Target region walks past them to the model input) is replayed once more
// bounded by the matched layers `pairs` instead (each other pair's boundary fed the Source's
// value, as replay_matched_layers does); without pairs it stays kNotChecked. Last, a finding the
// replay did not show equivalent is judged by the exact structural rules (equivalence_rules.h:
// BatchNorm ≡ Mul + Add, the matched layer's weights left to WB) and is kEquivalent when one holds.
Status filter_equivalent(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const Tensor& source_inputs, const Tensor& target_inputs,
                         const EquivalenceOptions& options = {}, const std::vector<match::NodeMatch>& pairs = {});

// One finding; fails where filter_equivalent would leave it kNotChecked.
Result<Equivalence> check_equivalence(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                      const Finding& finding, const Tensor& source_inputs, const Tensor& target_inputs,
                                      const EquivalenceOptions& options = {});

}  // namespace fetafix::localize
