// Weights read and written the same way whether a model stores them as graph initializers
// or as Constant nodes (how paddle2onnx and others store them). Only the top-level graph's
// weights are weights here; subgraph constants are left alone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::model {

// Decodes raw_data or the typed fields (float_data, int32_data incl. float16/bfloat16/bool/
// 8- and 16-bit ints, int64_data, double_data, uint64_data). Errors name the tensor: external
// data not loaded, string/complex/float8/int4 types, a value count that does not match dims.
Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto);
// Always raw_data (the compact, exact form).
onnx::TensorProto tensor_to_proto(const Tensor& tensor, const std::string& name);
// A tensor's dtype is one Tensor can hold and its byte count matches its shape.
Status check_tensor(const Tensor& tensor, const std::string& label);

enum class WeightStorage { kInitializer, kConstantNode };

struct WeightInfo {
  std::string value;              // the value name nodes consume
  WeightStorage storage = WeightStorage::kInitializer;
  size_t index = 0;               // position in graph.initializer or graph.node
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
};

// Initializers in file order, then Constant-node outputs in node order.
std::vector<WeightInfo> list_weights(const onnx::ModelProto& model);
std::optional<WeightInfo> find_weight(const onnx::ModelProto& model, const std::string& value);
bool is_weight(const onnx::ModelProto& model, const std::string& value);

Result<Tensor> get_weight(const onnx::ModelProto& model, const std::string& value);
// Replaces the weight's contents where it is stored: an initializer stays an initializer (name
// and doc_string kept, data as raw_data); a Constant keeps its attribute form when the new value
// still fits it (value_float: float scalar, value_floats: 1-D float, value_int/value_ints: int64),
// otherwise its attribute becomes a `value` tensor at the same position. On error nothing changes.
Status set_weight(onnx::ModelProto& model, const std::string& value, const Tensor& tensor);

}  // namespace fetafix::model
