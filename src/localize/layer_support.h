// Helpers shared by the layer-based checks and the equivalence filter: weights as the
// consuming node sees them, layout alignment, the chain of small ops after a core layer, and
// the region a CG/LH finding is judged on. Internal to src/localize.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "model/graph.h"

namespace fetafix::localize::layer {

// The default opset ("" / "ai.onnx" domain) of a model; 0 when not declared.
int64_t default_opset(const onnx::ModelProto& model);

// Row-major transpose of any dtype: out.shape[i] = t.shape[perm[i]].
Tensor transpose(const Tensor& t, const std::vector<int64_t>& perm);
std::vector<int64_t> permuted_shape(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm);

// The permutation p with permuted_shape(from, p) == to, tried in this order: identity,
// NCHW->NHWC, NHWC->NCHW (rank 4), swap of the last two dims (rank 3). nullopt when none fits.
// Ambiguous when dims repeat (e.g. C == H == W): the first fit wins.
std::optional<std::vector<int64_t>> layout_alignment(const std::vector<int64_t>& from, const std::vector<int64_t>& to);

// A weight as the node that consumes it sees it: the stored tensor followed through
// Identity, Cast, Transpose and DequantizeLinear producers.
struct ResolvedWeight {
  std::vector<float> values;
  std::vector<int64_t> shape;
  std::string stored_name;               // the initializer / Constant output holding the data
  DType stored_dtype = DType::kUndefined;
  std::vector<std::string> chain;        // op types followed, nearest the consumer first
  bool dequantized = false;
};
// nullopt when `value` is not computed from weights alone through those ops (an activation).
Result<std::optional<ResolvedWeight>> resolve_weight(const onnx::ModelProto& model, const model::GraphView& view,
                                                     const std::string& value);

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
nlohmann::json region_to_json(const model::GraphView& view, const Region& region);

}  // namespace fetafix::localize::layer
