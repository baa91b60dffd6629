#include "model/weights.h"

#include <cstring>

#include "model/builder.h"

namespace fetafix::model {

namespace {

std::string tensor_label(const onnx::TensorProto& t) {
  return t.name().empty() ? std::string("unnamed tensor") : "tensor '" + t.name() + "'";
}

bool supported(DType t) { return t != DType::kUndefined && dtype_size(t) != 0; }

// Copies `count` typed values into `out`, narrowing each to the element type's width.
template <class Elem, class Field>
void copy_narrowed(const Field& field, Tensor& out) {
  Elem* dst = out.data<Elem>();
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<Elem>(field.Get(i));
}

bool is_constant_node(const onnx::NodeProto& node) {
  return node.op_type() == "Constant" && node.domain().empty() && node.output_size() == 1;
}

// The attribute holding a Constant's value, or -1.
int constant_value_attribute(const onnx::NodeProto& node) {
  for (int i = 0; i < node.attribute_size(); ++i) {
    const auto& n = node.attribute(i).name();
    if (n == "value" || n == "value_float" || n == "value_floats" || n == "value_int" || n == "value_ints" ||
        n == "sparse_value" || n == "value_string" || n == "value_strings")
      return i;
  }
  return -1;
}

Result<Tensor> constant_value(const onnx::NodeProto& node) {
  const std::string label = "Constant '" + node.output(0) + "'";
  int i = constant_value_attribute(node);
  if (i < 0) return make_error("{}: has no value attribute", label);
  const auto& a = node.attribute(i);
  if (a.name() == "value") {
    auto t = tensor_from_proto(a.t());
    if (!t.ok()) return make_error("{}: {}", label, t.error().message);
    return t;
  }
  if (a.name() == "value_float") {
    Tensor t(DType::kFloat32, {});
    *t.data<float>() = a.f();
    return t;
  }
  if (a.name() == "value_int") {
    Tensor t(DType::kInt64, {});
    *t.data<int64_t>() = a.i();
    return t;
  }
  if (a.name() == "value_floats") {
    Tensor t(DType::kFloat32, {a.floats_size()});
    if (a.floats_size()) std::memcpy(t.bytes.data(), a.floats().data(), t.bytes.size());
    return t;
  }
  if (a.name() == "value_ints") {
    Tensor t(DType::kInt64, {a.ints_size()});
    if (a.ints_size()) std::memcpy(t.bytes.data(), a.ints().data(), t.bytes.size());
    return t;
  }
  return make_error("{}: attribute '{}' is not supported (sparse and string constants are not weights here)", label,
                    a.name());
}

}  // namespace

Status check_tensor(const Tensor& tensor, const std::string& label) {
  if (!supported(tensor.dtype))
    return make_error("{}: unsupported dtype {}", label, static_cast<int>(tensor.dtype));
  for (int64_t d : tensor.shape)
    if (d < 0) return make_error("{}: negative dim in shape {}", label, shape_to_string(tensor.shape));
  const uint64_t want = static_cast<uint64_t>(tensor.numel()) * dtype_size(tensor.dtype);
  if (tensor.bytes.size() != want)
    return make_error("{}: {} bytes for {}{} (expected {})", label, tensor.bytes.size(), dtype_name(tensor.dtype),
                      shape_to_string(tensor.shape), want);
  return {};
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& proto) {
  const std::string label = tensor_label(proto);
  if (proto.data_location() == onnx::TensorProto::EXTERNAL)
    return make_error("{}: external data was not loaded", label);
  const DType dtype = static_cast<DType>(proto.data_type());
  if (!supported(dtype)) return make_error("{}: unsupported data type {}", label, proto.data_type());
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape)
    if (d < 0) return make_error("{}: negative dim in shape {}", label, shape_to_string(shape));
  Tensor out(dtype, shape);
  const int64_t n = out.numel();

  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != out.bytes.size())
      return make_error("{}: raw_data has {} bytes, {}{} needs {}", label, proto.raw_data().size(),
                        dtype_name(dtype), shape_to_string(shape), out.bytes.size());
    if (!out.bytes.empty()) std::memcpy(out.bytes.data(), proto.raw_data().data(), out.bytes.size());
    return out;
  }

  auto check_count = [&](int count, const char* field) -> Status {
    if (count != n)
      return make_error("{}: {} has {} values, shape {} needs {}", label, field, count, shape_to_string(shape), n);
    return {};
  };
  switch (dtype) {
    case DType::kFloat32:
      FETAFIX_TRY_STATUS(check_count(proto.float_data_size(), "float_data"));
      copy_narrowed<float>(proto.float_data(), out);
      break;
    case DType::kFloat64:
      FETAFIX_TRY_STATUS(check_count(proto.double_data_size(), "double_data"));
      copy_narrowed<double>(proto.double_data(), out);
      break;
    case DType::kInt64:
      FETAFIX_TRY_STATUS(check_count(proto.int64_data_size(), "int64_data"));
      copy_narrowed<int64_t>(proto.int64_data(), out);
      break;
    case DType::kUInt32:
      FETAFIX_TRY_STATUS(check_count(proto.uint64_data_size(), "uint64_data"));
      copy_narrowed<uint32_t>(proto.uint64_data(), out);
      break;
    case DType::kUInt64:
      FETAFIX_TRY_STATUS(check_count(proto.uint64_data_size(), "uint64_data"));
      copy_narrowed<uint64_t>(proto.uint64_data(), out);
      break;
    case DType::kInt32:
      FETAFIX_TRY_STATUS(check_count(proto.int32_data_size(), "int32_data"));
      copy_narrowed<int32_t>(proto.int32_data(), out);
      break;
    case DType::kInt16:
      FETAFIX_TRY_STATUS(check_count(proto.int32_data_size(), "int32_data"));
      copy_narrowed<int16_t>(proto.int32_data(), out);
      break;
    case DType::kInt8:
      FETAFIX_TRY_STATUS(check_count(proto.int32_data_size(), "int32_data"));
      copy_narrowed<int8_t>(proto.int32_data(), out);
      break;
    case DType::kUInt8:
    case DType::kBool:
      FETAFIX_TRY_STATUS(check_count(proto.int32_data_size(), "int32_data"));
      copy_narrowed<uint8_t>(proto.int32_data(), out);
      break;
    case DType::kUInt16:
    case DType::kFloat16:   // the 16 bits of each half are stored in int32_data
    case DType::kBFloat16:
      FETAFIX_TRY_STATUS(check_count(proto.int32_data_size(), "int32_data"));
      copy_narrowed<uint16_t>(proto.int32_data(), out);
      break;
    case DType::kUndefined:
      return make_error("{}: undefined data type", label);
  }
  return out;
}

