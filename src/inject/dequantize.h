// QDQ model -> float model, as the assets README describes: each weight DequantizeLinear
// becomes a float initializer, each activation QuantizeLinear becomes the Clip that its
// integer range implies (its DequantizeLinear an Identity), and the DequantizeLinear that
// turns a uint8 graph input into float stays. Value names are kept, so the float model can be
// matched and compared with the QDQ one node for node.
#pragma once

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::inject {

struct DequantizeReport {
  int weights_folded = 0;      // weight DequantizeLinear nodes turned into float initializers
  int activations_clipped = 0; // QuantizeLinear nodes turned into Clip
  int dequantize_kept = 0;     // DequantizeLinear of graph inputs, left as they are
};

Result<onnx::ModelProto> dequantize_qdq(const onnx::ModelProto& qdq, DequantizeReport* report = nullptr);

}  // namespace fetafix::inject
