// The repeated element test (one sort per element, every repeat read from it) against
// ElementRule applied to each repeat's sorted samples: the same decision on every element,
// with ties, signed zeros, NaNs, overlapping samples, and values near the critical H.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "localize/element_rule.h"
#include "localize/kruskal.h"
#include "model/builder.h"

namespace fetafix::localize {
namespace {

struct Case {
  std::vector<uint32_t> membership;
  size_t repeats = 0;
};

// rows: `dissimilar` dissimilar rows, then similar rows; each similar row is in each repeat's
// sample with probability 1/2 (samples overlap), at least two rows per sample.
Case random_case(Rng& rng, size_t dissimilar, size_t similar, size_t repeats) {
  Case c;
  c.repeats = repeats;
  for (size_t i = 0; i < dissimilar; ++i) c.membership.push_back(1u);
  for (size_t i = 0; i < similar; ++i) {
    uint32_t m = 0;
    for (size_t r = 0; r < repeats; ++r)
      if (i < 2 || rng.uniform() < 0.5) m |= 1u << (r + 1);
    c.membership.push_back(m);
  }
  return c;
}

std::vector<int64_t> reference(const Case& c, const std::vector<float>& values, double alpha) {
  const ElementRule rule(alpha);
  std::vector<float> dissimilar;
  for (size_t row = 0; row < values.size(); ++row)
    if (c.membership[row] & 1u) dissimilar.push_back(values[row]);
  ElementRule::sort(dissimilar);
  std::vector<int64_t> out(c.repeats, 0);
  for (size_t r = 0; r < c.repeats; ++r) {
    std::vector<float> similar;
    for (size_t row = 0; row < values.size(); ++row)
      if ((c.membership[row] >> (r + 1)) & 1u) similar.push_back(values[row]);
    ElementRule::sort(similar);
    out[r] = rule.problematic(similar, dissimilar);
  }
  return out;
}

std::vector<int64_t> repeated(const Case& c, const std::vector<float>& values, double alpha, bool* sorted = nullptr) {
  const RepeatedElementTest test(alpha, c.membership, c.repeats);
  RepeatedElementTest::Scratch scratch;
  std::vector<int64_t> out(c.repeats, 0);
  const bool s = test.decide(values.data(), scratch, out.data());
  if (sorted) *sorted = s;
  return out;
}

// Values of a few kinds: small integers (many ties), signed zeros, shifted dissimilar values,
// all-equal columns, wide floats, and an occasional NaN.
std::vector<float> random_values(Rng& rng, const Case& c, int kind) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> v(c.membership.size());
  for (size_t row = 0; row < v.size(); ++row) {
    const bool dissimilar = c.membership[row] & 1u;
    switch (kind % 6) {
      case 0: v[row] = static_cast<float>(static_cast<int>(rng.uniform() * 5)) + (dissimilar ? 1.0f : 0.0f); break;
      case 1: v[row] = rng.uniform() < 0.5 ? 0.0f : -0.0f; if (dissimilar && rng.uniform() < 0.05) v[row] = 1e-30f; break;
      case 2: v[row] = rng.normal() + (dissimilar ? 0.3f : 0.0f); break;
      case 3: v[row] = 0.25f; if (dissimilar && rng.uniform() < 0.1) v[row] = -0.25f; break;
      case 4: v[row] = std::ldexp(rng.normal(), static_cast<int>(rng.uniform() * 60) - 30); break;
      default: v[row] = rng.uniform() < 0.03 ? nan : static_cast<float>(static_cast<int>(rng.uniform() * 3)); break;
    }
  }
  return v;
}

TEST(RepeatedElementTest, SameDecisionsAsElementRuleOnEveryRepeat) {
  Rng rng(42);
  size_t flagged = 0, decisions = 0, sorted_elements = 0, trials = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const size_t dissimilar = 1 + static_cast<size_t>(rng.uniform() * 40);
    const size_t similar = 2 + static_cast<size_t>(rng.uniform() * 60);
    const size_t repeats = 1 + static_cast<size_t>(rng.uniform() * 4);
    const Case c = random_case(rng, dissimilar, similar, repeats);
    const auto values = random_values(rng, c, trial);
    const double alpha = trial % 3 == 0 ? 0.05 : (trial % 3 == 1 ? 0.01 : 0.5);
    const auto want = reference(c, values, alpha);
    bool sorted = false;
    ASSERT_EQ(repeated(c, values, alpha, &sorted), want) << "trial " << trial;
    sorted_elements += sorted;
    ++trials;
    for (auto f : want) flagged += static_cast<size_t>(f);
    decisions += want.size();
  }
  // Both outcomes and both paths (bounds alone, sorting) were exercised.
  EXPECT_GT(flagged, decisions / 10);
  EXPECT_LT(flagged, decisions * 9 / 10);
  EXPECT_GT(sorted_elements, trials / 20);
  EXPECT_LT(sorted_elements, trials * 19 / 20);
}

// Two samples whose H lands within rounding of the chi-squared critical value: the exact p-value
// decides in both implementations.
TEST(RepeatedElementTest, DecisionsAtTheCriticalValueAgree) {
  size_t near = 0;
  for (int shift = 0; shift < 200; ++shift) {
    Case c;
    c.repeats = 1;
    std::vector<float> values;
    for (int i = 0; i < 20; ++i) {
      c.membership.push_back(1u);
      values.push_back(static_cast<float>(i + shift % 20));
    }
    for (int i = 0; i < 20; ++i) {
      c.membership.push_back(2u);
      values.push_back(static_cast<float>(i + shift / 20));
    }
    std::vector<float> a(values.begin() + 20, values.end()), b(values.begin(), values.begin() + 20);
    ElementRule::sort(a);
    ElementRule::sort(b);
    const double h = kruskal_statistic_sorted(a, b);
    near += std::fabs(h - chi_squared_critical_value(0.05, 1)) < 0.5;
    EXPECT_EQ(repeated(c, values, 0.05), reference(c, values, 0.05)) << shift;
  }
  EXPECT_GT(near, 0u);
}

}  // namespace
}  // namespace fetafix::localize
