// How the layer-based checks (WB, LH, CG) walk the matched layers: both graphs' views, each
// pair located in them, the neighbours after a layer paired step by step, and one loop over
// pairs and neighbours. Internal to src/localize (checks/wb.cpp, checks/lh.cpp, checks/cg.cpp).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "localize/finding.h"
#include "localize/layer_checks.h"
#include "localize/layer_support.h"
#include "match/match.h"
#include "model/graph.h"

namespace fetafix::localize::layer {

// One model as a check sees it.
struct Side {
  const onnx::ModelProto& model;
  const model::GraphView& view;
  const std::map<std::string, std::vector<int64_t>>& observed_shapes;
  const char* label;  // "Source" / "Target"
};

struct Views {
  model::GraphView source, target;
};

Result<Views> build_views(const onnx::ModelProto& source, const onnx::ModelProto& target);
// The pair's node indices in both views; an error names a node that does not exist.
Result<std::pair<size_t, size_t>> locate(const Views& v, const match::NodeMatch& pair);

// Input `index` of `node` as a weight; nullopt when it is an activation or absent.
Result<std::optional<ResolvedWeight>> resolve_input(const Side& side, size_t node, int index);

// Nodes after the matched layers paired step by step while their op types agree. A BN folded
// into the other side's layer is passed over so the rest of the chain still pairs. With
// `fan_out`, nodes past the first fork (options.fan_out_depth) are paired too, by op type and
// order, for the op types both sides have equally many of there.
// `chained` says how many of the pairs (the first ones) come from the chains.
std::vector<std::pair<size_t, size_t>> neighbour_pairs(const Views& v, size_t s, size_t t, const match::NodeMatch& pair,
                                                       const LayerCheckOptions& options, bool fan_out, size_t& chained);

// Compares one Source node with its Target partner, appending findings (rank: the pair's place).
using PairCompare = std::function<Status(const Side&, const Side&, const Views&, size_t, size_t,
                                         const match::NodeMatch&, int, std::vector<Finding>&)>;
using KeepNeighbour = std::function<bool(const Views&, size_t)>;

// Calls compare_core_node on every pair and compare_neighbour_node on each of its paired
// neighbours (those `keep_neighbour` accepts), in the given pair order. With `fan_out`,
// neighbours past forks too (each Source node compared once: forks are shared by several
// layers' neighbourhoods).
Result<std::vector<Finding>> over_pairs_and_neighbours(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                       const std::vector<match::NodeMatch>& pairs,
                                                       const LayerCheckOptions& options, const PairCompare& compare_core_node,
                                                       const PairCompare& compare_neighbour_node,
                                                       const KeepNeighbour& keep_neighbour, bool fan_out = false);

}  // namespace fetafix::localize::layer
