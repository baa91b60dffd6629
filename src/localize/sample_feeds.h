// The detection samples as localize's model runs need them (issue 11: any model): each model's
// inputs for a chosen set of samples, stacked [n, ...] input by input, fed the way compare
// feeds them (data/samples.h: an image through the side's preset, .npz/.npy/.wav arrays,
// constants). The value-shape probe, the equivalence filter, the activation analysis and the
// local replay all run on these. Internal to src/localize.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "compare/compare.h"
#include "data/samples.h"
#include "localize/localize.h"

namespace fetafix::localize {

struct SampleInputs {
  std::vector<Tensor> source, target;  // one [n, ...] tensor per model input, in input order
};

// A model's declared inputs (graph inputs that are not initializers), as the feeder sees them.
std::vector<data::InputSlot> declared_inputs(const onnx::ModelProto& model);

// Both models' inputs for samples `chosen` (indices into the view's samples; not empty). An
// error when a sample cannot be decoded or fed, or when the samples do not stack into one batch
// (arrays of different shapes).
Result<SampleInputs> feed_samples(const compare::ModelSide& source, const compare::ModelSide& target,
                                  const DetectionView& view, const std::vector<size_t>& chosen);

// Rows `chosen` of `fed`, the inputs fed for samples `fed_indices` (both ascending, chosen a
// subset of fed_indices): what several runs on overlapping samples take from one decode.
SampleInputs rows_of(const SampleInputs& fed, const std::vector<size_t>& fed_indices,
                     const std::vector<size_t>& chosen);

// Whether the samples are images fed to a model with one input: what the label-based PP check,
// the flatten check's sample photo and the layer-local replay take.
bool single_image_input(const DetectionView& view, const onnx::ModelProto& source, const onnx::ModelProto& target);

}  // namespace fetafix::localize
