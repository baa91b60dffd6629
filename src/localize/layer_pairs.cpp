#include "localize/layer_pairs.h"

#include <algorithm>

namespace fetafix::localize::layer {

Result<Views> build_views(const onnx::ModelProto& source, const onnx::ModelProto& target) {
  auto s = model::GraphView::build(source.graph());
  if (!s.ok()) return make_error("Source: {}", s.error().message);
  auto t = model::GraphView::build(target.graph());
  if (!t.ok()) return make_error("Target: {}", t.error().message);
  return Views{std::move(s).value(), std::move(t).value()};
}

Result<std::pair<size_t, size_t>> locate(const Views& v, const match::NodeMatch& pair) {
  auto s = v.source.find_node(pair.source_node);
  if (!s) return make_error("layer checks: Source has no node '{}'", pair.source_node);
  auto t = v.target.find_node(pair.target_node);
  if (!t) return make_error("layer checks: Target has no node '{}'", pair.target_node);
  return std::pair{*s, *t};
}


std::vector<std::pair<size_t, size_t>> neighbour_pairs(const Views& v, size_t s, size_t t, const match::NodeMatch& pair,
                                                       const LayerCheckOptions& options, bool fan_out, size_t& chained) {
  const auto chain_s = layer::following_chain(v.source, s, options.core_ops, options.max_neighbours,
                                              pair.bn_folded_in_target ? pair.folded_bn_node : "");
  const auto chain_t = layer::following_chain(v.target, t, options.core_ops, options.max_neighbours,
                                              pair.bn_folded_in_source ? pair.folded_bn_node : "");
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < std::min(chain_s.size(), chain_t.size()); ++i) {
    if (v.source.node(chain_s[i]).op_type() != v.target.node(chain_t[i]).op_type()) break;
    out.emplace_back(chain_s[i], chain_t[i]);
  }
  chained = out.size();
  if (!fan_out || options.fan_out_depth == 0) return out;
  std::set<size_t> paired_s, paired_t;
  for (auto [a, b] : out) paired_s.insert(a), paired_t.insert(b);
  auto by_op = [&](const model::GraphView& view, size_t from, const std::set<size_t>& paired) {
    std::map<std::string, std::vector<size_t>> m;
    for (size_t n : layer::nodes_downstream(view, from, options.core_ops, options.fan_out_depth))
      if (!paired.count(n)) m[view.node(n).op_type()].push_back(n);
    return m;
  };
  const auto near_s = by_op(v.source, s, paired_s), near_t = by_op(v.target, t, paired_t);
  for (const auto& [op, nodes] : near_s) {
    auto it = near_t.find(op);
    if (it == near_t.end() || it->second.size() != nodes.size()) continue;
    for (size_t i = 0; i < nodes.size(); ++i) out.emplace_back(nodes[i], it->second[i]);
  }
  return out;
}

Result<std::optional<ResolvedWeight>> resolve_input(const Side& side, size_t node, int index) {
  const auto& n = side.view.node(node);
  if (index < 0 || index >= n.input_size()) return std::optional<ResolvedWeight>{};
  return resolve_weight(side.model, side.view, n.input(index));
}

Result<std::vector<Finding>> over_pairs_and_neighbours(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                       const std::vector<match::NodeMatch>& pairs,
                                                       const LayerCheckOptions& options, const PairCompare& compare_core_node,
                                                       const PairCompare& compare_neighbour_node,
                                                       const KeepNeighbour& keep_neighbour, bool fan_out) {
  FETAFIX_ASSIGN_OR_RETURN(Views v, build_views(source, target));
  const Side src{source, v.source, options.source_shapes, "Source"};
  const Side tgt{target, v.target, options.target_shapes, "Target"};
  std::vector<Finding> out;
  std::set<size_t> compared;  // Source neighbours already compared
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    const auto& pair = pairs[rank];
    FETAFIX_ASSIGN_OR_RETURN(auto nodes, locate(v, pair));
    auto [s, t] = nodes;
    const int r = static_cast<int>(rank);
    FETAFIX_TRY_STATUS(compare_core_node(src, tgt, v, s, t, pair, r, out));
    size_t chained = 0;
    const auto neighbours = neighbour_pairs(v, s, t, pair, options, fan_out, chained);
    for (size_t i = 0; i < neighbours.size(); ++i) {
      auto [ns, nt] = neighbours[i];
      // Chain neighbours as before; a fan-out neighbour only the first time it is reached.
      if (!compared.insert(ns).second && i >= chained) continue;
      if (keep_neighbour(v, ns)) FETAFIX_TRY_STATUS(compare_neighbour_node(src, tgt, v, ns, nt, pair, r, out));
    }
  }
  return out;
}

}  // namespace fetafix::localize::layer
