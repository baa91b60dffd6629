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

}  // namespace fetafix::testing
