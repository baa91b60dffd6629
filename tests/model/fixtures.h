// Small models for the model-layer tests, built in code with deterministic weights.
#pragma once

#include <string>

#include <onnx/onnx_pb.h>

#include "model/builder.h"

namespace fetafix::model::fixtures {

// x[1,3,8,8] -> conv1 (initializer weights) -> relu1 -+-> conv2 (Constant weights) -> relu2 -+
//                                                     |                                     |-> probe (Sigmoid, unused)
//                                                     +-------------------------------------+-> add -> mul (Constant
// value_float 0.5) -> unnamed GlobalAveragePool -> unnamed Flatten -> y[1,4]. Outputs: y and add's output "a".
// Initializer "unused_w" is consumed by nothing.
// Node order: conv1 0, relu1 1, w2_const 2, conv2 3, relu2 4, probe 5, add 6, scale_const 7, mul 8,
//             GlobalAveragePool_9, Flatten_10.
inline onnx::ModelProto residual_model() {
  GraphBuilder b("residual", 13);
  b.input("x", DType::kFloat32, {1, 3, 8, 8});
  b.initializer("w1", random_tensor({4, 3, 3, 3}, 1, 0.2f));
  b.initializer("b1", random_tensor({4}, 2, 0.1f));
  b.initializer("unused_w", random_tensor({2, 2}, 3));
  b.node("Conv", "conv1", {"x", "w1", "b1"}, {Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("kernel_shape", {3, 3})}, "c1");
  b.node("Relu", "relu1", {"c1"}, {}, "r1");
  b.constant("w2", random_tensor({4, 4, 3, 3}, 4, 0.2f));
  b.node("Conv", "conv2", {"r1", "w2"}, {Attr::ints("pads", {1, 1, 1, 1})}, "c2");
  b.node("Relu", "relu2", {"c2"}, {}, "r2");
  b.node("Sigmoid", "probe", {"r2"}, {}, "probe_out");
  b.node("Add", "add", {"r1", "r2"}, {}, "a");
  b.node("Constant", "scale_const", {}, {Attr::f("value_float", 0.5f)}, "scale");
  b.node("Mul", "mul", {"a", "scale"}, {}, "m");
  b.node("GlobalAveragePool", "", {"m"}, {}, "g");
  b.node("Flatten", "", {"g"}, {}, "y");
  b.output("y", DType::kFloat32, {1, 4});
  b.output("a", DType::kFloat32, {1, 4, 8, 8});
  return b.build();
}

}  // namespace fetafix::model::fixtures
