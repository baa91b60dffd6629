#include "localize/kruskal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <boost/math/distributions/chi_squared.hpp>

namespace fetafix::localize {
namespace {

// Never throw out of the special functions: bad arguments are screened by the callers, and a
// result that under- or overflows is what scipy returns too (0 or 1).
using QuietPolicy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::ignore_error>,
    boost::math::policies::pole_error<boost::math::policies::ignore_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::underflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>>;
using ChiSquared = boost::math::chi_squared_distribution<double, QuietPolicy>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// scipy's final step, in its order of operations so that the doubles agree:
//   h = 12 / (N (N + 1)) * ssbn - 3 (N + 1);  h /= 1 - sum(t^3 - t) / (N^3 - N)
double corrected_statistic(double ssbn, double total, double tie_sum) {
  const double ties = total < 2 ? 1.0 : 1.0 - tie_sum / (total * total * total - total);
  if (ties == 0) return kNaN;
  double h = 12.0 / (total * (total + 1)) * ssbn - 3 * (total + 1);
  return h / ties;
}

}  // namespace

double chi_squared_survival(double x, int degrees_of_freedom) {
  if (std::isnan(x) || degrees_of_freedom < 1) return kNaN;
  if (x <= 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  return boost::math::cdf(boost::math::complement(ChiSquared(degrees_of_freedom), x));
}

double chi_squared_critical_value(double alpha, int degrees_of_freedom) {
  if (!(alpha > 0)) return std::numeric_limits<double>::infinity();
  if (alpha >= 1) return 0.0;
  return boost::math::quantile(boost::math::complement(ChiSquared(degrees_of_freedom), alpha));
}

Result<KruskalResult> kruskal_wallis(std::span<const std::span<const double>> groups) {
  if (groups.size() < 2)
    return make_error("Kruskal-Wallis test: needs at least two groups, got {}", groups.size());
  size_t total = 0;
  bool has_nan = false;
  for (const auto& g : groups) {
    if (g.empty()) return KruskalResult{kNaN, kNaN};
    total += g.size();
    has_nan = has_nan || std::any_of(g.begin(), g.end(), [](double v) { return std::isnan(v); });
  }
  if (has_nan) return KruskalResult{kNaN, kNaN};

  struct Item {
    double value;
    size_t group;
  };
  std::vector<Item> items;
  items.reserve(total);
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (double v : groups[gi]) items.push_back({v, gi});
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.value < b.value; });

  // Average ranks of tie runs; rank sums are sums of half-integers, so exact in double.
  std::vector<double> rank_sum(groups.size(), 0.0);
  double tie_sum = 0;
  for (size_t begin = 0; begin < total;) {
    size_t end = begin + 1;
    while (end < total && items[end].value == items[begin].value) ++end;
    const double run = static_cast<double>(end - begin);
    const double average_rank = (static_cast<double>(begin + 1) + static_cast<double>(end)) / 2;
    for (size_t i = begin; i < end; ++i) rank_sum[items[i].group] += average_rank;
    tie_sum += run * run * run - run;
    begin = end;
  }
  const double n_total = static_cast<double>(total);
  if (tie_sum == n_total * n_total * n_total - n_total && total >= 2)
    return make_error("Kruskal-Wallis test: all {} values are identical", total);

  double ssbn = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi)
    ssbn += rank_sum[gi] * rank_sum[gi] / static_cast<double>(groups[gi].size());
  const double h = corrected_statistic(ssbn, n_total, tie_sum);
  return KruskalResult{h, chi_squared_survival(h, static_cast<int>(groups.size()) - 1)};
}

double kruskal_statistic_sorted(std::span<const float> a, std::span<const float> b) {
  const size_t na = a.size(), nb = b.size(), total = na + nb;
  if (na == 0 || nb == 0) return kNaN;
  double rank_sum_a = 0, rank_sum_b = 0, tie_sum = 0;
  size_t ia = 0, ib = 0, placed = 0;
  while (placed < total) {
    // The next value in merged order and how many times each sample holds it.
    const float v = ia < na && (ib >= nb || a[ia] <= b[ib]) ? a[ia] : b[ib];
    size_t ta = 0, tb = 0;
    while (ia < na && a[ia] == v) ++ia, ++ta;
    while (ib < nb && b[ib] == v) ++ib, ++tb;
    const size_t run = ta + tb;
    const double average_rank = (static_cast<double>(placed + 1) + static_cast<double>(placed + run)) / 2;
    rank_sum_a += static_cast<double>(ta) * average_rank;
    rank_sum_b += static_cast<double>(tb) * average_rank;
    const double t = static_cast<double>(run);
    tie_sum += t * t * t - t;
    placed += run;
  }
  return kruskal_statistic_from_ranks(rank_sum_a, na, rank_sum_b, nb, tie_sum);
}

double kruskal_statistic_from_ranks(double rank_sum_a, size_t size_a, double rank_sum_b, size_t size_b,
                                    double tie_sum) {
  const double n_total = static_cast<double>(size_a + size_b);
  if (tie_sum == n_total * n_total * n_total - n_total) return kNaN;
  double ssbn = 0;
  ssbn += rank_sum_a * rank_sum_a / static_cast<double>(size_a);
  ssbn += rank_sum_b * rank_sum_b / static_cast<double>(size_b);
  return corrected_statistic(ssbn, n_total, tie_sum);
}

}  // namespace fetafix::localize
