#include <gtest/gtest.h>

#include <fstream>

#include "compare/evaluator.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/models.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

// Same 10 images as test_compare.cpp: 4 red, 3 green, 3 blue.
static fs::path colour_folder(const std::string& name) {
  fs::path dir = testing::temp_dir(name);
  struct C { const char* file; uint8_t r, g, b; };
  const C colours[] = {{"r1.png", 200, 50, 50}, {"r2.png", 180, 60, 40}, {"r3.png", 220, 90, 80}, {"r4.png", 150, 20, 30},
                       {"g1.png", 50, 200, 50}, {"g2.png", 70, 160, 60}, {"g3.png", 10, 90, 20},
                       {"b1.png", 50, 50, 200}, {"b2.png", 40, 90, 170}, {"b3.png", 0, 0, 60}};
  uint32_t seed = 1;
  for (const C& c : colours)
    testing::write_png_rgb(dir / c.file, 40, 30, testing::textured_solid(40, 30, c.r, c.g, c.b, seed++));
  return dir;
}

TEST(LabelEvaluator, ScoresCandidatesAgainstOneSourceRun) {
  auto src = testing::dominant_channel_model(false), tgt = testing::dominant_channel_model(true);
  auto raw = data::preset_by_name("raw").value();
  CompareOptions o;
  o.threads = 1;
  o.batch_size = 3;
  auto e = LabelEvaluator::create({&src, "s", raw}, {&tgt, "t", raw}, colour_folder("evaluator_scores"), o);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ((*e)->images(), 10u);

  auto faulty = (*e)->score(tgt);
  ASSERT_TRUE(faulty.ok()) << faulty.error().message;
  EXPECT_EQ(faulty->disagreeing, 7u);  // red and blue images flip, green ones agree
  EXPECT_GT(faulty->distance, 0.1);

  auto fixed = (*e)->score(src);  // the Source itself as a candidate
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->disagreeing, 0u);
  EXPECT_NEAR(fixed->distance, 0.0, 1e-6);
  EXPECT_EQ(fixed->top1, (*e)->source_top1());

  // Feeding the channel-swapping Target BGR (caffe) undoes the swap on these colours.
  auto caffe = data::preset_by_name("caffe").value();
  auto with_caffe = (*e)->score_with_preset(tgt, caffe);
  ASSERT_TRUE(with_caffe.ok()) << with_caffe.error().message;
  EXPECT_EQ(with_caffe->disagreeing, 0u);
  ASSERT_TRUE((*e)->set_target_preset(tgt, caffe).ok());
  EXPECT_EQ((*e)->score(tgt)->disagreeing, 0u);
}

TEST(LabelEvaluator, UndecodableImageIsAnErrorNamingIt) {
  fs::path dir = colour_folder("evaluator_broken");
  { std::ofstream(dir / "zz_broken.png") << "garbage"; }
  auto m = testing::dominant_channel_model(false);
  auto raw = data::preset_by_name("raw").value();
  auto e = LabelEvaluator::create({&m, "s", raw}, {&m, "t", raw}, dir, {});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("zz_broken.png"), std::string::npos) << e.error().message;
}

}  // namespace fetafix::compare