onnx::TensorProto tensor_to_proto(const Tensor& tensor, const std::string& name) {
  return to_tensor_proto(name, tensor);
}

std::vector<WeightInfo> list_weights(const onnx::ModelProto& model) {
  std::vector<WeightInfo> out;
  const auto& g = model.graph();
  for (int i = 0; i < g.initializer_size(); ++i) {
    const auto& t = g.initializer(i);
    out.push_back({t.name(), WeightStorage::kInitializer, static_cast<size_t>(i), static_cast<DType>(t.data_type()),
                   {t.dims().begin(), t.dims().end()}});
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& node = g.node(i);
    if (!is_constant_node(node)) continue;
    WeightInfo w{node.output(0), WeightStorage::kConstantNode, static_cast<size_t>(i), DType::kUndefined, {}};
    int a = constant_value_attribute(node);
    if (a >= 0) {
      const auto& attr = node.attribute(a);
      if (attr.name() == "value") {
        w.dtype = static_cast<DType>(attr.t().data_type());
        w.shape.assign(attr.t().dims().begin(), attr.t().dims().end());
      } else if (attr.name() == "value_float") {
        w.dtype = DType::kFloat32;
      } else if (attr.name() == "value_int") {
        w.dtype = DType::kInt64;
      } else if (attr.name() == "value_floats") {
        w.dtype = DType::kFloat32;
        w.shape = {attr.floats_size()};
      } else if (attr.name() == "value_ints") {
        w.dtype = DType::kInt64;
        w.shape = {attr.ints_size()};
      }
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::optional<WeightInfo> find_weight(const onnx::ModelProto& model, const std::string& value) {
  if (value.empty()) return std::nullopt;
  for (auto& w : list_weights(model))
    if (w.value == value) return w;
  return std::nullopt;
}

bool is_weight(const onnx::ModelProto& model, const std::string& value) {
  if (value.empty()) return false;
  const auto& g = model.graph();
  for (const auto& t : g.initializer())
    if (t.name() == value) return true;
  for (const auto& node : g.node())
    if (is_constant_node(node) && node.output(0) == value) return true;
  return false;
}

Result<Tensor> get_weight(const onnx::ModelProto& model, const std::string& value) {
  auto w = find_weight(model, value);
  if (!w) return make_error("no weight named '{}' (neither an initializer nor a Constant output)", value);
  const auto& g = model.graph();
  if (w->storage == WeightStorage::kInitializer) return tensor_from_proto(g.initializer(static_cast<int>(w->index)));
  return constant_value(g.node(static_cast<int>(w->index)));
}

Status set_weight(onnx::ModelProto& model, const std::string& value, const Tensor& tensor) {
  auto w = find_weight(model, value);
  if (!w) return make_error("no weight named '{}' (neither an initializer nor a Constant output)", value);
  FETAFIX_TRY_STATUS(check_tensor(tensor, "weight '" + value + "'"));
  auto& g = *model.mutable_graph();
  if (w->storage == WeightStorage::kInitializer) {
    auto& old = *g.mutable_initializer(static_cast<int>(w->index));
    onnx::TensorProto fresh = tensor_to_proto(tensor, old.name());
    if (old.has_doc_string()) fresh.set_doc_string(old.doc_string());
    old = std::move(fresh);
    return {};
  }
  auto& node = *g.mutable_node(static_cast<int>(w->index));
  int a = constant_value_attribute(node);
  if (a < 0) return make_error("Constant '{}': has no value attribute", value);
  auto& attr = *node.mutable_attribute(a);
  const bool rank0 = tensor.shape.empty(), rank1 = tensor.shape.size() == 1;
  const std::string& form = attr.name();
  if (form == "value_float" && rank0 && tensor.dtype == DType::kFloat32) {
    attr.set_f(*tensor.data<float>());
  } else if (form == "value_int" && rank0 && tensor.dtype == DType::kInt64) {
    attr.set_i(*tensor.data<int64_t>());
  } else if (form == "value_floats" && rank1 && tensor.dtype == DType::kFloat32) {
    attr.clear_floats();
    for (float v : tensor.span<float>()) attr.add_floats(v);
  } else if (form == "value_ints" && rank1 && tensor.dtype == DType::kInt64) {
    attr.clear_ints();
    for (int64_t v : tensor.span<int64_t>()) attr.add_ints(v);
  } else {
    std::string tensor_name = form == "value" ? attr.t().name() : std::string();
    onnx::AttributeProto fresh;
    fresh.set_name("value");
    fresh.set_type(onnx::AttributeProto::TENSOR);
    *fresh.mutable_t() = tensor_to_proto(tensor, tensor_name);
    if (form == "value" && attr.t().has_doc_string()) fresh.mutable_t()->set_doc_string(attr.t().doc_string());
    attr = std::move(fresh);
  }
  return {};
}

}  // namespace fetafix::model
