// Builds small ONNX models in code, with deterministic weights: the test fixtures,
// the demo models and (later) the evaluation corpus are made with it, never shipped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/tensor.h"

namespace fetafix {

// Deterministic pseudo-random numbers, identical on every platform (std:: distributions
// are implementation-defined, so they are not used for anything that must reproduce).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next_u64();
  double uniform();                 // [0, 1)
  float uniform(float lo, float hi);
  float normal();                   // Box-Muller, mean 0, sd 1
 private:
  uint64_t state_;
};

// Tensor of the given shape with N(0, scale^2) values from `seed`.
Tensor random_tensor(std::vector<int64_t> shape, uint64_t seed, float scale = 1.0f);
Tensor uniform_tensor(std::vector<int64_t> shape, uint64_t seed, float lo, float hi);
Tensor float_tensor(std::vector<int64_t> shape, std::vector<float> values);
Tensor int64_tensor(std::vector<int64_t> shape, std::vector<int64_t> values);

onnx::TensorProto to_tensor_proto(const std::string& name, const Tensor& t);

struct Attr {
  onnx::AttributeProto proto;
  static Attr i(const std::string& name, int64_t v);
  static Attr f(const std::string& name, float v);
  static Attr s(const std::string& name, const std::string& v);
  static Attr ints(const std::string& name, std::vector<int64_t> v);
  static Attr floats(const std::string& name, std::vector<float> v);
  static Attr tensor(const std::string& name, const Tensor& v);
};

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string graph_name = "graph", int64_t opset = 13);

  // A dim < 0 becomes the symbolic dimension "N" (a dynamic batch).
  std::string input(const std::string& name, DType type, std::vector<int64_t> shape);
  void output(const std::string& name, DType type, std::vector<int64_t> shape);
  std::string initializer(const std::string& name, const Tensor& value);
  // The same weight stored as a Constant node (how paddle2onnx and others store them).
  std::string constant(const std::string& name, const Tensor& value);
  // Adds a node with one output named `out` (or "<name>_out" when empty); returns it.
  std::string node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                   std::vector<Attr> attrs = {}, std::string out = "");
  // Adds a node with several outputs.
  void node_multi(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                  std::vector<std::string> outputs, std::vector<Attr> attrs = {});

  onnx::GraphProto& graph() { return *model_.mutable_graph(); }
  onnx::ModelProto build() const { return model_; }

 private:
  onnx::ModelProto model_;
};

}  // namespace fetafix
