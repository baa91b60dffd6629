// A read-only view over one onnx::GraphProto: who produces and who consumes each value,
// node names, topological order, dominators and value shapes. It points into the graph, so
// rebuild it after any edit (building is linear in the graph size, plus the dominator pass).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::model {

// One use of a value by a node. input_index is the position in node.input(), or -1 when the
// value is used implicitly by a subgraph of the node (an If/Loop body reading an outer value).
struct ValueUse {
  size_t node = 0;
  int input_index = 0;
};

// immediate_dominator() results that are not node indices.
inline constexpr int64_t kVirtualRoot = -1;  // the graph inputs, as one virtual root
inline constexpr int64_t kNotReached = -2;   // not computed from any graph input (weights, Constant chains)

// The name edits and reports use for every node of `graph`: its own name when it has a unique
// one; "<op_type>_<index>" for an unnamed node and for a later node repeating an earlier name
// (with "_<k>" appended if even that is taken). Deterministic: the same graph gives the same names.
struct NodeNames {
  std::vector<std::string> names;
  std::vector<bool> synthesized;
  std::unordered_map<std::string, size_t> index;
};
NodeNames name_nodes(const onnx::GraphProto& graph);
std::optional<size_t> find_node(const onnx::GraphProto& graph, std::string_view name);

// Writes the synthesized names into the graph so that later node inserts/removes cannot shift
// them. Returns how many nodes were renamed.
size_t assign_node_names(onnx::GraphProto& graph);

// Names used inside the subgraphs of `node` (If/Loop/Scan bodies) that those subgraphs do not
// define: outer values the node reads implicitly. Sorted.
std::vector<std::string> implicit_inputs(const onnx::NodeProto& node);

class GraphView {
 public:
  // Fails (naming a node on the cycle) when the node list has a cycle.
  static Result<GraphView> build(const onnx::GraphProto& graph);

  const onnx::GraphProto& graph() const { return *graph_; }
  size_t node_count() const { return names_.names.size(); }
  const onnx::NodeProto& node(size_t i) const { return graph_->node(static_cast<int>(i)); }
  const std::string& node_name(size_t i) const { return names_.names[i]; }
  bool node_name_synthesized(size_t i) const { return names_.synthesized[i]; }
  std::optional<size_t> find_node(std::string_view name) const;

  // The node producing `value`; nullopt for graph inputs, initializers and unknown names.
  std::optional<size_t> producer(const std::string& value) const;
  // Uses of `value`, by node index then input position.
  std::span<const ValueUse> consumers(const std::string& value) const;
  // Graph inputs that are not initializers (what a caller must feed), in declaration order.
  const std::vector<std::string>& real_inputs() const { return real_inputs_; }
  bool is_initializer(const std::string& value) const;
  bool is_graph_output(const std::string& value) const;

  // Node indices, producers before consumers; ties broken by original index.
  const std::vector<size_t>& topological_order() const { return topo_; }
  // Distinct producer nodes of a node's inputs (implicit subgraph inputs included), sorted.
  const std::vector<size_t>& node_predecessors(size_t node) const { return preds_[node]; }
  const std::vector<size_t>& node_successors(size_t node) const { return succs_[node]; }

  // Dominators over the data-flow DAG rooted at the real graph inputs: every path from any graph
  // input to `node` passes through the returned node (or kVirtualRoot when no single node does).
  // Nodes computed only from weights (Constant chains, weight DequantizeLinear) are kNotReached
  // and are left out of the DAG, so a Conv's weight branch does not hide its real dominator.
  int64_t immediate_dominator(size_t node) const { return idom_[node]; }
  bool reached_from_inputs(size_t node) const { return idom_[node] != kNotReached; }
  // Input-reached nodes on some path from `from` to `to`, both included, in topological order;
  // empty when `to` is not reachable from `from`.
  std::vector<size_t> nodes_between(size_t from, size_t to) const;
  // The region `node` is computed in from its immediate dominator: nodes_between(idom, node), or,
  // when the dominator is the virtual root, every input-reached ancestor of `node` and `node`.
  // Empty for a kNotReached node.
  std::vector<size_t> region_to_dominator(size_t node) const;

  // Shapes with -1 for unknown/symbolic dims. Declared: graph inputs/outputs, value_info,
  // initializers and Constant outputs; observed shapes merged in later win.
  std::optional<std::vector<int64_t>> shape(const std::string& value) const;
  DType dtype(const std::string& value) const;  // kUndefined when not declared
  void merge_observed_shapes(const std::map<std::string, std::vector<int64_t>>& observed);

 private:
  std::vector<size_t> ancestors_within(size_t to, const std::vector<bool>& allowed) const;

  const onnx::GraphProto* graph_ = nullptr;
  NodeNames names_;
  std::unordered_map<std::string, size_t> producer_;
  std::unordered_map<std::string, std::vector<ValueUse>> consumers_;
  std::unordered_set<std::string> initializers_;
  std::unordered_set<std::string> outputs_;
  std::vector<std::string> real_inputs_;
  std::vector<std::vector<size_t>> preds_, succs_;
  std::vector<size_t> topo_, topo_position_;
  std::vector<int64_t> idom_;
  std::unordered_map<std::string, std::vector<int64_t>> shapes_;
  std::unordered_map<std::string, DType> dtypes_;
};

}  // namespace fetafix::model
