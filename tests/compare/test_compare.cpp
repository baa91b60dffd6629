#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "compare/compare.h"
#include "model/builder.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/models.h"

namespace fetafix::compare {
namespace fs = std::filesystem;
using testing::dominant_channel_model;

// 4 red, 3 green, 3 blue textured images.
static fs::path make_colour_folder(const std::string& name) {
  fs::path dir = testing::temp_dir(name);
  fs::create_directories(dir / "sub");
  struct C { const char* file; uint8_t r, g, b; };
  const C colours[] = {{"r1.png", 200, 50, 50},  {"r2.png", 180, 60, 40},  {"sub/r3.png", 220, 90, 80},
                       {"r4.png", 150, 20, 30},  {"g1.png", 50, 200, 50},  {"g2.png", 70, 160, 60},
                       {"sub/g3.png", 10, 90, 20}, {"b1.png", 50, 50, 200}, {"b2.png", 40, 90, 170},
                       {"b3.png", 0, 0, 60}};
  uint32_t seed = 1;
  for (const C& c : colours)
    testing::write_png_rgb(dir / c.file, 40, 30, testing::textured_solid(40, 30, c.r, c.g, c.b, seed++));
  return dir;
}

static CompareOptions quiet_options() {
  CompareOptions o;
  o.progress = ProgressMode::kQuiet;
  o.threads = 1;
  o.top_k = 2;
  return o;
}

TEST(Compare, IdenticalModelsAgreeOnEveryImage) {
  fs::path dir = make_colour_folder("compare_identical");
  auto m = dominant_channel_model(false);
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&m, "a.onnx", preset}, {&m, "b.onnx", preset}, dir, quiet_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->summary.images_found, 10u);
  EXPECT_EQ(r->summary.images_compared, 10u);
  EXPECT_EQ(r->summary.disagreeing, 0u);
  EXPECT_EQ(r->summary.discrepancy, 0.0);
  EXPECT_DOUBLE_EQ(r->summary.top_k_agreement, 1.0);
  EXPECT_TRUE(r->warnings.empty());
}

TEST(Compare, SwappedChannelsDisagreeOnRedAndBlueImagesOnly) {
  fs::path dir = make_colour_folder("compare_swapped");
  auto src = dominant_channel_model(false), tgt = dominant_channel_model(true);
  auto preset = data::preset_by_name("raw").value();
  for (int batch : {1, 3, 8}) {
    CompareOptions o = quiet_options();
    o.batch_size = batch;
    auto r = compare_models({&src, "source.onnx", preset}, {&tgt, "target.onnx", preset}, dir, o);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->summary.disagreeing, 7u) << "batch " << batch;
    EXPECT_DOUBLE_EQ(r->summary.discrepancy, 0.7);
    for (const auto& rec : r->records) {
      const char kind = fs::path(rec.file).filename().string()[0];
      EXPECT_EQ(rec.agree, kind == 'g') << rec.file;
      if (kind == 'r') {
        EXPECT_EQ(rec.source.ids[0], 0);
        EXPECT_EQ(rec.target.ids[0], 2);
      }
    }
    // Dataset order: sorted relative paths, subfolders included.
    EXPECT_EQ(r->records.front().file, "b1.png");
    EXPECT_EQ(r->records.back().file, "sub/r3.png");
  }
}

TEST(Compare, JsonHasARecordPerImageAndTheSummary) {
  fs::path dir = make_colour_folder("compare_json");
  auto src = dominant_channel_model(false), tgt = dominant_channel_model(true);
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&src, "s.onnx", preset}, {&tgt, "t.onnx", preset}, dir, quiet_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  nlohmann::json j = to_json(*r);
  EXPECT_EQ(j["schema"], "fetafix.compare/2");
  EXPECT_EQ(j["task"]["kind"], "label");
  ASSERT_EQ(j["samples"].size(), 10u);
  EXPECT_EQ(j["summary"]["disagreeing"], 7);
  EXPECT_DOUBLE_EQ(j["summary"]["label_discrepancy"].get<double>(), 0.7);
  EXPECT_EQ(j["samples"][0]["source_top_k"].size(), 2u);
  EXPECT_EQ(j["samples"][0]["status"], "disagree");  // b1: blue -> red
  EXPECT_EQ(j["samples"][0]["target_top_k"][0]["label"], 0);
  EXPECT_GT(j["samples"][0]["distance"].get<double>(), 0.0);
}

TEST(Compare, CorruptImagesAreSkippedOrFatalWhenStrict) {
  fs::path dir = make_colour_folder("compare_corrupt");
  { std::ofstream(dir / "broken.png") << "not a png at all"; }
  auto m = dominant_channel_model(false);
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&m, "a", preset}, {&m, "b", preset}, dir, quiet_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->summary.images_found, 11u);
  EXPECT_EQ(r->summary.images_skipped, 1u);
  EXPECT_EQ(r->summary.images_compared, 10u);
  CompareOptions strict = quiet_options();
  strict.strict = true;
  auto s = compare_models({&m, "a", preset}, {&m, "b", preset}, dir, strict);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("broken.png"), std::string::npos) << s.error().message;
}

