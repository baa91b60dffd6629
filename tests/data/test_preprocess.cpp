#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "data/fixture_files.h"
#include "data/preprocess.h"
#include "support/assets.h"

namespace fetafix::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::fixtures_dir;

Preset builtin(const std::string& name) {
  auto p = preset_by_name(name);
  EXPECT_TRUE(p.ok()) << p.error().message;
  return p.ok() ? *p : Preset{};
}

DType dtype_named(const std::string& name) { return name == "uint8" ? DType::kUInt8 : DType::kFloat32; }

// Each preset's exact values against make_fixtures.py, which follows torchvision (torch),
// TF-slim + Keras 'tf' (tf/inception), Keras 'caffe', and central crop + PIL (raw/uint8).
TEST(Presets, ValuesMatchTheFrameworksExactly) {
  const auto cases = testing::read_json(fixtures_dir() / "presets" / "presets.json");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const std::string label = c["preset"].get<std::string>() + " on " + c["image"].get<std::string>() + ": " +
                              c["semantics"].get<std::string>();
    SCOPED_TRACE(label);
    Preset preset = builtin(c["preset"]);
    Status st = apply_overrides(preset, c["overrides"]);
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto image = decode_image(fixtures_dir() / "presets" / c["image"].get<std::string>());
    ASSERT_TRUE(image.ok()) << image.error().message;
    const DType input_dtype = dtype_named(c["input_dtype"]);
    auto bound = bind_preset_to_input(preset, c["input_shape"].get<std::vector<int64_t>>(), input_dtype, "x");
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    const Tensor t = preprocess(*image, *bound);
    ASSERT_EQ(t.shape, c["output_shape"].get<std::vector<int64_t>>());
    ASSERT_EQ(t.dtype, input_dtype);
    const size_t stride = c["stride"];
    const auto& values = c["values"];
    ASSERT_EQ(values.size(), (static_cast<size_t>(t.numel()) + stride - 1) / stride);
    int mismatches = 0;
    for (size_t k = 0; k < values.size() && mismatches < 5; ++k) {
      const size_t i = k * stride;
      if (input_dtype == DType::kUInt8) {
        const int got = t.data<uint8_t>()[i], want = values[k].get<int>();
        if (got != want) ++mismatches;
        EXPECT_EQ(got, want) << "at flat index " << i;
      } else {
        const float got = t.data<float>()[i], want = static_cast<float>(values[k].get<double>());
        if (got != want) ++mismatches;
        EXPECT_EQ(got, want) << "at flat index " << i;
      }
    }
  }
}

// preprocess_into writes one image at any place of a batch buffer, touching nothing else.
TEST(Presets, PreprocessIntoFillsOneSlotOfABatch) {
  auto image = decode_image(fixtures_dir() / "presets" / "landscape_40x30.png");
  ASSERT_TRUE(image.ok());
  for (const char* name : {"torch", "uint8"}) {
    SCOPED_TRACE(name);
    Preset p = builtin(name);
    ASSERT_TRUE(apply_overrides(p, json{{"size", 32}}).ok());
    const bool bytes = p.dtype == DType::kUInt8;
    auto bound = bind_preset_to_input(p, {-1, 32, 32, 3}, bytes ? DType::kUInt8 : DType::kFloat32, "x");
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    const Tensor single = preprocess(*image, *bound);
    const size_t slot = single.bytes.size();
    std::vector<std::byte> batch(3 * slot, std::byte{0x7f});
    preprocess_into(*image, *bound, batch.data() + slot);
    EXPECT_EQ(std::memcmp(batch.data() + slot, single.bytes.data(), slot), 0);
    for (size_t i = 0; i < slot; ++i) {
      ASSERT_EQ(batch[i], std::byte{0x7f});
      ASSERT_EQ(batch[2 * slot + i], std::byte{0x7f});
    }
  }
}

