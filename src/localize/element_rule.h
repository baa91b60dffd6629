// The per-element decision of the activation analysis (docs/activation-analysis.md, step 5):
// is an element's Target - Source difference over the dissimilar images distributed unlike the
// differences over a sample of similar images? ElementRule decides one element and one sample;
// RepeatedElementTest decides one element for every repeat's sample at once, from one sort of
// the element's values, with exactly the same result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fetafix::localize {

// The per-element decision. `similar` and `dissimilar` hold the differences at one element,
// each sorted ascending with NaNs last (ElementRule::sort does that):
//   no similar differences, or all equal: problematic iff some dissimilar one differs from them;
//   otherwise Kruskal-Wallis of similar vs dissimilar: problematic iff p < alpha.
// NaN: a dissimilar NaN is problematic (when the similar ones have none); a similar NaN leaves
// no expected distribution, so the element is not counted. No dissimilar values: not problematic.
class ElementRule {
 public:
  explicit ElementRule(double alpha);
  bool problematic(std::span<const float> similar, std::span<const float> dissimilar) const;
  static void sort(std::span<float> values);  // ascending, NaNs last
  // p < alpha for the statistic H of a two-sample test (NaN H: false).
  bool significant(double h) const;

 private:
  double alpha_;
  double critical_statistic_;  // H beyond which p < alpha (p is computed exactly near it)
};

// ElementRule for many elements whose rows (images) fall into fixed groups: the dissimilar rows,
// and per repeat r the rows of that repeat's similar sample (a row may be in several samples).
// Most elements are decided without sorting: the values are binned into equal-width bins of
// their range (a monotone map, so pairs in different bins are ordered), which bounds the
// Mann-Whitney U of each repeat (pairs inside a bin are the unknown part) and the tie
// correction (ties can only be inside a bin); when the resulting interval for H lies entirely
// above or below the critical value (with ElementRule's 1e-9 margin), that decides. Otherwise the
// element's values over all rows are sorted once, with their rows (radix sort on an
// order-preserving integer key, so ties are exactly the equal floats), and each undecided repeat
// reads its rank sums and tie runs from that order in one scan. H then comes out of
// kruskal_statistic_from_ranks with the same rank sums as kruskal_statistic_sorted would
// compute: the same double, the same decision.
class RepeatedElementTest {
 public:
  static constexpr size_t kMaxRepeats = 31;
  // membership[row]: bit 0 set for a dissimilar row, bit 1 + r for a row in repeat r's sample.
  RepeatedElementTest(double alpha, std::vector<uint32_t> membership, size_t repeats);

  struct Scratch {
    std::vector<uint64_t> keys, sorted;
    std::vector<float> similar, dissimilar;
    std::vector<uint32_t> bins, dissimilar_count, dissimilar_below, all_count;
  };
  // values[row] for every row: adds 1 to problematic[r] for each repeat r whose test says so.
  // Returns whether the values had to be sorted (the bounds left some repeat undecided).
  bool decide(const float* values, Scratch& scratch, int64_t* problematic) const;

  size_t rows() const { return membership_.size(); }

 private:
  // Per repeat: 1 or 0 when the bounds decide, -1 when they do not.
  void decide_by_bounds(const float* values, float low, float high, Scratch& s, int* verdict) const;
  void decide_with_nan(const float* values, Scratch& scratch, int64_t* problematic) const;
  void decide_sorted(const uint64_t* sorted, int64_t* problematic) const;

  ElementRule rule_;
  std::vector<uint32_t> membership_;
  size_t repeats_;
  std::vector<size_t> similar_count_;  // per repeat
  size_t dissimilar_count_ = 0;
  std::vector<std::vector<uint32_t>> similar_rows_;  // per repeat
  std::vector<uint32_t> dissimilar_rows_;
  size_t bins_ = 0;                                  // a power of two >= rows
  double critical_ = 0;                              // the chi-squared(1) critical value of alpha
};

}  // namespace fetafix::localize
