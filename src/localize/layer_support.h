// Helpers shared by the layer-based checks and the equivalence filter: the chain of small ops
// after a core layer, and the region a CG/LH finding is judged on. Internal to src/localize.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "model/graph.h"
#include "model/layout.h"
#include "model/model.h"
#include "model/opset.h"
#include "model/resolve_weight.h"
#include "localize/finding.h"

namespace fetafix::localize::layer {

// Moved to src/model (repair uses them too); these names stay for the localize code that uses them.
using model::default_opset;
using model::layout_alignment;
using model::permuted_shape;
using model::ResolvedWeight;
using model::resolve_weight;
using model::transpose;

// Ops that move or re-type data without computing: skipped (not counted) when walking the
// chain after a core layer, so NHWC and QDQ graphs pair their BN/Relu/MaxPool as well.
bool is_transparent_op(const std::string& op_type);

// The nodes after `node` along single-consumer edges, transparent ops skipped: up to
// `max_nodes`, stopping before any op in `stop_ops` and at the first fork. `skip_node` (a
// BatchNormalization folded on the other side) is passed over without being listed.
std::vector<size_t> following_chain(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                    size_t max_nodes, const std::string& skip_node);

// The nodes reached from `node`'s outputs within `max_depth` edges, in breadth-first order
// (consumers by node index), not through any op in `stop_ops` (which are not listed either);
// transparent ops are walked through but not listed. Unlike following_chain it goes past forks.
std::vector<size_t> nodes_downstream(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                     size_t max_depth);

// A connected piece of a graph computed from `inputs` (activations; weights are not inputs)
// to `output`. nodes are in a canonical order (post-order DFS from the output's producer,
// inputs visited by position), so two graphs listing their nodes differently agree.
struct Region {
  std::vector<size_t> nodes;
  std::vector<std::string> inputs;
  std::string output;
};
// Completes a region from its node set: canonical node order and entry values.
Region make_region(const model::GraphView& view, const std::vector<size_t>& node_set, size_t last_node);
// Its node names, op types, entry values and output, as findings carry them.
RegionNames region_names(const model::GraphView& view, const Region& region);

}  // namespace fetafix::localize::layer
