// QDQ -> float: weights folded, activation quantization replaced by its Clip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "inject/dequantize.h"
#include "model/builder.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/session.h"
#include "support/assets.h"
#include "support/imagenet.h"

namespace fetafix::inject {

// uint8 image -> DQ -> Conv(int8 weight per-channel DQ, int32 bias DQ) -> Q -> DQ -> Relu.
static onnx::ModelProto small_qdq() {
  GraphBuilder g("qdq", 13);
  g.input("image", DType::kUInt8, {1, 2, 4, 4});
  g.initializer("in_scale", float_tensor({}, {0.02f}));
  Tensor in_zp(DType::kUInt8, {});
  in_zp.data<uint8_t>()[0] = 0;
  g.initializer("in_zp", in_zp);
  std::string x = g.node("DequantizeLinear", "dq_in", {"image", "in_scale", "in_zp"});
  Tensor w(DType::kInt8, {3, 2, 1, 1});
  const int8_t wv[] = {10, -20, 30, 40, -50, 60};
  std::memcpy(w.bytes.data(), wv, sizeof wv);
  g.initializer("w_q", w);
  g.initializer("w_scale", float_tensor({3}, {0.01f, 0.02f, 0.03f}));
  Tensor w_zp(DType::kInt8, {3});
  g.initializer("w_zp", w_zp);
  std::string wf = g.node("DequantizeLinear", "dq_w", {"w_q", "w_scale", "w_zp"}, {Attr::i("axis", 0)});
  x = g.node("Conv", "conv", {x, wf}, {Attr::ints("kernel_shape", {1, 1})});
  g.initializer("act_scale", float_tensor({}, {0.05f}));
  Tensor act_zp(DType::kUInt8, {});
  act_zp.data<uint8_t>()[0] = 128;
  g.initializer("act_zp", act_zp);
  x = g.node("QuantizeLinear", "q_act", {x, "act_scale", "act_zp"});
  x = g.node("DequantizeLinear", "dq_act", {x, "act_scale", "act_zp"});
  g.node("Relu", "relu", {x}, {}, "out");
  g.output("out", DType::kFloat32, {1, 3, 4, 4});
  return g.build();
}

TEST(Dequantize, FoldsWeightsAndClipsActivations) {
  auto qdq = small_qdq();
  DequantizeReport rep;
  auto f = dequantize_qdq(qdq, &rep);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(rep.weights_folded, 1);
  EXPECT_EQ(rep.activations_clipped, 1);
  EXPECT_EQ(rep.dequantize_kept, 1);
  for (const auto& n : f->graph().node()) EXPECT_NE(n.op_type(), "QuantizeLinear");
  auto w = model::get_weight(*f, "dq_w_out");
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_FLOAT_EQ(w->data<float>()[0], 0.10f);   // 10 * 0.01, channel 0
  EXPECT_FLOAT_EQ(w->data<float>()[3], 0.80f);   // 40 * 0.02, channel 1
  EXPECT_FLOAT_EQ(w->data<float>()[5], 1.80f);   // 60 * 0.03, channel 2

  // Outputs agree within the activation quantization step; values past the uint8 range clip.
  Tensor image(DType::kUInt8, {1, 2, 4, 4});
  for (int64_t k = 0; k < image.numel(); ++k) image.data<uint8_t>()[k] = static_cast<uint8_t>(k * 7 % 256);
  auto a = runtime::Session::create(qdq, {}, "qdq");
  auto b = runtime::Session::create(*f, {}, "float");
  ASSERT_TRUE(a.ok() && b.ok());
  auto ya = (*a)->run({image}), yb = (*b)->run({image});
  ASSERT_TRUE(ya.ok() && yb.ok());
  const auto va = ya->at(0).to_float(), vb = yb->at(0).to_float();
  for (size_t k = 0; k < va.size(); ++k) EXPECT_NEAR(va[k], vb[k], 0.05f / 2 + 1e-6) << k;
}

TEST(Dequantize, MobileNetV2FloatKeepsItsAccuracy) {
  FETAFIX_REQUIRE_ASSET(model_path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  FETAFIX_REQUIRE_ASSET(image_dir, "images/imagenet-samples");
  auto qdq = model::load_model(model_path);
  ASSERT_TRUE(qdq.ok()) << qdq.error().message;
  DequantizeReport rep;
  auto f = dequantize_qdq(qdq->proto, &rep);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_GT(rep.weights_folded, 50);
  EXPECT_GT(rep.activations_clipped, 50);
  auto top1 = testing::imagenet_top1(*f, image_dir, "uint8");
  ASSERT_TRUE(top1.ok()) << top1.error().message;
  std::printf("MobileNetV2 dequantized to float: %d weights folded, %d activations clipped, top-1 %.3f\n",
              rep.weights_folded, rep.activations_clipped, *top1);
  EXPECT_GE(*top1, 0.80);
}

}  // namespace fetafix::inject
