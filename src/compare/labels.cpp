#include "compare/labels.h"

#include <algorithm>
#include <cmath>
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
  if (!is_distribution(class_scores) && !probs.empty()) {
    float mx = *std::max_element(probs.begin(), probs.end());
    double sum = 0;
    for (float& v : probs) { v = std::exp(v - mx); sum += v; }
    for (float& v : probs) v = static_cast<float>(v / sum);
  }
  return probs;
}

TopK top_k(std::span<const float> class_scores, int k) {
  const size_t n = class_scores.size();
  const std::vector<float> probs = probabilities(class_scores);
  const size_t kk = std::min(n, static_cast<size_t>(std::max(k, 0)));
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  // Rank on the raw scores (softmax can round distinct logits to equal floats).
  auto better = [&](int64_t a, int64_t b) {
    float sa = class_scores[a], sb = class_scores[b];
    if (std::isnan(sa)) return false;
    if (std::isnan(sb)) return true;
    return sa > sb || (sa == sb && a < b);
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
