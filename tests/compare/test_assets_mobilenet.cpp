// Real model, real photos: proves decoding, resizing, layout and the uint8 preset are right.
// The class index of an ImageNet sample is its wnid's position in sorted order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include <tbb/parallel_for.h>

#include "data/preprocess.h"
#include "model/model.h"
#include "runtime/session.h"
#include "support/assets.h"

namespace fetafix {
namespace fs = std::filesystem;

TEST(AssetsMobileNetV2, Uint8PresetReachesTop1OnImagenetSamples) {
  FETAFIX_REQUIRE_ASSET(model_path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  FETAFIX_REQUIRE_ASSET(image_dir, "images/imagenet-samples");
  auto model = model::load_model(model_path);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto files = data::list_images(image_dir);
  ASSERT_TRUE(files.ok()) << files.error().message;

  std::vector<std::string> wnids;
  for (const auto& f : *files) wnids.push_back(f.filename().string().substr(0, f.filename().string().find('_')));
  std::vector<std::string> sorted_wnids = wnids;
  std::sort(sorted_wnids.begin(), sorted_wnids.end());
  sorted_wnids.erase(std::unique(sorted_wnids.begin(), sorted_wnids.end()), sorted_wnids.end());
  ASSERT_EQ(sorted_wnids.size(), 1000u);

  auto session = runtime::Session::create(model->proto, {}, model_path.string());
  ASSERT_TRUE(session.ok()) << session.error().message;
  const auto& in = (*session)->inputs().at(0);
  auto preset = data::bind_preset_to_input(data::preset_by_name("uint8").value(), in.shape, in.dtype, in.name);
  ASSERT_TRUE(preset.ok()) << preset.error().message;
  ASSERT_EQ(preset->layout, data::Layout::kNHWC);
  ASSERT_EQ(preset->width, 224);

  const size_t n = files->size(), batch = 16, image_bytes = 224 * 224 * 3;
  size_t correct = 0;
  for (size_t first = 0; first < n; first += batch) {
    const size_t count = std::min(batch, n - first);
    Tensor input(DType::kUInt8, {static_cast<int64_t>(count), 224, 224, 3});
    tbb::parallel_for(size_t{0}, count, [&](size_t j) {
      auto image = data::decode_image((*files)[first + j]);
      ASSERT_TRUE(image.ok()) << image.error().message;
      data::preprocess_into(*image, *preset, input.bytes.data() + j * image_bytes);
    });
    auto out = (*session)->run({input});
    ASSERT_TRUE(out.ok()) << out.error().message;
    const Tensor& scores = out->at(0);
    const int64_t classes = scores.numel() / static_cast<int64_t>(count);
    ASSERT_EQ(classes, 1000);
    std::vector<float> values = scores.to_float();
    for (size_t j = 0; j < count; ++j) {
      auto begin = values.begin() + static_cast<std::ptrdiff_t>(j * classes);
      int64_t top1 = std::max_element(begin, begin + classes) - begin;
      auto truth = std::lower_bound(sorted_wnids.begin(), sorted_wnids.end(), wnids[first + j]) - sorted_wnids.begin();
      correct += top1 == truth;
    }
  }
  const double top1 = static_cast<double>(correct) / n;
  RecordProperty("top1", std::to_string(top1));
  std::printf("MobileNetV2 int8, uint8 preset: top-1 %.3f on %zu images\n", top1, n);
  EXPECT_GE(top1, 0.80);
}

}  // namespace fetafix
