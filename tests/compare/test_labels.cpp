#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "compare/labels.h"

namespace fetafix::compare {

TEST(TopK, LogitsAreSoftmaxedAndRanked) {
  std::vector<float> logits{1.0f, 3.0f, 2.0f, -1.0f};
  TopK t = top_k(logits, 3);
  ASSERT_EQ(t.ids, (std::vector<int64_t>{1, 2, 0}));
  double denom = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(-1.0);
  EXPECT_NEAR(t.scores[0], std::exp(3.0) / denom, 1e-6);
  EXPECT_NEAR(t.scores[2], std::exp(1.0) / denom, 1e-6);
}

TEST(TopK, ProbabilitiesAreNotSoftmaxedAgain) {
  std::vector<float> probs{0.1f, 0.7f, 0.2f};
  TopK t = top_k(probs, 2);
  EXPECT_EQ(t.ids, (std::vector<int64_t>{1, 2}));
  EXPECT_FLOAT_EQ(t.scores[0], 0.7f);
  EXPECT_FLOAT_EQ(t.scores[1], 0.2f);
}

TEST(TopK, TiesGoToTheLowerIdAndKIsClamped) {
  std::vector<float> s{5.0f, 7.0f, 7.0f};
  TopK t = top_k(s, 10);
  EXPECT_EQ(t.ids, (std::vector<int64_t>{1, 2, 0}));
}

TEST(TopK, NaNRanksLast) {
  std::vector<float> s{NAN, 1.0f, 2.0f};
  EXPECT_EQ(top_k(s, 3).ids, (std::vector<int64_t>{2, 1, 0}));
}

TEST(LabelOffset, MapsBackgroundClassModels) {
  EXPECT_EQ(to_source_label(1, 1, 1000), 0);
  EXPECT_EQ(to_source_label(1000, 1, 1000), 999);
  EXPECT_EQ(to_source_label(0, 1, 1000), -1);  // background matches nothing
  EXPECT_EQ(to_source_label(5, 0, 1000), 5);
  EXPECT_EQ(to_source_label(999, -1, 1001), 1000);
}

TEST(TopKOverlap, CountsCommonLabels) {
  EXPECT_DOUBLE_EQ(top_k_overlap({1, 2, 3}, {3, 2, 9}, 3), 2.0 / 3);
  EXPECT_DOUBLE_EQ(top_k_overlap({1, -1}, {-1, 4}, 2), 0.0);  // unmapped labels never match
}

}  // namespace fetafix::compare

namespace fetafix::compare {

// Several NaN scores used to come back in whatever order std::partial_sort left them.
TEST(TopK, NaNsAreOrderedByClassIdOnEveryRun) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> s{nan, 0.5f, nan, nan, -0.5f, nan, nan};
  for (int round = 0; round < 3; ++round) {
    TopK t = top_k(s, 7);
    EXPECT_EQ(t.ids, (std::vector<int64_t>{1, 4, 0, 2, 3, 5, 6}));
  }
  std::vector<float> all_nan(40, -nan);
  EXPECT_EQ(top_k(all_nan, 3).ids, (std::vector<int64_t>{0, 1, 2}));
  for (float p : top_k(all_nan, 3).scores) EXPECT_FALSE(std::signbit(p));  // printed "nan", never "-nan"
}

TEST(Probabilities, InfinitiesTakeTheLimitOfSoftmax) {
  const float inf = std::numeric_limits<float>::infinity();
  auto p = probabilities(std::vector<float>{1.0f, inf, -inf, inf});
  EXPECT_EQ(p, (std::vector<float>{0.0f, 0.5f, 0.0f, 0.5f}));
  auto q = probabilities(std::vector<float>{0.0f, -inf, 0.0f});
  EXPECT_EQ(q, (std::vector<float>{0.5f, 0.0f, 0.5f}));
}

}  // namespace fetafix::compare
