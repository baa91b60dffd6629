#include "support/models.h"

#include "model/builder.h"

namespace fetafix::testing {

onnx::ModelProto dominant_channel_model(bool swap_rb) {
  GraphBuilder g("dominant_channel", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 32, 32});
  if (swap_rb) {
    g.initializer("bgr_order", int64_tensor({3}, {2, 1, 0}));
    x = g.node("Gather", "swap_channels", {x, "bgr_order"}, {Attr::i("axis", 1)});
  }
  x = g.node("GlobalAveragePool", "pool", {x});
  g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)}, "scores");
  g.output("scores", DType::kFloat32, {-1, 3});
  return g.build();
}

onnx::ModelProto channel_normalising_model(int64_t gather_axis) {
  GraphBuilder g("normalise", 13);
  std::string x = g.input("image", DType::kFloat32, {1, 8, 8, 3});
  g.initializer("unsqueeze_axes", int64_tensor({1}, {3}));
  std::vector<std::string> branches;
  for (int c = 0; c < 3; ++c) {
    const std::string id = std::to_string(c);
    g.initializer("index_" + id, int64_tensor({}, {c}));
    g.initializer("scale_" + id, float_tensor({}, {0.5f + c}));
    std::string b = g.node("Gather", "gather_" + id, {x, "index_" + id}, {Attr::i("axis", gather_axis)});
    b = g.node("Unsqueeze", "unsqueeze_" + id, {b, "unsqueeze_axes"});
    branches.push_back(g.node("Mul", "scale_mul_" + id, {b, "scale_" + id}));
  }
  std::string y = g.node("Concat", "concat", branches, {Attr::i("axis", 3)});
  y = g.node("Transpose", "to_nchw", {y}, {Attr::ints("perm", {0, 3, 1, 2})});
  g.initializer("w", random_tensor({4, 3, 1, 1}, 12));
  g.node("Conv", "conv", {y, "w"}, {}, "out");
  g.output("out", DType::kFloat32, {1, 4, 8, 8});
  return g.build();
}

}  // namespace fetafix::testing
