#include "compare/labels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace fetafix::compare {

static bool is_distribution(std::span<const float> s) {
  double sum = 0;
  for (float v : s) {
    if (!(v >= 0.0f && v <= 1.0f)) return false;  // also rejects NaN
    sum += v;
  }
  return std::abs(sum - 1.0) <= kProbabilitySumTolerance;
}

std::vector<float> probabilities(std::span<const float> class_scores) {
  std::vector<float> probs(class_scores.begin(), class_scores.end());
  if (probs.empty() || is_distribution(class_scores)) return probs;
  const float nan = std::numeric_limits<float>::quiet_NaN();  // positive: prints "nan", never "-nan"
  const auto positive_infinities = std::count(probs.begin(), probs.end(), std::numeric_limits<float>::infinity());
  if (positive_infinities > 0) {
    // The limit of softmax: the +inf logits share all the mass.
    for (float& v : probs) v = std::isnan(v) ? nan : (std::isinf(v) && v > 0 ? 1.0f / positive_infinities : 0.0f);
    return probs;
  }
  float mx = -std::numeric_limits<float>::infinity();
  for (float v : probs)
    if (!std::isnan(v)) mx = std::max(mx, v);
  double sum = 0;
  for (float& v : probs) {
    v = std::isnan(v) ? nan : std::exp(v - mx);  // -inf -> 0
    if (!std::isnan(v)) sum += v;
  }
  for (float& v : probs) v = std::isnan(v) || sum <= 0 ? nan : static_cast<float>(v / sum);
  return probs;
}

TopK top_k(std::span<const float> class_scores, int k) {
  const size_t n = class_scores.size();
  const std::vector<float> probs = probabilities(class_scores);
  const size_t kk = std::min(n, static_cast<size_t>(std::max(k, 0)));
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  // Rank on the raw scores (softmax can round distinct logits to equal floats). A total order, so
  // the lists are the same on every run: numbers before NaN, higher first, ties by class id.
  auto better = [&](int64_t a, int64_t b) {
    const float sa = class_scores[a], sb = class_scores[b];
    const bool nan_a = std::isnan(sa), nan_b = std::isnan(sb);
    if (nan_a != nan_b) return nan_b;
    if (!nan_a && sa != sb) return sa > sb;
    return a < b;
  };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(), better);
  TopK out;
  out.ids.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk));
  for (int64_t id : out.ids) out.scores.push_back(probs[static_cast<size_t>(id)]);
  return out;
}

int64_t to_source_label(int64_t target_id, int64_t offset, int64_t source_classes) {
  int64_t s = target_id - offset;
  return (s >= 0 && s < source_classes) ? s : -1;
}

double top_k_overlap(const std::vector<int64_t>& a, const std::vector<int64_t>& b, int k) {
  if (k <= 0) return 0;
  int common = 0;
  for (int64_t x : a)
    if (x >= 0 && std::find(b.begin(), b.end(), x) != b.end()) ++common;
  return static_cast<double>(common) / k;
}

}  // namespace fetafix::compare
