#include "match/structure_match.h"

#include <algorithm>
#include <cmath>

#include "match/weight_compare.h"

namespace fetafix::match {
namespace {

constexpr double kShapeWeight = 0.35, kAttributeWeight = 0.25, kPositionWeight = 0.40;
constexpr double kPositionTolerance = 0.25;  // mean relative-position gap at which position scores 0

double attribute_agreement(const CoreNode& s, const CoreNode& t) {
  double agree = 0;
  agree += s.kernel_shape == t.kernel_shape;
  agree += s.strides == t.strides;
  agree += s.dilations == t.dilations;
  agree += s.group == t.group;
  return agree / 4.0;
}

double position_agreement(const CoreNode& s, const CoreNode& t) {
  const double gap =
      (std::abs(s.depth - t.depth) + std::abs(s.ancestors - t.ancestors) + std::abs(s.descendants - t.descendants)) / 3.0;
  return std::max(0.0, 1.0 - gap / kPositionTolerance);
}

// The anchors that keep both orders: the longest chain increasing in both indices.
std::vector<std::pair<size_t, size_t>> monotone_anchors(std::vector<std::pair<size_t, size_t>> anchors) {
  std::sort(anchors.begin(), anchors.end());
  const size_t n = anchors.size();
  std::vector<size_t> length(n, 1), previous(n, n);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < i; ++k)
      if (anchors[k].second < anchors[i].second && length[k] + 1 > length[i]) length[i] = length[k] + 1, previous[i] = k;
  std::vector<std::pair<size_t, size_t>> chain;
  if (n == 0) return chain;
  size_t best = static_cast<size_t>(std::max_element(length.begin(), length.end()) - length.begin());
  for (size_t i = best; i != n; i = previous[i]) chain.push_back(anchors[i]);
  std::reverse(chain.begin(), chain.end());
  return chain;
}

// Needleman-Wunsch without gap costs over the unpaired nodes of one gap (indices, in order).
void align_gap(const std::vector<CoreNode>& source, const std::vector<CoreNode>& target, const std::vector<size_t>& a,
               const std::vector<size_t>& b, double floor, std::vector<StructurePair>& out) {
  const size_t m = a.size(), n = b.size();
  if (m == 0 || n == 0) return;
  std::vector<std::vector<StructureScore>> score(m, std::vector<StructureScore>(n));
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) score[i][j] = structure_score(source[a[i]], target[b[j]]);
  std::vector<std::vector<double>> best(m + 1, std::vector<double>(n + 1, 0.0));
  for (size_t i = 1; i <= m; ++i)
    for (size_t j = 1; j <= n; ++j) {
      best[i][j] = std::max(best[i - 1][j], best[i][j - 1]);
      const double s = score[i - 1][j - 1].compatible ? score[i - 1][j - 1].total : -1;
      if (s >= floor) best[i][j] = std::max(best[i][j], best[i - 1][j - 1] + s);
    }
  std::vector<StructurePair> pairs;
  for (size_t i = m, j = n; i > 0 && j > 0;) {
    const double s = score[i - 1][j - 1].compatible ? score[i - 1][j - 1].total : -1;
    if (s >= floor && best[i][j] == best[i - 1][j - 1] + s) {
      StructurePair p{a[i - 1], b[j - 1], score[i - 1][j - 1], 0};
      for (size_t k = 0; k < n; ++k) p.alternatives += k != j - 1 && score[i - 1][k].compatible && score[i - 1][k].total >= s;
      pairs.push_back(p);
      --i, --j;
    } else if (best[i][j] == best[i - 1][j]) {
      --i;
    } else {
      --j;
    }
  }
  out.insert(out.end(), pairs.rbegin(), pairs.rend());
}

// Indices in [begin, end) not yet paired.
std::vector<size_t> unpaired_between(size_t begin, size_t end, const std::vector<bool>& paired) {
  std::vector<size_t> out;
  for (size_t i = begin; i < end; ++i)
    if (!paired[i]) out.push_back(i);
  return out;
}

}  // namespace

StructureScore structure_score(const CoreNode& s, const CoreNode& t) {
  StructureScore r;
  if (s.family != t.family) return r;
  if (s.weight && t.weight)
    r.shape = shape_signature(s.weight->effective.shape) == shape_signature(t.weight->effective.shape) ? 1.0 : 0.0;
  else
    r.shape = 0.5;
  r.compatible = r.shape > 0;
  r.attributes = attribute_agreement(s, t);
  r.position = position_agreement(s, t);
  r.total = kShapeWeight * r.shape + kAttributeWeight * r.attributes + kPositionWeight * r.position;
  return r;
}

std::vector<StructurePair> align_by_structure(const std::vector<CoreNode>& source, const std::vector<CoreNode>& target,
                                              const std::vector<std::pair<size_t, size_t>>& anchors, double floor) {
  std::vector<bool> source_paired(source.size(), false), target_paired(target.size(), false);
  for (const auto& [s, t] : anchors) source_paired[s] = target_paired[t] = true;
  std::vector<StructurePair> out;
  size_t s0 = 0, t0 = 0;
  for (const auto& [s, t] : monotone_anchors(anchors)) {
    align_gap(source, target, unpaired_between(s0, s, source_paired), unpaired_between(t0, t, target_paired), floor,
              out);
    s0 = s + 1, t0 = t + 1;
  }
  align_gap(source, target, unpaired_between(s0, source.size(), source_paired),
            unpaired_between(t0, target.size(), target_paired), floor, out);
  return out;
}

}  // namespace fetafix::match