TEST(Presets, BuiltinConstants) {
  std::vector<std::string> names = preset_names();
  EXPECT_EQ(names, (std::vector<std::string>{"torch", "tf", "inception", "caffe", "raw", "uint8"}));
  const Preset torch = builtin("torch");
  EXPECT_EQ(torch.crop, CropPolicy::kShorterSideCrop);
  EXPECT_EQ(torch.crop_fraction, 0.875);
  EXPECT_EQ(torch.mean, (std::array<float, 3>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(torch.std, (std::array<float, 3>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(torch.default_layout, Layout::kNCHW);
  EXPECT_FALSE(torch.layout.has_value());
  EXPECT_EQ(torch.width, 0);
  const Preset tf = builtin("tf"), inception = builtin("inception");
  EXPECT_EQ(tf.crop, CropPolicy::kCentralFraction);
  EXPECT_FALSE(tf.antialias);
  EXPECT_EQ(tf.default_layout, Layout::kNHWC);
  EXPECT_EQ(inception.to_json().dump(), [&] { auto j = tf.to_json(); j["name"] = "inception"; return j.dump(); }());
  const Preset caffe = builtin("caffe");
  EXPECT_EQ(caffe.channels, ChannelOrder::kBGR);
  EXPECT_EQ(caffe.mean, (std::array<float, 3>{103.939f, 116.779f, 123.68f}));
  EXPECT_EQ(caffe.scale, 1.0f);
  EXPECT_EQ(builtin("uint8").dtype, DType::kUInt8);
  EXPECT_EQ(builtin("raw").dtype, DType::kFloat32);
  auto unknown = preset_by_name("pytorch");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("'pytorch'"), std::string::npos);
}

TEST(PresetOverrides, EveryKeyAppliesAndJsonRoundTrips) {
  Preset p = builtin("torch");
  const json overrides = {{"name", "mine"},        {"width", 300},          {"height", 200},
                          {"layout", "nhwc"},      {"default_layout", "NHWC"}, {"filter", "lanczos"},
                          {"antialias", false},    {"crop", "central_fraction"}, {"crop_fraction", 0.9},
                          {"channels", "BGR"},     {"scale", 0.5},          {"mean", {1, 2, 3}},
                          {"std", 2},              {"dtype", "uint8"}};
  Status st = apply_overrides(p, overrides);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(p.name, "mine");
  EXPECT_EQ(p.width, 300);
  EXPECT_EQ(p.height, 200);
  EXPECT_EQ(p.layout, Layout::kNHWC);
  EXPECT_EQ(p.filter, ResizeFilter::kLanczos);
  EXPECT_FALSE(p.antialias);
  EXPECT_EQ(p.crop, CropPolicy::kCentralFraction);
  EXPECT_EQ(p.crop_fraction, 0.9);
  EXPECT_EQ(p.channels, ChannelOrder::kBGR);
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.mean, (std::array<float, 3>{1, 2, 3}));
  EXPECT_EQ(p.std, (std::array<float, 3>{2, 2, 2}));
  EXPECT_EQ(p.dtype, DType::kUInt8);

  // to_json holds every field: applying it to a default preset gives the same preset back.
  for (const std::string& name : preset_names()) {
    Preset original = builtin(name), rebuilt;
    ASSERT_TRUE(apply_overrides(rebuilt, original.to_json()).ok());
    EXPECT_EQ(rebuilt.to_json(), original.to_json()) << name;
  }
  Preset sized;
  ASSERT_TRUE(apply_overrides(sized, json{{"size", 299}, {"layout", nullptr}}).ok());
  EXPECT_EQ(sized.width, 299);
  EXPECT_EQ(sized.height, 299);
  EXPECT_FALSE(sized.layout.has_value());
}

TEST(PresetOverrides, BadKeysAndValuesAreErrorsAndChangeNothing) {
  const Preset original = builtin("torch");
  struct Case {
    json overrides;
    std::string expected_text;
  };
  const std::vector<Case> cases = {
      {{{"widht", 3}}, "unknown preset key 'widht'"},
      {{{"width", -1}}, "'width'"},
      {{{"width", "big"}}, "'width'"},
      {{{"filter", "cubic"}}, "'filter' must be one of nearest, box, bilinear, hamming, bicubic, lanczos"},
      {{{"layout", "CHW"}}, "'layout'"},
      {{{"crop_fraction", 0}}, "crop_fraction"},
      {{{"crop_fraction", 1.5}}, "crop_fraction"},
      {{{"std", {1, 0, 1}}}, "std"},
      {{{"mean", {1, 2}}}, "'mean' must be a list of 3 numbers"},
      {{{"dtype", "float16"}}, "'dtype'"},
      {{{"antialias", 1}}, "'antialias'"},
      {{{"scale", -2}}, "scale"},
      // Finite, but not as a float (fuzz_preset: a mean of 7.7e101 became inf and the preset no
      // longer round-tripped through to_json).
      {{{"mean", {0.5, 7.7e101, 0.125}}}, "'mean' must be a number within float32 range"},
      {{{"std", 1e39}}, "'std' must be a number within float32 range"},
      {{{"scale", 3.5e38}}, "'scale' must be a number within float32 range"},
      {json::array({1, 2}), "JSON object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.overrides.dump());
    Preset p = original;
    // A valid key before the bad one must not be applied either.
    json overrides = c.overrides;
    if (overrides.is_object()) overrides["height"] = 111;
    Status st = apply_overrides(p, overrides);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find(c.expected_text), std::string::npos) << st.error().message;
    EXPECT_EQ(p.to_json(), original.to_json());
  }
}

fs::path write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

TEST(PresetFiles, BaseWithOverridesFullDescriptionAndErrors) {
  const fs::path dir = fetafix::testing::temp_dir("preset_files");
  auto based = load_preset_file(write_text(dir / "torch299.json", R"({"base": "torch", "width": 299, "height": 299})"));
  ASSERT_TRUE(based.ok()) << based.error().message;
  EXPECT_EQ(based->name, "torch299");
  EXPECT_EQ(based->width, 299);
  EXPECT_EQ(based->mean, builtin("torch").mean);
  EXPECT_EQ(based->crop, CropPolicy::kShorterSideCrop);

  auto full = load_preset_file(write_text(dir / "ocr.json", R"({
      "name": "paddle-ocr", "height": 48, "width": 192, "layout": "NCHW", "crop": "stretch",
      "filter": "bilinear", "scale": 0.00392156862745098, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})"));
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->name, "paddle-ocr");
  EXPECT_EQ(full->crop, CropPolicy::kStretch);
  EXPECT_EQ(full->layout, Layout::kNCHW);

  auto unknown_key = load_preset_file(write_text(dir / "typo.json", R"({"base": "tf", "mena": [1, 2, 3]})"));
  ASSERT_FALSE(unknown_key.ok());
  EXPECT_NE(unknown_key.error().message.find("'mena'"), std::string::npos) << unknown_key.error().message;
  EXPECT_NE(unknown_key.error().message.find("typo.json"), std::string::npos) << unknown_key.error().message;

  auto bad_base = load_preset_file(write_text(dir / "bad_base.json", R"({"base": "keras"})"));
  ASSERT_FALSE(bad_base.ok());
  EXPECT_NE(bad_base.error().message.find("bad_base.json"), std::string::npos);
  EXPECT_NE(bad_base.error().message.find("'keras'"), std::string::npos);

  auto not_json = load_preset_file(write_text(dir / "broken.json", R"({"base": "tf",)"));
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.error().message.find("broken.json"), std::string::npos);
  EXPECT_NE(not_json.error().message.find("not valid JSON"), std::string::npos);

  auto missing = load_preset_file(dir / "absent.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.json"), std::string::npos);

  auto by_name = resolve_preset("caffe");
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->name, "caffe");
  auto by_file = resolve_preset((dir / "torch299.json").string());
  ASSERT_TRUE(by_file.ok()) << by_file.error().message;
  EXPECT_EQ(by_file->width, 299);
  auto neither = resolve_preset("tensorflow");
  ASSERT_FALSE(neither.ok());
  EXPECT_NE(neither.error().message.find("'tensorflow'"), std::string::npos);
  EXPECT_NE(neither.error().message.find("torch, tf, inception, caffe, raw, uint8"), std::string::npos);
}

