// The pieces under match_models: layout-aware weight comparison and the assignment.
#include <vector>

#include <gtest/gtest.h>

#include "match/assignment.h"
#include "match/weight_compare.h"
#include "model/layout.h"

namespace fetafix::match {
namespace {

DenseWeight iota_weight(std::vector<int64_t> shape) {
  DenseWeight w{{}, shape};
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  for (int64_t i = 0; i < n; ++i) w.values.push_back(static_cast<float>(i) * 0.37f - 5.0f + static_cast<float>(i % 7));
  return w;
}

TEST(WeightCompare, TransposeFollowsNumpySemantics) {
  const DenseWeight w{{0, 1, 2, 3, 4, 5}, {2, 3}};
  const DenseWeight t = transpose(w, {1, 0});
  EXPECT_EQ(t.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(t.values, (std::vector<float>{0, 3, 1, 4, 2, 5}));
  const DenseWeight x = iota_weight({2, 3, 4, 5});
  const DenseWeight y = transpose(x, {2, 3, 1, 0});
  EXPECT_EQ(y.shape, (std::vector<int64_t>{4, 5, 3, 2}));
  // y[h][w][i][o] == x[o][i][h][w]
  EXPECT_EQ(y.values[((3 * 5 + 4) * 3 + 1) * 2 + 1], x.values[((1 * 3 + 1) * 4 + 3) * 5 + 4]);
  const DenseWeight back = transpose(y, model::inverse_permutation({2, 3, 1, 0}));
  EXPECT_EQ(back.values, x.values);
}

TEST(WeightCompare, ComposedPermutationEqualsTwoTransposes) {
  const DenseWeight x = iota_weight({2, 3, 4});
  const std::vector<int64_t> a{1, 2, 0}, b{2, 0, 1};
  EXPECT_EQ(transpose(transpose(x, a), b).values, transpose(x, compose_permutations(a, b)).values);
}

TEST(WeightCompare, FittingPermutationsListIdentityFirst) {
  const auto fits = fitting_permutations({8, 8, 3, 3}, {8, 8, 3, 3});
  ASSERT_EQ(fits.size(), 4u);
  EXPECT_TRUE(is_identity(fits[0]));
  EXPECT_TRUE(fitting_permutations({8, 4}, {8, 8}).empty());
  // HWIO from OIHW; with a square kernel the H/W swap fits too, and only content can tell.
  EXPECT_EQ(fitting_permutations({16, 8, 3, 3}, {3, 3, 8, 16}),
            (std::vector<std::vector<int64_t>>{{2, 3, 1, 0}, {3, 2, 1, 0}}));
}

TEST(WeightCompare, BestLayoutFindsTheStoredPermutation) {
  const DenseWeight oihw = iota_weight({4, 4, 3, 3});  // O == I and H == W: four layouts fit
  const DenseWeight swapped = transpose(oihw, {1, 0, 3, 2});
  auto m = best_layout_match(oihw, swapped);
  ASSERT_TRUE(m);
  EXPECT_NEAR(m->similarity, 1.0, 1e-9);
  EXPECT_EQ(m->permutation, (std::vector<int64_t>{1, 0, 3, 2}));
  EXPECT_FALSE(best_layout_match(oihw, iota_weight({4, 4, 3, 2})));
  // Ranks differ, counts agree: compared with size-1 dims dropped.
  auto squeezed = best_layout_match(iota_weight({6, 5, 1, 1}), iota_weight({6, 5}));
  ASSERT_TRUE(squeezed);
  EXPECT_NEAR(squeezed->similarity, 1.0, 1e-9);
  EXPECT_TRUE(squeezed->permutation.empty());
}

TEST(WeightCompare, ChannelNormalizationRemovesPerChannelScale) {
  const DenseWeight w = iota_weight({3, 4});
  auto scaled = scale_along_axis(w, 0, {2.0f, 0.5f, -1.0f});
  ASSERT_TRUE(scaled);
  EXPECT_LT(cosine(w.values, scaled->values), 0.99);
  auto flipped_back = scale_along_axis(normalize_along_axis(*scaled, 0), 0, {1.0f, 1.0f, -1.0f});
  EXPECT_NEAR(cosine(normalize_along_axis(w, 0).values, flipped_back->values), 1.0, 1e-6);
  EXPECT_FALSE(scale_along_axis(w, 0, {1.0f}));
  EXPECT_EQ(shape_signature({1, 16, 1, 3, 3}), (std::vector<int64_t>{3, 3, 16}));
}

TEST(Assignment, MaximisesTheTotalNotTheGreedyChoice) {
  // Greedy would take (0,0)=0.9 and leave row 1 with 0.1; the optimum pairs crosswise.
  const std::vector<std::vector<double>> s{{0.9, 0.8}, {0.85, 0.1}};
  EXPECT_EQ(assign_max_score(s, 0.0), (std::vector<int>{1, 0}));
}

TEST(Assignment, PairsBelowTheFloorStayUnassignedAndCountsMayDiffer) {
  const std::vector<std::vector<double>> s{{0.2, 0.9, 0.1}, {0.3, 0.2, 0.25}};
  EXPECT_EQ(assign_max_score(s, 0.5), (std::vector<int>{1, -1}));
  const std::vector<std::vector<double>> tall{{0.9}, {0.95}, {0.1}};
  EXPECT_EQ(assign_max_score(tall, 0.5), (std::vector<int>{-1, 0, -1}));
  EXPECT_TRUE(assign_max_score({}, 0.5).empty());
}

}  // namespace
}  // namespace fetafix::match
