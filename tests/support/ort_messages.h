// What ONNX Runtime prints on stderr while it loads a model with its logging at WARNING, the level
// a user's own loader runs at (fetafix's sessions log only fatal errors). The repaired-model tests
// use it to show a model loads with no warning at all.
#pragma once

#include <string>

#include <onnx/onnx_pb.h>

namespace fetafix::testing {

// Creates (and destroys) one ONNX Runtime session from `model` with the session's log severity at
// WARNING; returns everything written to stderr meanwhile, and "load failed: ..." when ONNX Runtime
// refused the model.
std::string ort_load_messages(const onnx::ModelProto& model);

}  // namespace fetafix::testing
