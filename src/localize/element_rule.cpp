#include "localize/element_rule.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "localize/kruskal.h"

namespace fetafix::localize {
namespace {

// An unsigned key that orders like the float (NaN excluded): equal keys <=> equal floats, -0 and
// +0 included (both become +0 first).
uint32_t order_key(float v) {
  v += 0.0f;  // -0 + 0 = +0 under round-to-nearest
  uint32_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Stable LSD radix sort of (key << 32 | row) by key, 8 bits at a time, skipping digits every
// key shares. Returns the buffer holding the result (a or tmp).
uint64_t* radix_sort_by_key(uint64_t* a, uint64_t* tmp, size_t n) {
  uint32_t hist[4][256] = {};
  for (size_t i = 0; i < n; ++i) {
    const auto k = static_cast<uint32_t>(a[i] >> 32);
    ++hist[0][k & 255u];
    ++hist[1][(k >> 8) & 255u];
    ++hist[2][(k >> 16) & 255u];
    ++hist[3][k >> 24];
  }
  uint64_t* src = a;
  uint64_t* dst = tmp;
  for (int d = 0; d < 4; ++d) {
    const int shift = 32 + 8 * d;
    uint32_t* h = hist[d];
    if (h[(src[0] >> shift) & 255u] == n) continue;
    uint32_t offset = 0;
    for (int b = 0; b < 256; ++b) offset += std::exchange(h[b], offset);
    for (size_t i = 0; i < n; ++i) dst[h[(src[i] >> shift) & 255u]++] = src[i];
    std::swap(src, dst);
  }
  return src;
}

}  // namespace

ElementRule::ElementRule(double alpha) : alpha_(alpha), critical_statistic_(chi_squared_critical_value(alpha, 1)) {}

void ElementRule::sort(std::span<float> values) {
  auto finite_end = std::partition(values.begin(), values.end(), [](float v) { return !std::isnan(v); });
  std::sort(values.begin(), finite_end);
}

bool ElementRule::significant(double h) const {
  if (std::isnan(h)) return false;
  // Far from the critical value the comparison of H decides; near it, the exact p-value does.
  const double margin = 1e-9 * critical_statistic_;
  if (h > critical_statistic_ + margin) return true;
  if (h < critical_statistic_ - margin) return false;
  return chi_squared_survival(h, 1) < alpha_;
}

bool ElementRule::problematic(std::span<const float> similar, std::span<const float> dissimilar) const {
  if (dissimilar.empty()) return false;
  const float reference = similar.empty() ? 0.0f : similar.front();
  if (!similar.empty() && std::isnan(similar.back())) return false;
  if (std::isnan(dissimilar.back())) return true;
  if (similar.empty() || similar.front() == similar.back())
    return dissimilar.front() != reference || dissimilar.back() != reference;
  return significant(kruskal_statistic_sorted(similar, dissimilar));
}

RepeatedElementTest::RepeatedElementTest(double alpha, std::vector<uint32_t> membership, size_t repeats)
    : rule_(alpha), membership_(std::move(membership)), repeats_(std::min(repeats, kMaxRepeats)),
      similar_count_(repeats_, 0), similar_rows_(repeats_), critical_(chi_squared_critical_value(alpha, 1)) {
  for (uint32_t row = 0; row < membership_.size(); ++row) {
    const uint32_t m = membership_[row];
    if (m & 1u) dissimilar_rows_.push_back(row);
    dissimilar_count_ += m & 1u;
    for (size_t r = 0; r < repeats_; ++r)
      if ((m >> (r + 1)) & 1u) similar_rows_[r].push_back(row), ++similar_count_[r];
  }
  bins_ = 16;
  while (bins_ < membership_.size()) bins_ *= 2;
}

bool RepeatedElementTest::decide(const float* values, Scratch& s, int64_t* problematic) const {
  const size_t n = membership_.size();
  if (n == 0 || dissimilar_count_ == 0) return false;
  float low = values[0], high = values[0];
  for (size_t row = 0; row < n; ++row) {
    const float v = values[row];
    if (std::isnan(v)) {
      decide_with_nan(values, s, problematic);
      return true;
    }
    low = std::min(low, v);
    high = std::max(high, v);
  }
  int verdict[kMaxRepeats];
  std::fill(verdict, verdict + repeats_, -1);
  const bool bounded = low < high && std::isfinite(static_cast<double>(high) - static_cast<double>(low));
  if (bounded) decide_by_bounds(values, low, high, s, verdict);
  bool undecided = false;
  for (size_t r = 0; r < repeats_; ++r) undecided = undecided || verdict[r] < 0;
  if (undecided) {
    s.keys.resize(n);
    s.sorted.resize(n);
    for (size_t row = 0; row < n; ++row) s.keys[row] = (static_cast<uint64_t>(order_key(values[row])) << 32) | row;
    int64_t exact[kMaxRepeats] = {};
    decide_sorted(low < high ? radix_sort_by_key(s.keys.data(), s.sorted.data(), n) : s.keys.data(), exact);
    for (size_t r = 0; r < repeats_; ++r)
      if (verdict[r] < 0) verdict[r] = static_cast<int>(exact[r]);
  }
  for (size_t r = 0; r < repeats_; ++r) problematic[r] += verdict[r];
  return undecided;
}

// H is convex in the similar rank sum R (the statistic before the tie correction, H0, is a
// quadratic with its minimum 0 at R = n_s (N + 1) / 2), and the tie correction only divides by a
// factor in (0, 1]: so H lies in [min H0 over the R interval, max H0 / smallest factor].
void RepeatedElementTest::decide_by_bounds(const float* values, float low, float high, Scratch& s, int* verdict) const {
  const size_t n = membership_.size(), bins = bins_;
  // bin(v) = floor((v - low) * bins / (high - low)), clamped: non-decreasing in v, equal for equal v.
  const double scale = static_cast<double>(bins) / (static_cast<double>(high) - static_cast<double>(low));
  s.bins.resize(n);
  s.dissimilar_count.assign(bins, 0);
  s.all_count.assign(bins, 0);
  for (size_t row = 0; row < n; ++row) {
    const double x = (static_cast<double>(values[row]) - static_cast<double>(low)) * scale;
    const auto b = std::min<uint32_t>(static_cast<uint32_t>(bins - 1), static_cast<uint32_t>(x));
    s.bins[row] = b;
    ++s.all_count[b];
  }
  float dissimilar_low = values[dissimilar_rows_[0]], dissimilar_high = dissimilar_low;
  for (uint32_t row : dissimilar_rows_) {
    ++s.dissimilar_count[s.bins[row]];
    dissimilar_low = std::min(dissimilar_low, values[row]);
    dissimilar_high = std::max(dissimilar_high, values[row]);
  }
  s.dissimilar_below.resize(bins);
  double ties_bound = 0;  // sum of t^3 - t if every bin's values were equal
  for (size_t b = 0, below = 0; b < bins; ++b) {
    s.dissimilar_below[b] = static_cast<uint32_t>(below);
    below += s.dissimilar_count[b];
    const double c = s.all_count[b];
    ties_bound += c * c * c - c;
  }
  const double margin = 2e-9 * critical_;  // wider than ElementRule's 1e-9: the bounds are rounded too
  for (size_t r = 0; r < repeats_; ++r) {
    if (similar_rows_[r].empty()) continue;  // ElementRule's zero reference: the sorted path
    uint64_t u_low = 0, within = 0;
    float similar_low = values[similar_rows_[r][0]], similar_high = similar_low;
    for (uint32_t row : similar_rows_[r]) {
      u_low += s.dissimilar_below[s.bins[row]];
      within += s.dissimilar_count[s.bins[row]];
      similar_low = std::min(similar_low, values[row]);
      similar_high = std::max(similar_high, values[row]);
    }
    if (similar_low == similar_high) {  // every similar value equal: problematic unless all dissimilar are too
      verdict[r] = dissimilar_low != similar_low || dissimilar_high != similar_low;
      continue;
    }
    const double ns = static_cast<double>(similar_rows_[r].size()), nd = static_cast<double>(dissimilar_count_);
    const double total = ns + nd, half_ranks = total * (total + 1) / 2;
    auto h0 = [&](double rank_sum) {
      const double other = half_ranks - rank_sum;
      return 12.0 / (total * (total + 1)) * (rank_sum * rank_sum / ns + other * other / nd) - 3 * (total + 1);
    };
    const double base = ns * (ns + 1) / 2;  // R = U + n_s (n_s + 1) / 2
    const double r_low = base + static_cast<double>(u_low), r_high = r_low + static_cast<double>(within);
    const double vertex = ns * (total + 1) / 2;
    const double h_min = vertex > r_low && vertex < r_high ? 0.0 : std::max(0.0, std::min(h0(r_low), h0(r_high)));
    const double factor = 1.0 - ties_bound / (total * total * total - total);
    const double h_max =
        factor > 0 ? std::max(h0(r_low), h0(r_high)) / factor : std::numeric_limits<double>::infinity();
    if (h_min > critical_ + margin) verdict[r] = 1;
    else if (h_max < critical_ - margin) verdict[r] = 0;
  }
}

// Rank sums are kept doubled (2 x average rank is an integer) and tie sums as integers: exact,
// and converted to the doubles kruskal_statistic_sorted would have summed (its sums of
// half-integers are exact too), so H is the same double. A value held by one row (the common
// case) is counted without branches; a run of equal values takes the general path.
void RepeatedElementTest::decide_sorted(const uint64_t* sorted, int64_t* problematic) const {
  const size_t n = membership_.size(), repeats = repeats_;
  int64_t twice_rank_sum[kMaxRepeats] = {}, tie_sum[kMaxRepeats] = {}, placed[kMaxRepeats] = {};
  // Whether every similar value of the repeat sits in one run of equal values, and whether
  // every dissimilar value sits in that run too (ElementRule's "all similar equal" case).
  bool similar_all_equal[kMaxRepeats] = {}, dissimilar_there_too[kMaxRepeats] = {};
  int64_t similar_in_run[kMaxRepeats];
  for (size_t begin = 0; begin < n;) {
    const auto key = static_cast<uint32_t>(sorted[begin] >> 32);
    if (begin + 1 == n || static_cast<uint32_t>(sorted[begin + 1] >> 32) != key) {
      const uint32_t m = membership_[static_cast<uint32_t>(sorted[begin])];
      const int64_t dissimilar = m & 1u;
      for (size_t r = 0; r < repeats; ++r) {
        const int64_t similar = (m >> (r + 1)) & 1u;
        placed[r] += dissimilar | similar;
        twice_rank_sum[r] += similar * 2 * placed[r];
        if (similar && similar_count_[r] == 1) similar_all_equal[r] = true, dissimilar_there_too[r] = dissimilar_count_ == 0;
      }
      ++begin;
      continue;
    }
    size_t end = begin + 1;
    while (end < n && static_cast<uint32_t>(sorted[end] >> 32) == key) ++end;
    int64_t dissimilar_in_run = 0;
    std::fill(similar_in_run, similar_in_run + repeats, int64_t{0});
    for (size_t i = begin; i < end; ++i) {
      const uint32_t m = membership_[static_cast<uint32_t>(sorted[i])];
      dissimilar_in_run += m & 1u;
      for (size_t r = 0; r < repeats; ++r) similar_in_run[r] += (m >> (r + 1)) & 1u;
    }
    for (size_t r = 0; r < repeats; ++r) {
      const int64_t run = dissimilar_in_run + similar_in_run[r];
      if (similar_in_run[r] > 0 && static_cast<size_t>(similar_in_run[r]) == similar_count_[r]) {
        similar_all_equal[r] = true;
        dissimilar_there_too[r] = static_cast<size_t>(dissimilar_in_run) == dissimilar_count_;
      }
      twice_rank_sum[r] += similar_in_run[r] * (2 * placed[r] + run + 1);  // 2 x average rank of the run
      tie_sum[r] += run * run * run - run;
      placed[r] += run;
    }
    begin = end;
  }
  for (size_t r = 0; r < repeats; ++r) {
    bool flagged = false;
    if (similar_count_[r] == 0) {  // no expected distribution: any dissimilar value off zero
      const uint32_t zero = order_key(0.0f);
      for (size_t i = 0; i < n && !flagged; ++i)
        flagged = (membership_[static_cast<uint32_t>(sorted[i])] & 1u) && static_cast<uint32_t>(sorted[i] >> 32) != zero;
    } else if (similar_all_equal[r]) {
      flagged = !dissimilar_there_too[r];
    } else {
      const double total = static_cast<double>(placed[r]);
      const double rank_sum_similar = static_cast<double>(twice_rank_sum[r]) / 2;
      const double rank_sum_dissimilar = total * (total + 1) / 2 - rank_sum_similar;
      flagged = rule_.significant(kruskal_statistic_from_ranks(rank_sum_similar, similar_count_[r], rank_sum_dissimilar,
                                                               dissimilar_count_, static_cast<double>(tie_sum[r])));
    }
    problematic[r] += flagged;
  }
}

// The rare element with a NaN: ElementRule on each repeat's values, as it is written.
void RepeatedElementTest::decide_with_nan(const float* values, Scratch& s, int64_t* problematic) const {
  s.dissimilar.clear();
  for (size_t row = 0; row < membership_.size(); ++row)
    if (membership_[row] & 1u) s.dissimilar.push_back(values[row]);
  ElementRule::sort(s.dissimilar);
  for (size_t r = 0; r < repeats_; ++r) {
    s.similar.clear();
    for (size_t row = 0; row < membership_.size(); ++row)
      if ((membership_[row] >> (r + 1)) & 1u) s.similar.push_back(values[row]);
    ElementRule::sort(s.similar);
    problematic[r] += rule_.problematic(s.similar, s.dissimilar);
  }
}

}  // namespace fetafix::localize
