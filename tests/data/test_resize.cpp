#include <gtest/gtest.h>

#include "data/fixture_files.h"
#include "data/preprocess.h"

namespace fetafix::data {
namespace {

using testing::first_difference;
using testing::fixtures_dir;
using testing::read_bytes;

std::optional<ResizeFilter> filter_named(const std::string& name) {
  if (name == "nearest") return ResizeFilter::kNearest;
  if (name == "box") return ResizeFilter::kBox;
  if (name == "bilinear") return ResizeFilter::kBilinear;
  if (name == "hamming") return ResizeFilter::kHamming;
  if (name == "bicubic") return ResizeFilter::kBicubic;
  if (name == "lanczos") return ResizeFilter::kLanczos;
  return std::nullopt;
}

Image fixture_source(const nlohmann::json& manifest) {
  Image src;
  src.width = manifest["source"]["width"];
  src.height = manifest["source"]["height"];
  src.rgb = read_bytes(fixtures_dir() / "resize" / manifest["source"]["file"].get<std::string>());
  return src;
}

// Every filter x {down, up, mixed, fractional box, integral box} against PIL's
// Image.resize bytes, plus antialias=false (filterscale 1) cases.
TEST(Resize, MatchesPillowByteForByte) {
  const auto manifest = testing::read_json(fixtures_dir() / "resize" / "manifest.json");
  const Image src = fixture_source(manifest);
  ASSERT_EQ(src.rgb.size(), static_cast<size_t>(src.width) * src.height * 3);
  int checked = 0;
  for (const auto& c : manifest["cases"]) {
    const std::string file = c["file"];
    SCOPED_TRACE(file);
    const auto filter = filter_named(c["filter"]);
    ASSERT_TRUE(filter.has_value());
    std::optional<std::array<double, 4>> box;
    if (!c["box"].is_null()) box = std::array<double, 4>{c["box"][0], c["box"][1], c["box"][2], c["box"][3]};
    const Image out = resize(src, c["width"], c["height"], *filter, c["antialias"].get<bool>(), box);
    ASSERT_EQ(out.width, c["width"].get<int>());
    ASSERT_EQ(out.height, c["height"].get<int>());
    const auto expected = read_bytes(fixtures_dir() / "resize" / file);
    ASSERT_EQ(out.rgb.size(), expected.size());
    EXPECT_EQ(first_difference(out.rgb, expected), -1);
    ++checked;
  }
  EXPECT_GE(checked, 6 * 5 + 5 * 3);  // all filters and geometries, and the no-antialias cases
}

// Antialiasing only changes downscaling: when upscaling, filterscale is 1 either way.
TEST(Resize, AntialiasMattersOnlyWhenDownscaling) {
  const auto manifest = testing::read_json(fixtures_dir() / "resize" / "manifest.json");
  const Image src = fixture_source(manifest);
  for (auto filter : {ResizeFilter::kBilinear, ResizeFilter::kBicubic, ResizeFilter::kLanczos}) {
    EXPECT_EQ(resize(src, 50, 40, filter, true).rgb, resize(src, 50, 40, filter, false).rgb);
    EXPECT_NE(resize(src, 12, 8, filter, true).rgb, resize(src, 12, 8, filter, false).rgb);
  }
}

TEST(Resize, SameSizeIsACopyAndDegenerateSizesAreEmpty) {
  const auto manifest = testing::read_json(fixtures_dir() / "resize" / "manifest.json");
  const Image src = fixture_source(manifest);
  for (auto filter : {ResizeFilter::kNearest, ResizeFilter::kBox, ResizeFilter::kBilinear, ResizeFilter::kHamming,
                      ResizeFilter::kBicubic, ResizeFilter::kLanczos})
    EXPECT_EQ(resize(src, src.width, src.height, filter).rgb, src.rgb);
  EXPECT_TRUE(resize(src, 0, 10, ResizeFilter::kBilinear).rgb.empty());
  EXPECT_TRUE(resize(Image{}, 10, 10, ResizeFilter::kBilinear).rgb.empty());
  // A 1x1 image upsampled is that one color everywhere, whatever the filter.
  Image dot{1, 1, {10, 200, 30}};
  for (auto filter : {ResizeFilter::kNearest, ResizeFilter::kBilinear, ResizeFilter::kLanczos}) {
    const Image big = resize(dot, 5, 3, filter);
    for (size_t i = 0; i < big.rgb.size(); i += 3) {
      EXPECT_EQ(big.rgb[i], 10);
      EXPECT_EQ(big.rgb[i + 1], 200);
      EXPECT_EQ(big.rgb[i + 2], 30);
    }
  }
}

}  // namespace
}  // namespace fetafix::data