TEST(Compare, DifferentClassCountsWarnWithoutAnOffset) {
  fs::path dir = make_colour_folder("compare_offset");
  auto src = dominant_channel_model(false);
  // Target with a leading "background" class: scores [0, R, G, B].
  GraphBuilder g("with_background", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 32, 32});
  x = g.node("GlobalAveragePool", "pool", {x});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  g.initializer("pads", int64_tensor({4}, {0, 1, 0, 0}));
  g.node("Pad", "add_background", {x, "pads"}, {}, "scores");
  g.output("scores", DType::kFloat32, {-1, 4});
  auto tgt = g.build();
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&src, "s", preset}, {&tgt, "t", preset}, dir, quiet_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->summary.disagreeing, 10u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("--label-offset"), std::string::npos);
  CompareOptions o = quiet_options();
  o.label_offset = 1;
  auto r2 = compare_models({&src, "s", preset}, {&tgt, "t", preset}, dir, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->summary.disagreeing, 0u);
  EXPECT_TRUE(r2->warnings.empty());
}

TEST(Compare, ModelWhoseInputIsNotAnImageIsRejected) {
  fs::path dir = make_colour_folder("compare_not_image");
  GraphBuilder g("vector", 13);
  std::string x = g.input("features", DType::kFloat32, {-1, 10});
  g.node("Relu", "relu", {x}, {}, "out");
  g.output("out", DType::kFloat32, {-1, 10});
  auto m = g.build();
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&m, "vec.onnx", preset}, {&m, "vec.onnx", preset}, dir, quiet_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("vec.onnx"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().kind, ErrorKind::kBadInput);
}

TEST(Compare, EmptyFolderIsAnError) {
  fs::path dir = testing::temp_dir("compare_empty");
  auto m = dominant_channel_model(false);
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&m, "a", preset}, {&m, "b", preset}, dir, quiet_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir.string()), std::string::npos) << r.error().message;
}

}  // namespace fetafix::compare

namespace fetafix::compare {
namespace {

// --label-offset and --top-k are checked against the class counts the models turn out to have.
TEST(Compare, LabelOffsetAndTopKBeyondTheClassCountAreErrors) {
  fs::path dir = make_colour_folder("compare_label_options");
  auto m = dominant_channel_model(false);  // 3 classes
  auto preset = data::preset_by_name("raw").value();
  for (int64_t offset : {5, 1, -1}) {
    CompareOptions o = quiet_options();
    o.label_offset = offset;
    auto r = compare_models({&m, "s", preset}, {&m, "t", preset}, dir, o);
    ASSERT_FALSE(r.ok()) << offset;
    EXPECT_NE(r.error().message.find("--label-offset"), std::string::npos) << r.error().message;
  }
  CompareOptions o = quiet_options();
  o.top_k = CompareOptions{}.top_k;  // 5, not asked for
  auto clamped = compare_models({&m, "s", preset}, {&m, "t", preset}, dir, o);  // the default k: lowered to 3
  ASSERT_TRUE(clamped.ok()) << clamped.error().message;
  EXPECT_EQ(clamped->summary.top_k, 3);
  EXPECT_DOUBLE_EQ(clamped->summary.top_k_agreement, 1.0);
  o.top_k = 50;
  auto refused = compare_models({&m, "s", preset}, {&m, "t", preset}, dir, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--top-k 50"), std::string::npos) << refused.error().message;
}

TEST(Compare, NaNScoresAreWarnedAboutAndRankedDeterministically) {
  fs::path dir = make_colour_folder("compare_nan");
  auto src = dominant_channel_model(false);
  GraphBuilder g("nan_scores", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 32, 32});
  x = g.node("GlobalAveragePool", "pool", {x});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  x = g.node("Neg", "negate", {x});
  g.node("Log", "log_of_negative", {x}, {}, "scores");  // NaN for every pixel value > 0
  g.output("scores", DType::kFloat32, {-1, 3});
  auto tgt = g.build();
  auto preset = data::preset_by_name("raw").value();
  auto r = compare_models({&src, "s", preset}, {&tgt, "t", preset}, dir, quiet_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("Target output holds NaN"), std::string::npos) << r->warnings[0];
  for (const auto& rec : r->records) EXPECT_EQ(rec.target.ids, (std::vector<int64_t>{0, 1})) << rec.file;  // top-2
  EXPECT_EQ(format_report(*r).find("-nan"), std::string::npos) << format_report(*r);
}

}  // namespace
}  // namespace fetafix::compare
