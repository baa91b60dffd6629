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

// Marks every LH and CG finding that carries regions (evidence "source_region" and
// "target_region") kEquivalent or kDivergent; other findings are left as they are. Each model
// is run once on its probe inputs (a batch of preprocessed images, one tensor per model
// input) capturing the region entry values; then each finding's two regions are extracted as
// standalone models and run on those activations. When the entries themselves already differ
// between the models (an upstream fault), both regions get the Source's entry (layout-aligned)
// so only the region is judged. A finding whose regions cannot be extracted or run stays
// kNotChecked, with the reason in evidence["equivalence_error"]. Fails only when a full model
// cannot be run on its probe inputs.
Status filter_equivalent(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const std::vector<Tensor>& source_inputs,
                         const std::vector<Tensor>& target_inputs, const EquivalenceOptions& options = {});

// One finding; fails where filter_equivalent would leave it kNotChecked.
Result<Equivalence> check_equivalence(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                      const Finding& finding, const std::vector<Tensor>& source_inputs,
                                      const std::vector<Tensor>& target_inputs, const EquivalenceOptions& options = {});

}  // namespace fetafix::localize
