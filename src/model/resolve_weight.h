// A weight as the node that consumes it sees it: the stored tensor (initializer or Constant)
// followed through Identity, Cast, Transpose and DequantizeLinear producers. The checks
// compare weights this way and the repairs read the Source's values this way.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "model/graph.h"

namespace fetafix::model {

struct ResolvedWeight {
  std::vector<float> values;
  std::vector<int64_t> shape;
  std::string stored_name;               // the initializer / Constant output holding the data
  DType stored_dtype = DType::kUndefined;
  std::vector<std::string> chain;        // op types followed, nearest the consumer first
  bool dequantized = false;
};

// nullopt when `value` is not computed from weights alone through those ops (an activation).
Result<std::optional<ResolvedWeight>> resolve_weight(const onnx::ModelProto& model, const GraphView& view,
                                                     const std::string& value);

}  // namespace fetafix::model
