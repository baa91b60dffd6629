// Typed access to node attributes. Getters fail with a message naming the node and attribute;
// setters keep the attribute order stable (replace in place when present, append otherwise).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::model {

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, std::string_view name);
int attribute_index(const onnx::NodeProto& node, std::string_view name);  // -1 when absent

Result<int64_t> get_int(const onnx::NodeProto& node, std::string_view name);
Result<float> get_float(const onnx::NodeProto& node, std::string_view name);
Result<std::string> get_string(const onnx::NodeProto& node, std::string_view name);
Result<std::vector<int64_t>> get_ints(const onnx::NodeProto& node, std::string_view name);
Result<std::vector<float>> get_floats(const onnx::NodeProto& node, std::string_view name);
Result<Tensor> get_tensor(const onnx::NodeProto& node, std::string_view name);

// The attribute's value, or `fallback` when it is absent (ONNX defaults); an attribute of
// another type is still an error.
Result<int64_t> get_int_or(const onnx::NodeProto& node, std::string_view name, int64_t fallback);
Result<float> get_float_or(const onnx::NodeProto& node, std::string_view name, float fallback);
Result<std::string> get_string_or(const onnx::NodeProto& node, std::string_view name, std::string fallback);

// Replaces the attribute named attr.name() in place, or appends it.
void set_attribute(onnx::NodeProto& node, const onnx::AttributeProto& attr);
void set_int(onnx::NodeProto& node, const std::string& name, int64_t v);
void set_float(onnx::NodeProto& node, const std::string& name, float v);
void set_string(onnx::NodeProto& node, const std::string& name, const std::string& v);
void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& v);
void set_floats(onnx::NodeProto& node, const std::string& name, const std::vector<float>& v);
void set_tensor(onnx::NodeProto& node, const std::string& name, const Tensor& v);
// False when there was no such attribute.
bool remove_attribute(onnx::NodeProto& node, std::string_view name);

std::string_view attribute_type_name(onnx::AttributeProto::AttributeType type);  // "INT", "FLOATS", ...

}  // namespace fetafix::model
