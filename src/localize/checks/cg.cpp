// CG (paper §4.1, computational graph): the region from the previous core layer (or fork point)
// to each matched layer, compared as op sequences (an operator form counted as one op of its
// kind: which function it computes is the LH op_form check's); and graph outputs the Target has
// and the Source does not. Region findings go through the equivalence filter; their repair copies
// the Source's region in; an extra output's repair removes it.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "localize/checks/check.h"
#include "localize/layer_pairs.h"
#include "model/graph.h"

namespace fetafix::localize {
namespace {

using layer::Views;
using model::GraphView;
using nlohmann::json;

// The nodes computing `node` from the previous core layer or fork point (excluded). A core
// layer whose pair folds a BatchNormalization is walked through, so the BN's two placements
// end up inside one region.
std::vector<size_t> graph_region(const GraphView& view, size_t node, const std::set<std::string>& core_ops,
                                 const std::set<std::string>& folded_layers) {
  int64_t entry = view.immediate_dominator(node);
  while (entry >= 0) {
    const size_t e = static_cast<size_t>(entry);
    const bool boundary = core_ops.count(view.node(e).op_type()) || view.node_successors(e).size() > 1;
    if (boundary && !folded_layers.count(view.node_name(e))) break;
    entry = view.immediate_dominator(e);
  }
  std::vector<size_t> nodes;
  std::vector<bool> seen(view.node_count(), false);
  std::vector<size_t> stack{node};
  seen[node] = true;
  while (!stack.empty()) {
    const size_t x = stack.back();
    stack.pop_back();
    nodes.push_back(x);
    for (size_t p : view.node_predecessors(x))
      if (!seen[p] && static_cast<int64_t>(p) != entry && view.reached_from_inputs(p)) {
        seen[p] = true;
        stack.push_back(p);
      }
  }
  return nodes;
}

// Which recognized form (localize/op_forms.h) each node belongs to, and each form's kind.
struct FormsOfNodes {
  std::vector<int> form;  // per node: index into kinds, -1 for none
  std::vector<std::string_view> kinds;
};

FormsOfNodes forms_of_nodes(const onnx::ModelProto& model, const GraphView& view) {
  FormsOfNodes out{std::vector<int>(view.node_count(), -1), {}};
  for (const auto& f : find_op_forms(model, view)) {
    for (size_t n : f.nodes) out.form[n] = static_cast<int>(out.kinds.size());
    out.kinds.push_back(op_form_kind(f));
  }
  return out;
}

// The region's op sequence with each operator form written as one token of its kind: two
// regions that differ only in how an activation is spelled (Relu vs Clip, Relu → Min → Relu vs
// Clip) or in which activation function it is (the op_form check's finding) compare equal.
std::vector<std::string> sequence_with_forms(const GraphView& view, const layer::Region& r, const FormsOfNodes& forms,
                                             const LayerCheckOptions& options) {
  std::vector<std::string> ops;
  std::set<int> written;
  for (size_t n : r.nodes) {
    if (options.cg_ignored_ops.count(view.node(n).op_type())) continue;
    const int f = forms.form[n];
    if (f < 0) ops.push_back(view.node(n).op_type());
    else if (written.insert(f).second) ops.push_back("<" + std::string(forms.kinds[static_cast<size_t>(f)]) + ">");
  }
  return ops;
}

// A finding when the compared op sequences (cg_ignored_ops left out) differ also with operator
// forms written as one token each; nullopt otherwise.
std::optional<Finding> graph_finding(const Views& v, size_t s, size_t t, const layer::Region& rs,
                                     const layer::Region& rt, const match::NodeMatch& pair, int rank,
                                     const LayerCheckOptions& options, const FormsOfNodes& source_forms,
                                     const FormsOfNodes& target_forms) {
  if (sequence_with_forms(v.source, rs, source_forms, options) ==
      sequence_with_forms(v.target, rt, target_forms, options))
    return std::nullopt;
  GraphEvidence e;
  auto compared = [&](const GraphView& view, const layer::Region& r, std::vector<std::string>& ops,
                      std::vector<std::string>& names) {
    for (size_t n : r.nodes) {
      if (options.cg_ignored_ops.count(view.node(n).op_type())) continue;
      ops.push_back(view.node(n).op_type());
      names.push_back(view.node_name(n));
    }
  };
  compared(v.source, rs, e.source_ops, e.source_nodes);
  compared(v.target, rt, e.target_ops, e.target_nodes);
  if (e.source_ops == e.target_ops) return std::nullopt;
  const auto& s_ops = e.source_ops;
  const auto& t_ops = e.target_ops;
  size_t first = 0;
  while (first < s_ops.size() && first < t_ops.size() && s_ops[first] == t_ops[first]) ++first;
  auto at = [](const std::vector<std::string>& ops, size_t i) { return i < ops.size() ? ops[i] : std::string("(end)"); };
  const std::string target_node = v.target.node_name(t);
  std::string summary = fmt::format("graph before {} '{}' differs at op {}: Source {}, Target {} ({} vs {} ops)",
                                    v.source.node(s).op_type(), target_node, first, at(s_ops, first), at(t_ops, first),
                                    s_ops.size(), t_ops.size());
  e.first_difference = first;
  e.core_source_node = pair.source_node;
  e.core_target_node = pair.target_node;
  e.regions.source = layer::region_names(v.source, rs);
  e.regions.target = layer::region_names(v.target, rt);
  return make_finding(std::move(e), v.source.node_name(s), target_node, std::move(summary), rank);
}

}  // namespace

Result<std::vector<Finding>> check_graph(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                         const std::vector<match::NodeMatch>& pairs,
                                         const LayerCheckOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(Views v, layer::build_views(source, target));
  std::set<std::string> folded_source, folded_target;
  for (const auto& p : pairs)
    if (p.bn_folded_in_source || p.bn_folded_in_target) {
      folded_source.insert(p.source_node);
      folded_target.insert(p.target_node);
    }
  const FormsOfNodes source_forms = forms_of_nodes(source, v.source), target_forms = forms_of_nodes(target, v.target);
  std::vector<Finding> out;
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    FETAFIX_ASSIGN_OR_RETURN(auto nodes, layer::locate(v, pairs[rank]));
    auto [s, t] = nodes;
    if (!v.source.reached_from_inputs(s) || !v.target.reached_from_inputs(t)) continue;
    auto s_nodes = graph_region(v.source, s, options.core_ops, folded_source);
    auto t_nodes = graph_region(v.target, t, options.core_ops, folded_target);
    // When this layer's BN is folded into one side, that side's layer output already holds
    // the BN: the other side's region ends at its BN so both compute the same value.
    size_t s_last = s, t_last = t;
    const auto& pair = pairs[rank];
    if (pair.bn_folded_in_target && !pair.folded_bn_node.empty())
      if (auto bn = v.source.find_node(pair.folded_bn_node)) {
        s_nodes.push_back(s);
        s_last = *bn;
      }
    if (pair.bn_folded_in_source && !pair.folded_bn_node.empty())
      if (auto bn = v.target.find_node(pair.folded_bn_node)) {
        t_nodes.push_back(t);
        t_last = *bn;
      }
    const auto rs = layer::make_region(v.source, s_nodes, s_last);
    const auto rt = layer::make_region(v.target, t_nodes, t_last);
    if (auto f = graph_finding(v, s, t, rs, rt, pairs[rank], static_cast<int>(rank), options, source_forms,
                               target_forms))
      out.push_back(std::move(*f));
  }
  return out;
}

