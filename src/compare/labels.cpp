#include "compare/labels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

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

Status check_label_options(int k, bool k_given, int64_t offset, int64_t source_classes, int64_t target_classes) {
  const int64_t fewest = std::min(source_classes, target_classes);
  if (k_given && k > fewest)
    return make_error("--top-k {}: the models have only {} classes (Source {}, Target {})", k, fewest, source_classes,
                      target_classes);
  const int64_t diff = target_classes - source_classes;
  const int64_t lo = std::min<int64_t>(0, diff), hi = std::max<int64_t>(0, diff);
  if (offset < lo || offset > hi)
    return make_error("--label-offset {}: Target has {} classes and Source {}, so Target label - offset = Source "
                      "label only holds for an offset {}",
                      offset, target_classes, source_classes,
                      lo == hi ? fmt::format("of {}", lo) : fmt::format("from {} to {}", lo, hi));
  return {};
}

int label_k(int k, int64_t source_classes, int64_t target_classes) {
  return static_cast<int>(std::min<int64_t>({k, source_classes, target_classes}));
}

}  // namespace fetafix::compare
