// check_model_structure and check_input_sizes (model/model.h): shapes and sizes are checked
// once at load, so analyses never meet a negative dim, an element count that overflows or a
// tensor whose data does not match its dims.
#include <algorithm>
#include <unordered_set>

#include "common/limits.h"
#include "common/tensor.h"
#include "model/graph.h"
#include "model/model.h"

namespace fetafix::model {
namespace {

// Product of dims, or an error when a dim is negative or the product leaves int64.
Result<int64_t> checked_numel(const google::protobuf::RepeatedField<int64_t>& dims, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return make_error("{} has a negative dim {}", what, d);
    if (__builtin_mul_overflow(n, d, &n)) return make_error("{} has more elements than fit in 64 bits", what);
  }
  return n;
}

// Values stored in the typed field the ONNX spec assigns to this data type; -1 for types
// whose typed storage is not counted here (strings, complex, 8-bit floats).
int64_t typed_value_count(const onnx::TensorProto& t) {
  using T = onnx::TensorProto;
  switch (t.data_type()) {
    case T::FLOAT: return t.float_data_size();
    case T::DOUBLE: return t.double_data_size();
    case T::INT64: return t.int64_data_size();
    case T::UINT32: case T::UINT64: return t.uint64_data_size();
    case T::INT32: case T::INT16: case T::INT8: case T::UINT16: case T::UINT8: case T::BOOL: case T::FLOAT16:
    case T::BFLOAT16:
      return t.int32_data_size();
    default: return -1;
  }
}

Status check_tensor(const onnx::TensorProto& t, const std::string& label) {
  const std::string what = fmt::format("{}: tensor '{}'", label, t.name());
  FETAFIX_ASSIGN_OR_RETURN(const int64_t numel, checked_numel(t.dims(), what));
  const size_t element = dtype_size(static_cast<DType>(t.data_type()));
  if (element == 0 || t.data_location() == onnx::TensorProto::EXTERNAL) return {};
  if (t.has_raw_data()) {
    if (numel > (int64_t{1} << 56)) return make_error("{} has {} elements, more than any file can hold", what, numel);
    const uint64_t expected = static_cast<uint64_t>(numel) * element;
    if (t.raw_data().size() != expected)
      return make_error("{} holds {} bytes but its dims {} need {}", what, t.raw_data().size(),
                        shape_to_string(std::vector<int64_t>(t.dims().begin(), t.dims().end())), expected);
    return {};
  }
  const int64_t stored = typed_value_count(t);
  if (stored >= 0 && stored != numel)
    return make_error("{} holds {} values but its dims {} need {}", what, stored,
                      shape_to_string(std::vector<int64_t>(t.dims().begin(), t.dims().end())), numel);
  return {};
}

Status check_declared_dims(const onnx::ValueInfoProto& vi, const std::string& label, const char* kind) {
  if (!vi.type().has_tensor_type() || !vi.type().tensor_type().has_shape()) return {};
  for (const auto& d : vi.type().tensor_type().shape().dim())
    if (d.has_dim_value() && d.dim_value() < -1)
      return make_error("{}: {} '{}' declares the dim {} (dims are >= 0; -1 means unknown)", label, kind, vi.name(),
                        d.dim_value());
  return {};
}

// Every tensor and declared shape of `graph` and its subgraphs (If/Loop/Scan bodies).
Status check_graph(const onnx::GraphProto& graph, const std::string& label) {
  // Protobuf refuses messages nested deeper than 100 levels, so this recursion is bounded.
  for (const auto& vi : graph.input()) FETAFIX_TRY_STATUS(check_declared_dims(vi, label, "input"));
  for (const auto& vi : graph.output()) FETAFIX_TRY_STATUS(check_declared_dims(vi, label, "output"));
  for (const auto& vi : graph.value_info()) FETAFIX_TRY_STATUS(check_declared_dims(vi, label, "value"));
  for (const auto& t : graph.initializer()) FETAFIX_TRY_STATUS(check_tensor(t, label));
  for (const auto& s : graph.sparse_initializer()) {
    FETAFIX_TRY_STATUS(check_tensor(s.values(), label));
    FETAFIX_TRY_STATUS(check_tensor(s.indices(), label));
  }
  for (const auto& node : graph.node())
    for (const auto& attr : node.attribute()) {
      if (attr.has_t()) FETAFIX_TRY_STATUS(check_tensor(attr.t(), label));
      for (const auto& t : attr.tensors()) FETAFIX_TRY_STATUS(check_tensor(t, label));
      if (attr.has_g()) FETAFIX_TRY_STATUS(check_graph(attr.g(), label));
      for (const auto& g : attr.graphs()) FETAFIX_TRY_STATUS(check_graph(g, label));
    }
  return {};
}

}  // namespace

Status check_model_structure(const onnx::ModelProto& model, const std::string& label) {
  FETAFIX_TRY_STATUS(check_graph(model.graph(), label));
  auto view = GraphView::build(model.graph());
  if (!view.ok()) return make_error("{}: not a valid model: {}", label, view.error().message);
  return {};
}

Status check_input_sizes(const onnx::ModelProto& model, const std::string& label, uint64_t max_tensor_bytes) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  for (const auto& in : model.graph().input()) {
    if (initializers.count(in.name()) || !in.type().has_tensor_type()) continue;
    const auto& type = in.type().tensor_type();
    std::vector<int64_t> dims;
    // In long double: the product of a few absurd dims is far past 64 bits, and only its size matters.
    long double bytes = static_cast<long double>(std::max<size_t>(dtype_size(static_cast<DType>(type.elem_type())), 1));
    for (const auto& d : type.shape().dim()) {
      dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      if (d.has_dim_value() && d.dim_value() > 0) bytes *= static_cast<long double>(d.dim_value());
    }
    if (bytes > static_cast<long double>(max_tensor_bytes)) {
      const std::string size = bytes >= 0x1p64L ? std::string("more than 16 EiB")
                                                : bytes_text(static_cast<uint64_t>(bytes));
      return make_error("{}: input '{}' declares the shape {}: {}{}, over the tensor limit of {} "
                        "(--max-tensor-bytes or {})",
                        label, in.name(), shape_to_string(dims), std::count(dims.begin(), dims.end(), -1) ? "at least " : "",
                        size, bytes_text(max_tensor_bytes), kMaxTensorBytesEnv);
    }
  }
  return {};
}

}  // namespace fetafix::model
