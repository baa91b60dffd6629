// Small models with known behaviour, shared by the compare and CLI tests.
#pragma once

#include <onnx/onnx_pb.h>

namespace fetafix::testing {

// [N,3,32,32] float -> GlobalAveragePool -> [N,3]: the top-1 label is the image's dominant
// colour channel (0 = R, 1 = G, 2 = B). With swap_rb the Target first reverses the channel
// axis (a Gather), the kind of RGB/BGR mix-up converters and preprocessing make: red and
// blue images then disagree, green ones agree.
onnx::ModelProto dominant_channel_model(bool swap_rb);

// InceptionV3-style per-channel normalisation on an NHWC input [1,8,8,3]: for each channel c,
// Gather(c, gather_axis) -> Unsqueeze(3) -> Mul; Concat(axis 3); Transpose [0,3,1,2]; Conv.
// gather_axis 3 is right (C of NHWC); 2 is the stale axis a converter leaves (W).
onnx::ModelProto channel_normalising_model(int64_t gather_axis);

}  // namespace fetafix::testing
