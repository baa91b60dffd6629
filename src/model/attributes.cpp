#include "model/attributes.h"

#include "model/weights.h"

namespace fetafix::model {

namespace {

using AttrType = onnx::AttributeProto::AttributeType;

std::string node_label(const onnx::NodeProto& node) {
  return node.name().empty() ? "unnamed " + node.op_type() + " node" : "node '" + node.name() + "'";
}

// Very old exporters leave `type` unset; infer it from the field that is filled.
AttrType effective_type(const onnx::AttributeProto& a) {
  if (a.type() != onnx::AttributeProto::UNDEFINED) return a.type();
  if (a.has_f()) return onnx::AttributeProto::FLOAT;
  if (a.has_i()) return onnx::AttributeProto::INT;
  if (a.has_s()) return onnx::AttributeProto::STRING;
  if (a.has_t()) return onnx::AttributeProto::TENSOR;
  if (a.has_g()) return onnx::AttributeProto::GRAPH;
  if (a.floats_size()) return onnx::AttributeProto::FLOATS;
  if (a.ints_size()) return onnx::AttributeProto::INTS;
  if (a.strings_size()) return onnx::AttributeProto::STRINGS;
  if (a.tensors_size()) return onnx::AttributeProto::TENSORS;
  if (a.graphs_size()) return onnx::AttributeProto::GRAPHS;
  return onnx::AttributeProto::UNDEFINED;
}

Result<const onnx::AttributeProto*> typed(const onnx::NodeProto& node, std::string_view name, AttrType want) {
  const auto* a = find_attribute(node, name);
  if (!a) return make_error("{}: no attribute '{}'", node_label(node), name);
  if (effective_type(*a) != want)
    return make_error("{}: attribute '{}' is {}, not {}", node_label(node), name,
                      attribute_type_name(effective_type(*a)), attribute_type_name(want));
  return a;
}

onnx::AttributeProto named(const std::string& name, AttrType type) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(type);
  return a;
}

}  // namespace

std::string_view attribute_type_name(onnx::AttributeProto::AttributeType type) {
  switch (type) {
    case onnx::AttributeProto::FLOAT: return "FLOAT";
    case onnx::AttributeProto::INT: return "INT";
    case onnx::AttributeProto::STRING: return "STRING";
    case onnx::AttributeProto::TENSOR: return "TENSOR";
    case onnx::AttributeProto::GRAPH: return "GRAPH";
    case onnx::AttributeProto::SPARSE_TENSOR: return "SPARSE_TENSOR";
    case onnx::AttributeProto::TYPE_PROTO: return "TYPE_PROTO";
    case onnx::AttributeProto::FLOATS: return "FLOATS";
    case onnx::AttributeProto::INTS: return "INTS";
    case onnx::AttributeProto::STRINGS: return "STRINGS";
    case onnx::AttributeProto::TENSORS: return "TENSORS";
    case onnx::AttributeProto::GRAPHS: return "GRAPHS";
    case onnx::AttributeProto::SPARSE_TENSORS: return "SPARSE_TENSORS";
    case onnx::AttributeProto::TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "UNDEFINED";
  }
}

int attribute_index(const onnx::NodeProto& node, std::string_view name) {
  for (int i = 0; i < node.attribute_size(); ++i)
    if (node.attribute(i).name() == name) return i;
  return -1;
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, std::string_view name) {
  int i = attribute_index(node, name);
  return i < 0 ? nullptr : &node.attribute(i);
}

Result<int64_t> get_int(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::INT));
  return a->i();
}
Result<float> get_float(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::FLOAT));
  return a->f();
}
Result<std::string> get_string(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::STRING));
  return a->s();
}
Result<std::vector<int64_t>> get_ints(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::INTS));
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}
Result<std::vector<float>> get_floats(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::FLOATS));
  return std::vector<float>(a->floats().begin(), a->floats().end());
}
Result<Tensor> get_tensor(const onnx::NodeProto& node, std::string_view name) {
  FETAFIX_ASSIGN_OR_RETURN(auto a, typed(node, name, onnx::AttributeProto::TENSOR));
  auto t = tensor_from_proto(a->t());
  if (!t.ok()) return make_error("{}: attribute '{}': {}", node_label(node), name, t.error().message);
  return t;
}

Result<int64_t> get_int_or(const onnx::NodeProto& node, std::string_view name, int64_t fallback) {
  return find_attribute(node, name) ? get_int(node, name) : Result<int64_t>(fallback);
}
Result<float> get_float_or(const onnx::NodeProto& node, std::string_view name, float fallback) {
  return find_attribute(node, name) ? get_float(node, name) : Result<float>(fallback);
}
Result<std::string> get_string_or(const onnx::NodeProto& node, std::string_view name, std::string fallback) {
  return find_attribute(node, name) ? get_string(node, name) : Result<std::string>(std::move(fallback));
}

void set_attribute(onnx::NodeProto& node, const onnx::AttributeProto& attr) {
  int i = attribute_index(node, attr.name());
  if (i >= 0) *node.mutable_attribute(i) = attr;
  else *node.add_attribute() = attr;
}

void set_int(onnx::NodeProto& node, const std::string& name, int64_t v) {
  auto a = named(name, onnx::AttributeProto::INT);
  a.set_i(v);
  set_attribute(node, a);
}
void set_float(onnx::NodeProto& node, const std::string& name, float v) {
  auto a = named(name, onnx::AttributeProto::FLOAT);
  a.set_f(v);
  set_attribute(node, a);
}
void set_string(onnx::NodeProto& node, const std::string& name, const std::string& v) {
  auto a = named(name, onnx::AttributeProto::STRING);
  a.set_s(v);
  set_attribute(node, a);
}
void set_ints(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& v) {
  auto a = named(name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
  set_attribute(node, a);
}
void set_floats(onnx::NodeProto& node, const std::string& name, const std::vector<float>& v) {
  auto a = named(name, onnx::AttributeProto::FLOATS);
  for (float x : v) a.add_floats(x);
  set_attribute(node, a);
}
void set_tensor(onnx::NodeProto& node, const std::string& name, const Tensor& v) {
  auto a = named(name, onnx::AttributeProto::TENSOR);
  *a.mutable_t() = tensor_to_proto(v, "");
  set_attribute(node, a);
}

bool remove_attribute(onnx::NodeProto& node, std::string_view name) {
  int i = attribute_index(node, name);
  if (i < 0) return false;
  node.mutable_attribute()->DeleteSubrange(i, 1);
  return true;
}

}  // namespace fetafix::model
