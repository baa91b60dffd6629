#include "model/builder.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace fetafix {

uint64_t Rng::next_u64() {  // splitmix64
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
float Rng::uniform(float lo, float hi) { return lo + static_cast<float>(uniform()) * (hi - lo); }
float Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

Tensor random_tensor(std::vector<int64_t> shape, uint64_t seed, float scale) {
  Tensor t(DType::kFloat32, std::move(shape));
  Rng rng(seed);
  for (float& v : t.span<float>()) v = rng.normal() * scale;
  return t;
}

Tensor uniform_tensor(std::vector<int64_t> shape, uint64_t seed, float lo, float hi) {
  Tensor t(DType::kFloat32, std::move(shape));
  Rng rng(seed);
  for (float& v : t.span<float>()) v = rng.uniform(lo, hi);
  return t;
}

Tensor float_tensor(std::vector<int64_t> shape, std::vector<float> values) {
  Tensor t(DType::kFloat32, std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel()) throw std::invalid_argument("float_tensor: size mismatch");
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

Tensor int64_tensor(std::vector<int64_t> shape, std::vector<int64_t> values) {
  Tensor t(DType::kInt64, std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel()) throw std::invalid_argument("int64_tensor: size mismatch");
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

onnx::TensorProto to_tensor_proto(const std::string& name, const Tensor& t) {
  onnx::TensorProto p;
  p.set_name(name);
  p.set_data_type(static_cast<int32_t>(t.dtype));
  for (int64_t d : t.shape) p.add_dims(d);
  p.set_raw_data(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return p;
}

Attr Attr::i(const std::string& name, int64_t v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::INT); a.proto.set_i(v); return a;
}
Attr Attr::f(const std::string& name, float v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::FLOAT); a.proto.set_f(v); return a;
}
Attr Attr::s(const std::string& name, const std::string& v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::STRING); a.proto.set_s(v); return a;
}
Attr Attr::ints(const std::string& name, std::vector<int64_t> v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.proto.add_ints(x);
  return a;
}
Attr Attr::floats(const std::string& name, std::vector<float> v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::FLOATS);
  for (float x : v) a.proto.add_floats(x);
  return a;
}
Attr Attr::tensor(const std::string& name, const Tensor& v) {
  Attr a; a.proto.set_name(name); a.proto.set_type(onnx::AttributeProto::TENSOR);
  *a.proto.mutable_t() = to_tensor_proto("", v);
  return a;
}

GraphBuilder::GraphBuilder(std::string graph_name, int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("fetafix");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name(std::move(graph_name));
}

static void fill_value_info(onnx::ValueInfoProto* vi, const std::string& name, DType type,
                            const std::vector<int64_t>& shape) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(type));
  auto* sh = tt->mutable_shape();
  for (int64_t d : shape) {
    auto* dim = sh->add_dim();
    if (d < 0) dim->set_dim_param("N"); else dim->set_dim_value(d);
  }
}

std::string GraphBuilder::input(const std::string& name, DType type, std::vector<int64_t> shape) {
  fill_value_info(graph().add_input(), name, type, shape);
  return name;
}

void GraphBuilder::output(const std::string& name, DType type, std::vector<int64_t> shape) {
  fill_value_info(graph().add_output(), name, type, shape);
}

std::string GraphBuilder::initializer(const std::string& name, const Tensor& value) {
  *graph().add_initializer() = to_tensor_proto(name, value);
  return name;
}

std::string GraphBuilder::constant(const std::string& name, const Tensor& value) {
  node("Constant", name + "_const", {}, {Attr::tensor("value", value)}, name);
  return name;
}

std::string GraphBuilder::node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                               std::vector<Attr> attrs, std::string out) {
  if (out.empty()) out = name + "_out";
  node_multi(op, name, std::move(inputs), {out}, std::move(attrs));
  return out;
}

void GraphBuilder::node_multi(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                              std::vector<std::string> outputs, std::vector<Attr> attrs) {
  auto* n = graph().add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& i : inputs) n->add_input(i);
  for (auto& o : outputs) n->add_output(o);
  for (auto& a : attrs) *n->add_attribute() = a.proto;
}

}  // namespace fetafix
