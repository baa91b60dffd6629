// Kruskal-Wallis against scipy.stats.kruskal: the fixture kruskal_vectors.json was written by
// fixtures/kruskal_make_fixtures.py with Debian's scipy (statistic and p-value to repr precision).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <span>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "localize/kruskal.h"
#include "model/builder.h"

namespace fetafix::localize {
namespace {

nlohmann::json load_vectors() {
  std::ifstream in(std::string(FETAFIX_SOURCE_DIR) + "/tests/localize/fixtures/kruskal_vectors.json");
  EXPECT_TRUE(in.good()) << "kruskal_vectors.json missing";
  return nlohmann::json::parse(in);
}

void expect_relative(double expected, double actual, const std::string& what) {
  if (expected == 0) {
    EXPECT_EQ(actual, 0.0) << what;
  } else {
    EXPECT_LE(std::fabs(actual - expected) / std::fabs(expected), 1e-9)
        << what << ": expected " << expected << ", got " << actual;
  }
}

struct Groups {
  std::vector<std::vector<double>> values;
  std::vector<std::span<const double>> spans;
  explicit Groups(const nlohmann::json& groups) {
    for (const auto& g : groups) values.push_back(g.get<std::vector<double>>());
    for (const auto& v : values) spans.emplace_back(v);
  }
};

TEST(Kruskal, MatchesScipyOnEveryFixtureVector) {
  const auto doc = load_vectors();
  ASSERT_GE(doc["cases"].size(), 35u);
  for (const auto& c : doc["cases"]) {
    const std::string name = c["name"];
    Groups g(c["groups"]);
    auto r = kruskal_wallis(g.spans);
    if (c.contains("error")) {
      EXPECT_FALSE(r.ok()) << name << ": scipy raised " << c["error"];
      if (!r.ok()) {
        EXPECT_NE(r.error().message.find("Kruskal-Wallis"), std::string::npos);
      }
      continue;
    }
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    if (c["statistic"].is_null()) {  // scipy's nan
      EXPECT_TRUE(std::isnan(r->statistic)) << name;
      EXPECT_TRUE(std::isnan(r->pvalue)) << name;
      continue;
    }
    expect_relative(c["statistic"].get<double>(), r->statistic, name + " statistic");
    expect_relative(c["pvalue"].get<double>(), r->pvalue, name + " pvalue");
  }
}

// The fast two-sample path must give the very same double as the general one (and so scipy's).
TEST(Kruskal, SortedTwoSamplePathEqualsGeneralPathOnFixtures) {
  const auto doc = load_vectors();
  int checked = 0;
  for (const auto& c : doc["cases"]) {
    if (c["groups"].size() != 2 || !c["float32_exact"].get<bool>() || c.contains("error") || c["statistic"].is_null())
      continue;
    Groups g(c["groups"]);
    std::vector<float> a(g.values[0].begin(), g.values[0].end()), b(g.values[1].begin(), g.values[1].end());
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    const double h = kruskal_statistic_sorted(a, b);
    EXPECT_EQ(h, kruskal_wallis(g.spans)->statistic) << c["name"];
    expect_relative(c["statistic"].get<double>(), h, c["name"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Kruskal, SortedTwoSamplePathEqualsGeneralPathOnRandomTiedData) {
  Rng rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t na = 1 + rng.next_u64() % 120, nb = 1 + rng.next_u64() % 120;
    const int levels = 1 + static_cast<int>(rng.next_u64() % 12);  // few levels: many ties
    std::vector<float> a(na), b(nb);
    for (auto& v : a) v = static_cast<float>(rng.next_u64() % levels) * 0.25f - 1.0f;
    for (auto& v : b) v = static_cast<float>(rng.next_u64() % levels) * 0.25f - 0.75f;
    std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end());
    std::vector<std::span<const double>> groups{ad, bd};
    auto general = kruskal_wallis(groups);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    const double fast = kruskal_statistic_sorted(a, b);
    if (!general.ok()) {  // every value identical
      EXPECT_TRUE(std::isnan(fast)) << trial;
    } else {
      EXPECT_EQ(fast, general->statistic) << trial;
    }
  }
}

TEST(Kruskal, EdgeCasesFollowScipy) {
  const std::vector<double> one{1, 2, 3}, empty{}, nan_values{1, std::nan(""), 3};
  std::vector<std::span<const double>> single{one};
  EXPECT_FALSE(kruskal_wallis(single).ok());
  std::vector<std::span<const double>> with_empty{one, empty};
  auto r = kruskal_wallis(with_empty);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->statistic) && std::isnan(r->pvalue));
  std::vector<std::span<const double>> with_nan{one, nan_values};
  r = kruskal_wallis(with_nan);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->statistic) && std::isnan(r->pvalue));
  EXPECT_TRUE(std::isnan(kruskal_statistic_sorted(std::vector<float>{}, std::vector<float>{1.0f})));
  EXPECT_TRUE(std::isnan(kruskal_statistic_sorted(std::vector<float>{2, 2}, std::vector<float>{2})));
}

TEST(Kruskal, ChiSquaredHelpers) {
  EXPECT_EQ(chi_squared_survival(-1e-15, 1), 1.0);  // scipy: chi2.sf(x < 0) == 1
  EXPECT_EQ(chi_squared_survival(0, 3), 1.0);
  EXPECT_TRUE(std::isnan(chi_squared_survival(std::nan(""), 1)));
  EXPECT_EQ(chi_squared_survival(INFINITY, 1), 0.0);
  // scipy.stats.chi2.isf(0.05, 1) = 3.8414588206941285
  EXPECT_NEAR(chi_squared_critical_value(0.05, 1), 3.8414588206941285, 1e-12);
  EXPECT_NEAR(chi_squared_survival(chi_squared_critical_value(0.01, 4), 4), 0.01, 1e-14);
  EXPECT_EQ(chi_squared_critical_value(1.0, 1), 0.0);
}

}  // namespace
}  // namespace fetafix::localize
