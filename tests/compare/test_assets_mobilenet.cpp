// Real model, real photos: proves decoding, resizing, layout and the uint8 preset are right.
#include <gtest/gtest.h>

#include "model/model.h"
#include "support/assets.h"
#include "support/imagenet.h"

namespace fetafix {

TEST(AssetsMobileNetV2, Uint8PresetReachesTop1OnImagenetSamples) {
  FETAFIX_REQUIRE_ASSET(model_path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  FETAFIX_REQUIRE_ASSET(image_dir, "images/imagenet-samples");
  auto model = model::load_model(model_path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto top1 = testing::imagenet_top1(model->proto, image_dir, "uint8");
  ASSERT_TRUE(top1.ok()) << top1.error().message;
  std::printf("MobileNetV2 int8, uint8 preset: top-1 %.3f on the imagenet samples\n", *top1);
  EXPECT_GE(*top1, 0.80);
}

}  // namespace fetafix
