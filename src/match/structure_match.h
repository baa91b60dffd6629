// Matching by structure, for when weight content cannot pair layers (a re-initialized or
// retrained Target, zeroed weights): the core nodes left unpaired between consecutive pairs are
// aligned in topological order by op family, weight shape, geometry attributes and position.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "match/core_nodes.h"

namespace fetafix::match {

// How alike two core nodes are without looking at weight values, 0..1 (-1 for another op family):
//   0.35 * shape + 0.25 * attributes + 0.40 * position
// shape: 1 when the weight shape signatures agree, 0 when they differ, 0.5 when a side has no
// weight; attributes: the share of kernel_shape, strides, dilations, group that agree; position:
// 1 - mean gap of depth/ancestors/descendants over 0.25, at least 0. Structure alone pairs two
// nodes only when they are `compatible`: the same family and no weight shapes that differ.
struct StructureScore {
  double total = -1;
  double shape = 0, attributes = 0, position = 0;
  bool compatible = false;
};
StructureScore structure_score(const CoreNode& source, const CoreNode& target);

struct StructurePair {
  size_t source = 0, target = 0;  // indices into the core-node lists
  StructureScore score;
  size_t alternatives = 0;        // other unpaired Target nodes in the same gap scoring as well
};

// Order-preserving alignment of the core nodes that `anchors` (pairs already made, as indices)
// leave unpaired: between consecutive anchors (after dropping anchors that cross), the best
// total structure score over pairings that keep both topological orders; a pair needs at least
// `floor`. Deterministic.
std::vector<StructurePair> align_by_structure(const std::vector<CoreNode>& source, const std::vector<CoreNode>& target,
                                              const std::vector<std::pair<size_t, size_t>>& anchors, double floor);

}  // namespace fetafix::match
