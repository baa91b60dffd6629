// Which opset a model is written against.
#pragma once

#include <cstdint>

#include <onnx/onnx_pb.h>

namespace fetafix::model {

// The version of the default ("" / "ai.onnx") opset the model imports; 0 when it declares none.
int64_t default_opset(const onnx::ModelProto& model);

}  // namespace fetafix::model