TEST(BindPreset, LayoutAndSizeFromTheModel) {
  const Preset torch = builtin("torch");
  auto nchw = bind_preset_to_input(torch, {1, 3, 240, 320}, DType::kFloat32, "x");
  ASSERT_TRUE(nchw.ok()) << nchw.error().message;
  EXPECT_EQ(nchw->layout, Layout::kNCHW);
  EXPECT_EQ(nchw->width, 320);
  EXPECT_EQ(nchw->height, 240);

  auto nhwc = bind_preset_to_input(torch, {-1, 299, 299, 3}, DType::kFloat32, "x");
  ASSERT_TRUE(nhwc.ok());
  EXPECT_EQ(nhwc->layout, Layout::kNHWC);
  EXPECT_EQ(nhwc->width, 299);

  auto dynamic = bind_preset_to_input(torch, {-1, 3, -1, -1}, DType::kFloat32, "x");
  ASSERT_TRUE(dynamic.ok());
  EXPECT_EQ(dynamic->width, 224);
  EXPECT_EQ(dynamic->height, 224);

  Preset sized = torch;
  sized.width = sized.height = 299;
  auto sized_dynamic = bind_preset_to_input(sized, {1, 3, -1, -1}, DType::kFloat32, "x");
  ASSERT_TRUE(sized_dynamic.ok());
  EXPECT_EQ(sized_dynamic->width, 299);
  auto conflict = bind_preset_to_input(sized, {1, 3, 224, 224}, DType::kFloat32, "x");
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("[1,3,224,224]"), std::string::npos) << conflict.error().message;

  // [N,3,H,3] fits both layouts: the preset's own framework layout decides.
  auto ambiguous_torch = bind_preset_to_input(torch, {1, 3, 8, 3}, DType::kFloat32, "x");
  auto ambiguous_tf = bind_preset_to_input(builtin("tf"), {1, 3, 8, 3}, DType::kFloat32, "x");
  ASSERT_TRUE(ambiguous_torch.ok() && ambiguous_tf.ok());
  EXPECT_EQ(ambiguous_torch->layout, Layout::kNCHW);
  EXPECT_EQ(ambiguous_tf->layout, Layout::kNHWC);

  // An explicit layout is kept, and checked against the model.
  Preset forced = torch;
  forced.layout = Layout::kNHWC;
  auto wrong_layout = bind_preset_to_input(forced, {1, 3, 224, 224}, DType::kFloat32, "images");
  ASSERT_FALSE(wrong_layout.ok());
  EXPECT_NE(wrong_layout.error().message.find("'images'"), std::string::npos);
  EXPECT_NE(wrong_layout.error().message.find("NHWC"), std::string::npos);
}

