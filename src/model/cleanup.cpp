#include "model/cleanup.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <onnx/checker.h>

#include "model/graph.h"
#include "model/opset.h"

namespace fetafix::model {
namespace {

using Uses = std::unordered_map<std::string, size_t>;

bool standard_domain(const onnx::NodeProto& node) {
  return node.domain().empty() || node.domain() == "ai.onnx" || node.domain() == "ai.onnx.ml";
}

// Every value a node reads (inputs and subgraph reads), once per read.
std::vector<std::string> reads(const onnx::NodeProto& node) {
  std::vector<std::string> out;
  for (const auto& i : node.input())
    if (!i.empty()) out.push_back(i);
  for (auto& r : implicit_inputs(node)) out.push_back(std::move(r));
  return out;
}

Uses count_uses(const onnx::GraphProto& g) {
  Uses uses;
  for (const auto& n : g.node())
    for (const auto& v : reads(n)) ++uses[v];
  for (const auto& o : g.output()) ++uses[o.name()];
  return uses;
}

bool dead(const onnx::NodeProto& node, const Uses& uses) {
  if (!standard_domain(node) || node.output_size() == 0) return false;
  return std::none_of(node.output().begin(), node.output().end(), [&](const std::string& o) {
    auto it = uses.find(o);
    return !o.empty() && it != uses.end() && it->second > 0;
  });
}

// Keeps the elements whose `keep[i]` is true, in order.
template <typename T>
void keep_only(google::protobuf::RepeatedPtrField<T>& field, const std::vector<bool>& keep) {
  google::protobuf::RepeatedPtrField<T> kept;
  for (int i = 0; i < field.size(); ++i)
    if (keep[static_cast<size_t>(i)]) *kept.Add() = std::move(*field.Mutable(i));
  field.Swap(&kept);
}

// Removes dead nodes, consumers first, until none is left (one backward pass suffices on a
// sorted node list; the loop covers an unsorted one).
void remove_dead_nodes(onnx::GraphProto& g, Uses& uses, CleanupReport& report) {
  const NodeNames names = name_nodes(g);
  std::vector<bool> keep(static_cast<size_t>(g.node_size()), true);
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = g.node_size() - 1; i >= 0; --i) {
      const auto& node = g.node(i);
      if (!keep[static_cast<size_t>(i)] || !dead(node, uses)) continue;
      keep[static_cast<size_t>(i)] = false;
      for (const auto& v : reads(node)) --uses[v];
      changed = true;
    }
  }
  for (size_t i = 0; i < keep.size(); ++i)
    if (!keep[i]) report.nodes_removed.push_back(names.names[i]);
  keep_only(*g.mutable_node(), keep);
}

void remove_unused_initializers(onnx::GraphProto& g, const Uses& uses, CleanupReport& report) {
  std::set<std::string> removed;
  std::vector<bool> keep(static_cast<size_t>(g.initializer_size()), true);
  for (int i = 0; i < g.initializer_size(); ++i) {
    const std::string& name = g.initializer(i).name();
    auto it = uses.find(name);
    if (it != uses.end() && it->second > 0) continue;
    keep[static_cast<size_t>(i)] = false;
    removed.insert(name);
    report.initializers_removed.push_back(name);
  }
  keep_only(*g.mutable_initializer(), keep);
  std::vector<bool> keep_input(static_cast<size_t>(g.input_size()), true);
  for (int i = 0; i < g.input_size(); ++i) keep_input[static_cast<size_t>(i)] = !removed.count(g.input(i).name());
  keep_only(*g.mutable_input(), keep_input);
}

void remove_stale_value_info(onnx::GraphProto& g, CleanupReport& report) {
  std::unordered_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) defined.insert(o);
  std::unordered_set<std::string> seen;
  std::vector<bool> keep(static_cast<size_t>(g.value_info_size()), true);
  for (int i = 0; i < g.value_info_size(); ++i) {
    const std::string& name = g.value_info(i).name();
    if (defined.count(name) && seen.insert(name).second) continue;
    keep[static_cast<size_t>(i)] = false;
    report.value_info_removed.push_back(name);
  }
  keep_only(*g.mutable_value_info(), keep);
}

// What onnx::checker checks first, without operator schemas: single definitions, inputs defined
// before use, outputs defined, unique node and initializer names.
Status check_structure(const onnx::GraphProto& g) {
  std::unordered_set<std::string> defined, node_names, initializers;
  auto define = [&](const std::string& v, std::string_view what) -> Status {
    if (v.empty()) return {};
    if (!defined.insert(v).second) return make_error("value '{}' is defined twice ({})", v, what);
    return {};
  };
  for (const auto& v : g.input()) FETAFIX_TRY_STATUS(define(v.name(), "graph input"));
  for (const auto& t : g.initializer()) {
    if (!initializers.insert(t.name()).second) return make_error("initializer '{}' appears twice", t.name());
    if (!defined.count(t.name())) FETAFIX_TRY_STATUS(define(t.name(), "initializer"));
  }
  const NodeNames names = name_nodes(g);
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (!n.name().empty() && !node_names.insert(n.name()).second)
      return make_error("node name '{}' is used twice", n.name());
    for (const auto& in : n.input())
      if (!in.empty() && !defined.count(in))
        return make_error("node '{}' reads '{}' before it is defined (or it is never defined)",
                          names.names[static_cast<size_t>(i)], in);
    for (const auto& o : n.output()) FETAFIX_TRY_STATUS(define(o, "node output"));
  }
  for (const auto& o : g.output())
    if (!defined.count(o.name())) return make_error("graph output '{}' is not defined", o.name());
  return {};
}

}  // namespace

CleanupReport cleanup_model(onnx::ModelProto& model) {
  CleanupReport report;
  onnx::GraphProto& g = *model.mutable_graph();
  Uses uses = count_uses(g);
  remove_dead_nodes(g, uses, report);
  remove_unused_initializers(g, uses, report);
  remove_stale_value_info(g, report);
  return report;
}

Result<ModelCheck> check_model(const onnx::ModelProto& model) {
  if (!model.has_graph()) return make_error("the model has no graph");
  if (default_opset(model) <= 17 && model.ir_version() <= 8) {
    try {
      onnx::checker::check_model(model);
    } catch (const std::exception& e) {
      std::string message = e.what();
      if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
      return make_error("ONNX checker: {}", message);
    }
    return ModelCheck{true};
  }
  if (auto st = check_structure(model.graph()); !st.ok())
    return make_error("structure check (opset {}, IR {}): {}", default_opset(model), model.ir_version(),
                      st.error().message);
  return ModelCheck{false};
}

}  // namespace fetafix::model
