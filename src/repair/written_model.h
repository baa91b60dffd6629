// The repaired model as `fetafix repair -o` writes it and the Python module returns it: the
// repaired Target without what nothing reads any more (the weights a repair bypassed, stale
// value_info), checked that ONNX Runtime loads it, serialized. `fetafix apply` runs the same
// cleanup after the patch, so it reproduces these bytes.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "model/cleanup.h"
#include "repair/driver.h"

namespace fetafix::repair {

struct WrittenModel {
  std::string bytes;                  // the serialized model
  model::CleanupReport removed;       // what the cleanup took out (empty without cleanup)
  std::vector<std::string> warnings;  // ONNX's checker (warnings only: every kept edit ran in ONNX Runtime)
};

// `original` is the Target as given (the checker compares against it); `label` names the model
// in errors. An error when ONNX Runtime refuses the model (internal: the loop ran every kept
// edit) or the model is over protobuf's 2 GB limit.
Result<WrittenModel> written_model(const RepairResult& result, const onnx::ModelProto& original,
                                   const std::string& label, bool cleanup = true);

}  // namespace fetafix::repair
