// The Kruskal-Wallis H test, reproducing scipy.stats.kruskal (scipy 1.10, Debian bookworm)
// to rounding: joint average ranks, tie correction, chi-squared survival function. The
// layer activation analysis calls the two-sample form millions of times, so that form works
// on presorted floats without allocating.
#pragma once

#include <cstddef>
#include <span>

#include "common/result.h"

namespace fetafix::localize {

struct KruskalResult {
  double statistic = 0;
  double pvalue = 1;
};

// scipy.stats.kruskal(*groups): H corrected for ties, p = chi2.sf(H, k - 1).
// As scipy: fewer than two groups, or every value identical, is an error ("All numbers are
// identical in kruskal"); an empty group or a NaN anywhere gives statistic and pvalue NaN.
Result<KruskalResult> kruskal_wallis(std::span<const std::span<const double>> groups);

// scipy.stats.chi2.sf(x, dof): 1 for x <= 0, NaN for NaN.
double chi_squared_survival(double x, int degrees_of_freedom);

// The H above which chi2.sf(H, dof) < alpha, for 0 < alpha < 1 (lets a caller decide
// "p < alpha" without a special function per test).
double chi_squared_critical_value(double alpha, int degrees_of_freedom);

// H of two samples from their rank sums (average ranks for ties) and sizes, and the tie sum
// sum(t^3 - t) over runs of equal values: the last step of kruskal_statistic_sorted, for callers
// that rank in their own way. NaN when every value is identical (tie_sum == N^3 - N).
double kruskal_statistic_from_ranks(double rank_sum_a, size_t size_a, double rank_sum_b, size_t size_b,
                                    double tie_sum);

// H of the two samples `a` and `b`, both sorted ascending, NaN-free and non-empty, with the
// same arithmetic as kruskal_wallis (so the same double). NaN when every value is identical.
// Allocates nothing: ranks come from one merge pass.
double kruskal_statistic_sorted(std::span<const float> a, std::span<const float> b);

}  // namespace fetafix::localize