TEST(BindPreset, ShapesThatCannotTakeAnRgbImage) {
  const Preset torch = builtin("torch");
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {1, 3, 224}, {1, 1, 224, 224}, {1, 224, 224, 4}, {1, 3, 224, 224, 1}, {}}) {
    auto bound = bind_preset_to_input(torch, shape, DType::kFloat32, "x");
    ASSERT_FALSE(bound.ok());
    EXPECT_EQ(bound.error().message,
              "input 'x' has shape " + shape_to_string(shape) + " which cannot take an RGB image");
  }
}

TEST(BindPreset, DtypeMismatchSaysWhichPresetToUse) {
  auto float_for_bytes = bind_preset_to_input(builtin("torch"), {1, 224, 224, 3}, DType::kUInt8, "input");
  ASSERT_FALSE(float_for_bytes.ok());
  EXPECT_NE(float_for_bytes.error().message.find("use preset 'uint8'"), std::string::npos)
      << float_for_bytes.error().message;
  auto bytes_for_float = bind_preset_to_input(builtin("uint8"), {1, 224, 224, 3}, DType::kFloat32, "input");
  ASSERT_FALSE(bytes_for_float.ok());
  EXPECT_NE(bytes_for_float.error().message.find("'raw'"), std::string::npos) << bytes_for_float.error().message;
  auto half = bind_preset_to_input(builtin("torch"), {1, 3, 224, 224}, DType::kFloat16, "input");
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("float16"), std::string::npos);
  auto ok = bind_preset_to_input(builtin("uint8"), {1, 224, 224, 3}, DType::kUInt8, "input");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}

}  // namespace
}  // namespace fetafix::data
