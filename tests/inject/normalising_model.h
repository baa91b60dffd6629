// A small NCHW classifier that starts with torchvision InceptionV3's in-graph input
// normalisation (per channel Gather(c, axis 1) -> Unsqueeze(1) -> Mul -> Add, Concat(axis 1)):
// the graph tss:gather-axis needs. Padded convs, so it still runs when a fault collapses a
// spatial axis to 3.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "model/builder.h"

namespace fetafix::inject::testing {

inline onnx::ModelProto normalising_cnn(int64_t size = 24) {
  GraphBuilder g("normalising_cnn", 13);
  const std::string x = g.input("input", DType::kFloat32, {-1, 3, size, size});
  g.initializer("axes", int64_tensor({1}, {1}));
  std::vector<std::string> channels;
  for (int c = 0; c < 3; ++c) {
    const std::string id = std::to_string(c);
    g.initializer("index_" + id, int64_tensor({}, {c}));
    g.initializer("scale_" + id, float_tensor({}, {0.45f + 0.01f * c}));
    g.initializer("shift_" + id, float_tensor({}, {-0.05f * c}));
    std::string y = g.node("Gather", "gather_" + id, {x, "index_" + id}, {Attr::i("axis", 1)});
    y = g.node("Unsqueeze", "unsqueeze_" + id, {y, "axes"});
    y = g.node("Mul", "mul_" + id, {y, "scale_" + id});
    channels.push_back(g.node("Add", "add_" + id, {y, "shift_" + id}));
  }
  std::string y = g.node("Concat", "concat", channels, {Attr::i("axis", 1)});
  g.initializer("conv1_w", random_tensor({16, 3, 3, 3}, 1, std::sqrt(2.0f / 27)));
  g.initializer("conv1_b", random_tensor({16}, 2, 0.1f));
  y = g.node("Conv", "conv1", {y, "conv1_w", "conv1_b"},
             {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1}), Attr::ints("strides", {2, 2})});
  y = g.node("Relu", "relu1", {y});
  g.initializer("conv2_w", random_tensor({32, 16, 3, 3}, 3, std::sqrt(2.0f / 144)));
  y = g.node("Conv", "conv2", {y, "conv2_w"}, {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})});
  y = g.node("Relu", "relu2", {y});
  y = g.node("GlobalAveragePool", "pool", {y});
  y = g.node("Flatten", "flatten", {y}, {Attr::i("axis", 1)});
  g.initializer("fc_w", random_tensor({10, 32}, 4, 0.5f));
  g.initializer("fc_b", random_tensor({10}, 5, 0.1f));
  g.node("Gemm", "fc", {y, "fc_w", "fc_b"}, {Attr::i("transB", 1)}, "scores");
  g.output("scores", DType::kFloat32, {-1, 10});
  return g.build();
}

}  // namespace fetafix::inject::testing