Result<std::vector<Finding>> check_extra_outputs(const onnx::ModelProto& source, const onnx::ModelProto& target) {
  const auto& so = source.graph().output();
  const auto& to = target.graph().output();
  std::vector<Finding> out;
  if (to.size() <= so.size()) return out;
  std::vector<bool> source_paired(static_cast<size_t>(so.size())), target_paired(static_cast<size_t>(to.size()));
  for (int t = 0; t < to.size(); ++t)
    for (int s = 0; s < so.size(); ++s)
      if (!source_paired[s] && so[s].name() == to[t].name()) source_paired[s] = target_paired[t] = true;
  auto elem = [](const onnx::ValueInfoProto& v) { return v.type().tensor_type().elem_type(); };
  for (int t = 0; t < to.size(); ++t) {
    if (target_paired[t]) continue;
    for (int s = 0; s < so.size(); ++s)
      if (!source_paired[s] && elem(so[s]) == elem(to[t])) {
        source_paired[s] = target_paired[t] = true;
        break;
      }
  }
  std::vector<std::string> source_names, target_names;
  for (const auto& v : so) source_names.push_back(v.name());
  for (const auto& v : to) target_names.push_back(v.name());
  const auto names = model::name_nodes(target.graph());
  for (int t = 0; t < to.size(); ++t) {
    if (target_paired[t]) continue;
    std::string target_node;
    for (int n = 0; n < target.graph().node_size(); ++n)
      for (const auto& o : target.graph().node(n).output())
        if (o == to[t].name()) target_node = names.names[static_cast<size_t>(n)];
    std::string summary = fmt::format("graph output '{}' exists in the Target only ({} outputs vs {} in the Source)",
                                      to[t].name(), to.size(), so.size());
    out.push_back(make_finding(ExtraOutputEvidence{to[t].name(), source_names, target_names}, "", target_node,
                               std::move(summary)));
  }
  return out;
}

json GraphEvidence::to_json() const {
  json j{
      {"source_ops", source_ops},
      {"target_ops", target_ops},
      {"source_nodes", source_nodes},
      {"target_nodes", target_nodes},
      {"first_difference", first_difference},
      {"core_source_node", core_source_node},
      {"core_target_node", core_target_node},
  };
  regions.add_to(j);
  return j;
}

json ExtraOutputEvidence::to_json() const {
  return {{"target_output", target_output}, {"source_outputs", source_outputs}, {"target_outputs", target_outputs}};
}

Result<std::vector<Finding>> GraphEvidence::run(const CheckContext& c) {
  return check_graph(*c.source.model, *c.target.model, c.matching->pairs, *c.layer_options);
}

Result<std::vector<Finding>> ExtraOutputEvidence::run(const CheckContext& c) {
  return check_extra_outputs(*c.source.model, *c.target.model);
}

}  // namespace fetafix::localize
