// CG: an extra graph output is removed; a differing region is replaced by a copy of the Source's
// (src/localize/checks/cg.cpp).
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "model/edit.h"
#include "model/graph.h"
#include "model/layout.h"
#include "model/resolve_weight.h"
#include "model/weights.h"
#include "repair/strategies/strategies.h"

namespace fetafix::repair::detail {
namespace {

// Renamed copies of the Source region's nodes, reading the Target's entry values, with the
// Source's weights added as new initializers. `renamed` maps Source values to Target values
// (the entries on the way in; every copied output on the way out).
struct RegionCopy {
  std::vector<onnx::NodeProto> nodes;
  std::map<std::string, std::string> renamed;
  size_t weights_copied = 0;
};

// A weight a copied node reads: stored ones keep their dtype; computed ones (a DequantizeLinear
// chain) are copied as the float values the node sees. Returns the new initializer's name.
Result<std::string> copy_weight(const model::GraphView& sview, const std::string& node, const std::string& in,
                                PlanContext& c) {
  Tensor t;
  if (model::is_weight(c.source, in)) {
    FETAFIX_ASSIGN_OR_RETURN(t, model::get_weight(c.source, in));
  } else {
    FETAFIX_ASSIGN_OR_RETURN(auto w, model::resolve_weight(c.source, sview, in));
    if (!w) return make_error("{}: Source node '{}' reads '{}' from outside the region", c.label(), node, in);
    t = model::float_tensor(w->values, w->shape);
  }
  Plan& plan = c.plan();
  const std::string value = plan.unique_value_name("fetafix_cg_" + in);
  FETAFIX_TRY_STATUS(plan.add(model::Edit::add_initializer(value, t)));
  return value;
}

Status copy_source_region(const localize::GraphEvidence& e, PlanContext& c, RegionCopy& copy) {
  FETAFIX_ASSIGN_OR_RETURN(auto sview, model::GraphView::build(c.source.graph()));
  Plan& plan = c.plan();
  for (const auto& name : e.regions.source.nodes) {
    auto i = sview.find_node(name);
    if (!i) return make_error("{}: no node named '{}' in the Source", c.label(), name);
    onnx::NodeProto node = sview.node(*i);
    for (int k = 0; k < node.input_size(); ++k) {
      const std::string in = node.input(k);
      if (in.empty()) continue;
      if (auto r = copy.renamed.find(in); r != copy.renamed.end()) {
        node.set_input(k, r->second);
        continue;
      }
      FETAFIX_ASSIGN_OR_RETURN(std::string value, copy_weight(sview, name, in, c));
      ++copy.weights_copied;
      copy.renamed[in] = value;
      node.set_input(k, value);
    }
    node.set_name(plan.unique_node_name("fetafix_cg_" + name));
    for (int k = 0; k < node.output_size(); ++k) {
      if (node.output(k).empty()) continue;
      std::string value = plan.unique_value_name("fetafix_cg_" + node.output(k));
      // Reserve the name against later copies before the node is inserted.
      for (const auto& earlier : copy.nodes)
        for (const auto& o : earlier.output())
          if (o == value)
            value = plan.unique_value_name("fetafix_cg_" + node.output(k) + "_" + std::to_string(copy.nodes.size()));
      copy.renamed[node.output(k)] = value;
      node.set_output(k, value);
    }
    copy.nodes.push_back(std::move(node));
  }
  return {};
}

}  // namespace

Status plan_for(const localize::ExtraOutputEvidence& e, PlanContext& c) {
  FETAFIX_TRY_STATUS(c.plan().add(model::Edit::remove_graph_output(e.target_output)));
  c.description = fmt::format("CG: remove the extra graph output '{}'", e.target_output);
  return {};
}

// The Target region is replaced by renamed copies of the Source region's nodes, reading the
// Target's entry values, with the Source's weights as new initializers; the consumers of the
// Target region's output are pointed at the copy's, and the old nodes are removed where
// nothing else reads them.
Status plan_for(const localize::GraphEvidence& e, PlanContext& c) {
  const auto& sr = e.regions.source;
  const auto& tr = e.regions.target;
  if (sr.inputs.size() != tr.inputs.size())
    return make_error("{}: the regions have {} and {} entry values", c.label(), sr.inputs.size(), tr.inputs.size());
  Plan& plan = c.plan();
  const std::string& t_out = tr.output;
  {
    FETAFIX_ASSIGN_OR_RETURN(auto tview, model::GraphView::build(plan.model().graph()));
    if (tview.is_graph_output(t_out))
      return make_error("{}: the region output '{}' is a graph output; replacing it is not supported", c.label(), t_out);
    if (tview.consumers(t_out).empty()) return make_error("{}: nothing reads the region output '{}'", c.label(), t_out);
  }
  // Who reads the old output, remembered by their first output (synthesized names shift).
  std::vector<std::pair<std::string, int>> readers;
  for (const auto& n : plan.model().graph().node())
    for (int k = 0; k < n.input_size(); ++k)
      if (n.input(k) == t_out) {
        if (n.output_size() == 0) return make_error("{}: a reader of '{}' has no output", c.label(), t_out);
        readers.emplace_back(n.output(0), k);
      }
  int position = plan.model().graph().node_size();
  for (const auto& [out, k] : readers) position = std::min(position, plan.producer_index(out));

  // Old region nodes, by first output, consumers first (so each removal frees its inputs).
  std::vector<std::string> old_outputs;
  for (const auto& name : tr.nodes) {
    auto i = model::find_node(plan.model().graph(), name);
    if (!i) return make_error("{}: no node named '{}' in the Target", c.label(), name);
    const auto& n = plan.model().graph().node(static_cast<int>(*i));
    if (n.output_size()) old_outputs.push_back(n.output(0));
  }

  RegionCopy copy;
  for (size_t i = 0; i < sr.inputs.size(); ++i) copy.renamed[sr.inputs[i]] = tr.inputs[i];
  FETAFIX_TRY_STATUS(copy_source_region(e, c, copy));
  auto out = copy.renamed.find(sr.output);
  if (out == copy.renamed.end()) return make_error("{}: the Source region does not compute '{}'", c.label(), sr.output);
  for (size_t k = 0; k < copy.nodes.size(); ++k)
    FETAFIX_TRY_STATUS(plan.add(model::Edit::insert_node(copy.nodes[k], position + static_cast<int64_t>(k))));
  for (const auto& [reader_output, k] : readers)
    FETAFIX_TRY_STATUS(plan.add(model::Edit::set_node_input(plan.producer_name(reader_output), k, out->second)));
  size_t removed = 0;
  for (auto it = old_outputs.rbegin(); it != old_outputs.rend(); ++it) {
    const std::string name = plan.producer_name(*it);
    if (!name.empty() && plan.try_add(model::Edit::remove_node(name))) ++removed;
  }
  c.description = fmt::format("CG: {} Target node(s) replaced by {} Source node(s) ({} weight(s) copied), output '{}' -> '{}'",
                              removed, copy.nodes.size(), copy.weights_copied, t_out, out->second);
  return {};
}

}  // namespace fetafix::repair::detail
