#include "localize/layer_support.h"

#include <algorithm>
#include <functional>


namespace fetafix::localize::layer {

bool is_transparent_op(const std::string& op_type) {
  static const std::set<std::string> kTransparent{"Identity", "Cast",          "Transpose",      "Reshape",
                                                  "Squeeze",  "Unsqueeze",     "QuantizeLinear", "DequantizeLinear"};
  return kTransparent.count(op_type) != 0;
}

std::vector<size_t> following_chain(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                    size_t max_nodes, const std::string& skip_node) {
  std::vector<size_t> chain;
  size_t current = node;
  while (chain.size() < max_nodes) {
    const auto& n = view.node(current);
    if (n.output_size() == 0) break;
    auto uses = view.consumers(n.output(0));
    if (uses.size() != 1 || view.is_graph_output(n.output(0))) break;
    const size_t next = uses[0].node;
    const std::string& op = view.node(next).op_type();
    if (stop_ops.count(op)) break;
    current = next;
    if (is_transparent_op(op) || view.node_name(next) == skip_node) continue;
    chain.push_back(next);
  }
  return chain;
}

std::vector<size_t> nodes_downstream(const model::GraphView& view, size_t node, const std::set<std::string>& stop_ops,
                                     size_t max_depth) {
  std::vector<size_t> listed;
  std::set<size_t> seen{node};
  std::vector<size_t> frontier{node};
  for (size_t depth = 0; depth < max_depth && !frontier.empty(); ++depth) {
    std::vector<size_t> next;
    for (size_t n : frontier)
      for (const auto& out : view.node(n).output()) {
        if (out.empty()) continue;
        std::vector<size_t> users;
        for (const auto& use : view.consumers(out)) users.push_back(use.node);
        std::sort(users.begin(), users.end());
        for (size_t u : users) {
          if (!seen.insert(u).second || stop_ops.count(view.node(u).op_type())) continue;
          next.push_back(u);
          if (!is_transparent_op(view.node(u).op_type())) listed.push_back(u);
        }
      }
    frontier = std::move(next);
  }
  return listed;
}

Region make_region(const model::GraphView& view, const std::vector<size_t>& node_set, size_t last_node) {
  std::set<size_t> members(node_set.begin(), node_set.end());
  members.insert(last_node);
  Region region;
  std::set<size_t> visited;
  std::set<std::string> seen_inputs;
  // Post-order DFS from the last node: producers before consumers, inputs by position.
  std::function<void(size_t)> visit = [&](size_t n) {
    visited.insert(n);
    const auto& node = view.node(n);
    for (const auto& in : node.input()) {
      if (in.empty()) continue;
      auto p = view.producer(in);
      if (p && members.count(*p)) {
        if (!visited.count(*p)) visit(*p);
        continue;
      }
      const auto& real = view.real_inputs();
      const bool activation =
          p ? view.reached_from_inputs(*p) : std::find(real.begin(), real.end(), in) != real.end();
      if (activation && seen_inputs.insert(in).second) region.inputs.push_back(in);
    }
    region.nodes.push_back(n);
  };
  visit(last_node);
  const auto& last = view.node(last_node);
  region.output = last.output_size() > 0 ? last.output(0) : "";
  return region;
}

RegionNames region_names(const model::GraphView& view, const Region& region) {
  RegionNames names;
  for (size_t n : region.nodes) {
    names.nodes.push_back(view.node_name(n));
    names.ops.push_back(view.node(n).op_type());
  }
  names.inputs = region.inputs;
  names.output = region.output;
  return names;
}

}  // namespace fetafix::localize::layer
