#include "match/match.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "match/assignment.h"
#include "match/core_nodes.h"
#include "match/structure_match.h"
#include "match/weight_compare.h"
#include "model/layout.h"

namespace fetafix::match {
namespace {

// Score weights (see docs/matching.md): weight content dominates because it is the one feature
// that tells equal-shaped layers apart; structure decides when content is unknown.
constexpr double kContentWeight = 0.6, kStructureWeight = 0.4;
constexpr double kUnknownContent = 0.3;      // neither for nor against: a weightless side
constexpr double kFoldGain = 1e-5;           // folding must beat the plain comparison by this
constexpr double kChannelwiseDiscount = 0.95;
constexpr double kPairFloor = 0.45;          // below this a pair is worse than no pair
constexpr double kMarginScale = 0.05;
constexpr double kStructureConfidence = 0.8;  // a structure pair's confidence: this times its score,
constexpr double kAmbiguousDiscount = 0.75;   // times this when another candidate scored as well

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

struct PairScore {
  double total = -1;  // -1: not allowed (another op family)
  double shape = 0, attributes = 0, position = 0;
  ContentMatch content;
};

PairScore score_pair(const CoreNode& s, const WeightForms& sf, const CoreNode& t, const WeightForms& tf) {
  PairScore p;
  if (s.family != t.family) return p;
  p.content = compare_content(s, sf, t, tf);
  const StructureScore st = structure_score(s, t);
  p.shape = st.shape;
  p.attributes = st.attributes;
  p.position = st.position;
  const double structure = st.total;
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

struct IndexedMatch {
  size_t source = 0, target = 0;  // core-node indices
  NodeMatch match;
};

// A Conv reads its weight as OIHW whatever the storage: only the Transposes between the stored
// tensor and the node are a layout change. A kernel that matches only after permuting what the
// Conv itself reads (e.g. H and W swapped) is a weight fault for WB to report, so a permutation
// found by the content search is not passed on for Convs.
std::vector<int64_t> layout_change(const CoreNode& s, const CoreNode& t, std::vector<int64_t> effective) {
  const bool reads_fixed_layout = s.family == "Conv" || s.family == "ConvTranspose";
  if (reads_fixed_layout && !effective.empty())
    for (size_t d = 0; d < effective.size(); ++d) effective[d] = static_cast<int64_t>(d);
  return stored_permutation(s, t, effective);
}

// The one-to-one assignment on weight content and structure together.
std::vector<IndexedMatch> match_by_content(const std::vector<CoreNode>& sc, const std::vector<CoreNode>& tc,
                                           const MatchOptions& options) {
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
  std::vector<IndexedMatch> out;
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
    m.weight_permutation = layout_change(sc[i], tc[col], p.content.effective_permutation);
    m.bn_folded_in_target = p.content.folded_in_target;
    m.bn_folded_in_source = p.content.folded_in_source;
    if (m.bn_folded_in_target) m.folded_bn_node = sc[i].bn_node;
    if (m.bn_folded_in_source) m.folded_bn_node = tc[col].bn_node;
    m.evidence = describe(p, m, margin);
    m.method = MatchMethod::kContent;
    out.push_back({i, col, std::move(m)});
  }
  return out;
}

// The fallback: what content left unpaired, aligned by structure in topological order.
std::vector<IndexedMatch> match_by_structure(const std::vector<CoreNode>& sc, const std::vector<CoreNode>& tc,
                                             const std::vector<IndexedMatch>& content, const MatchOptions& options) {
  std::vector<std::pair<size_t, size_t>> anchors;
  for (const auto& c : content) anchors.emplace_back(c.source, c.target);
  std::vector<IndexedMatch> out;
  for (const auto& p : align_by_structure(sc, tc, anchors, options.min_structure_score)) {
    const double confidence = kStructureConfidence * p.score.total * (p.alternatives ? kAmbiguousDiscount : 1.0);
    if (confidence < options.min_confidence) continue;
    NodeMatch m;
    m.source_node = sc[p.source].name;
    m.target_node = tc[p.target].name;
    m.confidence = confidence;
    m.method = MatchMethod::kStructure;
    if (sc[p.source].weight && tc[p.target].weight) {
      const auto fits = fitting_permutations(sc[p.source].weight->effective.shape, tc[p.target].weight->effective.shape);
      if (!fits.empty()) m.weight_permutation = layout_change(sc[p.source], tc[p.target], fits.front());
    }
    m.evidence = fmt::format(
        "structure (weights not compared: content paired {} of {} core layers): {} in topological order, weight shape "
        "{}, attributes {:.2f}, position {:.2f}; score {:.3f}{}",
        content.size(), std::min(sc.size(), tc.size()), sc[p.source].family,
        p.score.shape >= 1 ? "agrees" : "unknown", p.score.attributes, p.score.position, p.score.total,
        p.alternatives ? fmt::format(", {} other candidate(s) as good", p.alternatives) : "");
    out.push_back({p.source, p.target, std::move(m)});
  }
  return out;
}

}  // namespace

const char* match_method_name(MatchMethod method) {
  return method == MatchMethod::kStructure ? "structure" : "content";
}

Result<MatchResult> match_models(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 const MatchOptions& options) {
  auto source_cores = collect_core_nodes(source, options.core_ops);
  if (!source_cores.ok()) return make_error("matching: Source model: {}", source_cores.error().message);
  auto target_cores = collect_core_nodes(target, options.core_ops);
  if (!target_cores.ok()) return make_error("matching: Target model: {}", target_cores.error().message);
  const auto& sc = *source_cores;
  const auto& tc = *target_cores;

  std::vector<IndexedMatch> matches = match_by_content(sc, tc, options);
  MatchResult result;
  result.source_core = sc.size();
  result.target_core = tc.size();
  result.content_pairs = matches.size();
  const double smaller = static_cast<double>(std::min(sc.size(), tc.size()));
  if (smaller > 0 && static_cast<double>(matches.size()) < options.structure_fallback_below * smaller) {
    auto by_structure = match_by_structure(sc, tc, matches, options);
    result.structure_fallback = true;
    result.structure_pairs = by_structure.size();
    for (auto& m : by_structure) matches.push_back(std::move(m));
  }
  std::sort(matches.begin(), matches.end(),
            [](const IndexedMatch& a, const IndexedMatch& b) { return a.source < b.source; });
  std::vector<bool> source_taken(sc.size(), false), target_taken(tc.size(), false);
  for (auto& m : matches) {
    source_taken[m.source] = target_taken[m.target] = true;
    result.pairs.push_back(std::move(m.match));
  }
  for (size_t i = 0; i < sc.size(); ++i)
    if (!source_taken[i]) result.unmatched_source.push_back(sc[i].name);
  for (size_t j = 0; j < tc.size(); ++j)
    if (!target_taken[j]) result.unmatched_target.push_back(tc[j].name);
  return result;
}

}  // namespace fetafix::match
