#include "match/match.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "match/assignment.h"
#include "match/core_nodes.h"
#include "match/weight_compare.h"
#include "model/layout.h"

namespace fetafix::match {
namespace {

// Score weights (see docs/matching.md): weight content dominates because it is the one feature
// that tells equal-shaped layers apart; structure decides when content is unknown.
constexpr double kContentWeight = 0.6, kStructureWeight = 0.4;
constexpr double kShapeWeight = 0.35, kAttributeWeight = 0.25, kPositionWeight = 0.40;
constexpr double kUnknownContent = 0.3;      // neither for nor against: a weightless side
constexpr double kPositionTolerance = 0.25;  // mean relative-position gap at which position scores 0
constexpr double kFoldGain = 1e-5;           // folding must beat the plain comparison by this
constexpr double kChannelwiseDiscount = 0.95;
constexpr double kPairFloor = 0.45;          // below this a pair is worse than no pair
constexpr double kMarginScale = 0.05;

// The per-node weight forms compared: as stored, with the following BN folded in, and with
// each output channel normalised (invariant to any per-channel scale, e.g. a BN folded by a
// converter in a form not recognised here).
struct WeightForms {
  std::optional<DenseWeight> raw, folded, channel_normalized;
};

WeightForms weight_forms(const CoreNode& core) {
  WeightForms f;
  if (!core.weight) return f;
  f.raw = core.weight->effective;
  if (core.out_axis >= 0) {
    if (!core.bn_factors.empty()) f.folded = scale_along_axis(*f.raw, core.out_axis, core.bn_factors);
    f.channel_normalized = normalize_along_axis(*f.raw, core.out_axis);
  }
  return f;
}

struct ContentMatch {
  bool known = false;
  double similarity = 0;
  std::vector<int64_t> effective_permutation;  // target effective = transpose(source effective, p)
  bool folded_in_target = false, folded_in_source = false, channelwise = false;
};

ContentMatch compare_content(const CoreNode& s, const WeightForms& sf, const CoreNode& t, const WeightForms& tf) {
  ContentMatch m;
  if (!sf.raw || !tf.raw) return m;
  m.known = true;
  if (sf.raw->values.size() != tf.raw->values.size() ||
      shape_signature(sf.raw->shape) != shape_signature(tf.raw->shape))
    return m;  // a different layer: similarity 0
  auto consider = [&](const std::optional<DenseWeight>& a, const std::optional<DenseWeight>& b, double gain,
                      double discount, auto mark) {
    if (!a || !b) return;
    auto lm = best_layout_match(*a, *b);
    if (!lm) return;
    const double sim = lm->similarity * discount;
    if (sim > m.similarity + gain) {
      m.similarity = sim;
      m.effective_permutation = lm->permutation;
      m.folded_in_target = m.folded_in_source = m.channelwise = false;
      mark();
    }
  };
  consider(sf.raw, tf.raw, 0.0, 1.0, [] {});
  if (!s.bn_factors.empty()) consider(sf.folded, tf.raw, kFoldGain, 1.0, [&] { m.folded_in_target = true; });
  if (!t.bn_factors.empty()) consider(sf.raw, tf.folded, kFoldGain, 1.0, [&] { m.folded_in_source = true; });
  consider(sf.channel_normalized, tf.channel_normalized, 0.0, kChannelwiseDiscount, [&] { m.channelwise = true; });
  return m;
}

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

struct PairScore {
  double total = -1;  // -1: not allowed (another op family)
  double shape = 0, attributes = 0, position = 0;
  ContentMatch content;
};

PairScore score_pair(const CoreNode& s, const WeightForms& sf, const CoreNode& t, const WeightForms& tf) {
  PairScore p;
  if (s.family != t.family) return p;
  p.content = compare_content(s, sf, t, tf);
  if (s.weight && t.weight)
    p.shape = shape_signature(s.weight->effective.shape) == shape_signature(t.weight->effective.shape) ? 1.0 : 0.0;
  else
    p.shape = 0.5;
  p.attributes = attribute_agreement(s, t);
  p.position = position_agreement(s, t);
  const double structure = kShapeWeight * p.shape + kAttributeWeight * p.attributes + kPositionWeight * p.position;
  const double content = p.content.known ? std::max(0.0, p.content.similarity) : kUnknownContent;
  p.total = kContentWeight * content + kStructureWeight * structure;
  return p;
}

// How the stored Target weight relates to the stored Source weight, from the two storage
// chains and the permutation between the effective weights.
std::vector<int64_t> stored_permutation(const CoreNode& s, const CoreNode& t, const std::vector<int64_t>& effective) {
  if (!s.weight || !t.weight || effective.empty()) return {};
  const auto& ps = s.weight->stored_to_effective;
  const auto& pt = t.weight->stored_to_effective;
  if (ps.empty() || pt.empty() || ps.size() != effective.size() || pt.size() != effective.size()) return {};
  // target_eff = T(source_stored, ps∘effective); target_stored = T(target_eff, pt^-1).
  auto perm = compose_permutations(compose_permutations(ps, effective), model::inverse_permutation(pt));
  if (is_identity(perm)) return {};
  return perm;
}

std::string describe(const PairScore& p, const NodeMatch& m, double margin) {
  std::string content;
  if (!p.content.known) {
    content = "no weight on one side";
  } else {
    content = fmt::format("weight cosine {:.4f}", p.content.similarity);
    if (p.content.channelwise) content += " per output channel";
    if (!m.weight_permutation.empty()) content += fmt::format(" with layout [{}]", fmt::join(m.weight_permutation, ","));
    if (m.bn_folded_in_target) content += fmt::format(" after folding Source BN '{}'", m.folded_bn_node);
    if (m.bn_folded_in_source) content += fmt::format(" after folding Target BN '{}'", m.folded_bn_node);
  }
  return fmt::format("{}; shape {}, attributes {:.2f}, position {:.2f}; score {:.3f}, margin {:.3f}", content,
                     p.shape >= 1 ? "agrees" : (p.shape > 0 ? "unknown" : "differs"), p.attributes, p.position,
                     p.total, margin);
}

}  // namespace

Result<MatchResult> match_models(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 const MatchOptions& options) {
  auto source_cores = collect_core_nodes(source, options.core_ops);
  if (!source_cores.ok()) return make_error("matching: Source model: {}", source_cores.error().message);
  auto target_cores = collect_core_nodes(target, options.core_ops);
  if (!target_cores.ok()) return make_error("matching: Target model: {}", target_cores.error().message);
  const auto& sc = *source_cores;
  const auto& tc = *target_cores;

  std::vector<WeightForms> sforms, tforms;
  for (const auto& c : sc) sforms.push_back(weight_forms(c));
  for (const auto& c : tc) tforms.push_back(weight_forms(c));

  std::vector<std::vector<PairScore>> pairs(sc.size(), std::vector<PairScore>(tc.size()));
  std::vector<std::vector<double>> totals(sc.size(), std::vector<double>(tc.size(), -1));
  for (size_t i = 0; i < sc.size(); ++i)
    for (size_t j = 0; j < tc.size(); ++j) {
      pairs[i][j] = score_pair(sc[i], sforms[i], tc[j], tforms[j]);
      totals[i][j] = pairs[i][j].total;
    }

  const std::vector<int> assigned = assign_max_score(totals, kPairFloor);
  MatchResult result;
  result.source_core = sc.size();
  result.target_core = tc.size();
  std::vector<bool> target_taken(tc.size(), false);
  for (size_t i = 0; i < sc.size(); ++i) {
    const int j = assigned[i];
    if (j < 0) continue;
    const auto col = static_cast<size_t>(j);
    const PairScore& p = pairs[i][col];
    // Margin over the best alternative either node had: a pair that is good but not better than
    // another candidate is a guess, not a match.
    double second = 0;
    for (size_t k = 0; k < tc.size(); ++k)
      if (k != col) second = std::max(second, totals[i][k]);
    for (size_t k = 0; k < sc.size(); ++k)
      if (k != i) second = std::max(second, totals[k][col]);
    const double margin = std::max(0.0, p.total - second);
    const double confidence =
        std::clamp(p.total, 0.0, 1.0) * (0.5 + 0.5 * (1.0 - std::exp(-margin / kMarginScale)));
    if (confidence < options.min_confidence) continue;
    NodeMatch m;
    m.source_node = sc[i].name;
    m.target_node = tc[col].name;
    m.confidence = confidence;
    // A Conv reads its weight as OIHW whatever the storage: only the Transposes between the
    // stored tensor and the node are a layout change. A kernel that matches only after
    // permuting what the Conv itself reads (e.g. H and W swapped) is a weight fault for WB to
    // report, so the permutation found by the content search is not passed on for Convs.
    const bool reads_fixed_layout = sc[i].family == "Conv" || sc[i].family == "ConvTranspose";
    std::vector<int64_t> effective = p.content.effective_permutation;
    if (reads_fixed_layout && !effective.empty())
      for (size_t d = 0; d < effective.size(); ++d) effective[d] = static_cast<int64_t>(d);
    m.weight_permutation = stored_permutation(sc[i], tc[col], effective);
    m.bn_folded_in_target = p.content.folded_in_target;
    m.bn_folded_in_source = p.content.folded_in_source;
    if (m.bn_folded_in_target) m.folded_bn_node = sc[i].bn_node;
    if (m.bn_folded_in_source) m.folded_bn_node = tc[col].bn_node;
    m.evidence = describe(p, m, margin);
    result.pairs.push_back(std::move(m));
    target_taken[col] = true;
  }
  std::vector<bool> source_taken(sc.size(), false);
  for (size_t i = 0, k = 0; i < sc.size() && k < result.pairs.size(); ++i)
    if (result.pairs[k].source_node == sc[i].name) { source_taken[i] = true; ++k; }
  for (size_t i = 0; i < sc.size(); ++i)
    if (!source_taken[i]) result.unmatched_source.push_back(sc[i].name);
  for (size_t j = 0; j < tc.size(); ++j)
    if (!target_taken[j]) result.unmatched_target.push_back(tc[j].name);
  return result;
}

}  // namespace fetafix::match
