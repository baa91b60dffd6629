// LH, operator substitution (docs/op-forms.md): the function each matched layer's output goes
// through next — an activation, a Resize, a softmax, recognized whatever its spelling
// (localize/op_forms.h) — compared between Source and Target. One finding per pair of forms that
// compute different functions; a different spelling of the same function is no finding. The
// equivalence filter then runs both forms on real activations (the Source's entry fed to both),
// so a ReLU for a ReLU6 whose inputs never exceed 6 is judged equivalent and left alone.
#include <algorithm>
#include <set>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "localize/checks/check.h"
#include "localize/layer_pairs.h"

namespace fetafix::localize {
namespace {

using layer::Views;
using model::GraphView;
using nlohmann::json;

// One model's forms, found once, and which of them reads each value.
struct SideForms {
  const GraphView& view;
  std::vector<OpForm> forms;
  std::unordered_map<std::string, size_t> reading;  // value -> the first form whose input it is
};

SideForms find_side_forms(const onnx::ModelProto& model, const GraphView& view, const OpFormOptions& options) {
  SideForms side{view, find_op_forms(model, view, options), {}};
  for (size_t i = 0; i < side.forms.size(); ++i) side.reading.emplace(side.forms[i].input, i);
  return side;
}

// The first form after `node`: the one reading its output, else the one after its only reader
// (a BatchNormalization, a bias Add, a residual Add ...) up to max_steps readers on, never
// through another core layer or a fork.
std::optional<size_t> form_after(const SideForms& side, size_t node, const LayerCheckOptions& options,
                                 size_t max_steps) {
  if (side.view.node(node).output_size() == 0) return std::nullopt;
  std::string value = side.view.node(node).output(0);
  for (size_t step = 0; step <= max_steps; ++step) {
    if (auto it = side.reading.find(value); it != side.reading.end()) return it->second;
    const auto readers = side.view.consumers(value);
    if (readers.size() != 1 || side.view.is_graph_output(value)) return std::nullopt;
    const auto& reader = side.view.node(readers[0].node);
    if (options.core_ops.count(reader.op_type()) || reader.output_size() == 0) return std::nullopt;
    value = reader.output(0);
  }
  return std::nullopt;
}

// A difference the attribute check (checks/lh.cpp) reports already: one node of the same op on
// both sides whose differing parameters are attributes it compares (Clip min/max, a softmax's
// axis). Reporting it twice would make two repairs of one fault.
bool attribute_check_sees(const OpForm& s, const OpForm& t, const LayerCheckOptions& options) {
  if (s.nodes.size() != 1 || t.nodes.size() != 1 || s.spelling != t.spelling) return false;
  auto compared = [&](const char* name) {
    return std::find(options.hyperparameters.begin(), options.hyperparameters.end(), name) !=
           options.hyperparameters.end();
  };
  if (s.spelling == "Clip") return compared("min") && compared("max");
  if (s.spelling == "Softmax" || s.spelling == "LogSoftmax" || s.spelling == "Hardmax") return compared("axis");
  return false;
}

Finding form_finding(const Views& v, const OpForm& s, const OpForm& t, const FormComparison& cmp,
                     const match::NodeMatch& pair, int rank) {
  OperatorFormEvidence e{.source_form = s,
                         .target_form = t,
                         .differences = cmp.differences,
                         .core_source_node = pair.source_node,
                         .core_target_node = pair.target_node};
  e.regions.source = layer::region_names(v.source, layer::make_region(v.source, s.nodes, s.nodes.back()));
  e.regions.target = layer::region_names(v.target, layer::make_region(v.target, t.nodes, t.nodes.back()));
  const std::string& source_node = s.node_names.back();
  const std::string& target_node = t.node_names.back();
  std::string summary = fmt::format("{} in Source ({}), {} in Target ({} '{}'): {}", s.describe(), s.spelling,
                                    t.describe(), t.spelling, target_node, cmp.summary());
  return make_finding(std::move(e), source_node, target_node, std::move(summary), rank);
}

json form_json(const OpForm& f) {
  return {{"function", op_function_name(f.function)},
          {"description", f.describe()},
          {"spelling", f.spelling},
          {"nodes", f.node_names},
          {"input", f.input},
          {"output", f.output}};
}

// The index of the model's only softmax-kind form (Softmax, LogSoftmax, Hardmax); nullopt when it
// has none or several.
std::optional<size_t> only_softmax(const SideForms& side) {
  std::optional<size_t> found;
  for (size_t i = 0; i < side.forms.size(); ++i) {
    if (side.forms[i].function != OpFunction::kSoftmax) continue;
    if (found) return std::nullopt;
    found = i;
  }
  return found;
}

bool matched(const std::vector<match::NodeMatch>& pairs, const std::string& source_node, const std::string& target_node) {
  return std::any_of(pairs.begin(), pairs.end(), [&](const match::NodeMatch& p) {
    return p.source_node == source_node && p.target_node == target_node;
  });
}

// A classifier's softmax is often reached from no matched layer: a port writes the head as a
// 1x1 Conv where the Source has a MatMul, and the two are not matched. When each graph has
// exactly one softmax, they are the same place of the network whatever the match says, so they
// are compared directly (by the sizes of the dims they reduce: observed shapes). Left out when
// either was compared through a layer already, or when the matcher paired the two nodes (the
// attribute check compares their axis then).
std::optional<Finding> lone_softmax_finding(const Views& v, const SideForms& src, const SideForms& tgt,
                                            const std::set<std::pair<size_t, size_t>>& seen,
                                            const std::vector<match::NodeMatch>& pairs, const OpFormOptions& options) {
  const auto s = only_softmax(src), t = only_softmax(tgt);
  if (!s || !t) return std::nullopt;
  for (const auto& [a, b] : seen)
    if (a == *s || b == *t) return std::nullopt;
  const OpForm& sf = src.forms[*s];
  const OpForm& tf = tgt.forms[*t];
  if (matched(pairs, sf.node_names.back(), tf.node_names.back())) return std::nullopt;
  const FormComparison cmp = compare_op_forms(sf, tf, options);
  if (cmp.same_function) return std::nullopt;
  match::NodeMatch pair;
  pair.source_node = sf.node_names.back();
  pair.target_node = tf.node_names.back();
  return form_finding(v, sf, tf, cmp, pair, static_cast<int>(pairs.size()));
}

}  // namespace

// Every matched pair's next form on both sides, compared; each pair of forms once (two layers
// feeding one residual Add reach the same form). Then the models' lone softmaxes, when no layer
// reached them.
Result<std::vector<Finding>> check_operator_forms(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                  const std::vector<match::NodeMatch>& pairs,
                                                  const LayerCheckOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(Views v, layer::build_views(source, target));
  v.source.merge_observed_shapes(options.source_shapes);  // softmax axes are compared by size
  v.target.merge_observed_shapes(options.target_shapes);
  const OpFormOptions form_options;
  const SideForms src = find_side_forms(source, v.source, form_options);
  const SideForms tgt = find_side_forms(target, v.target, form_options);
  // BatchNormalization, a bias Add and a residual Add may stand between a layer and its form.
  const size_t max_steps = options.max_neighbours;
  std::set<std::pair<size_t, size_t>> seen;
  std::vector<Finding> out;
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    FETAFIX_ASSIGN_OR_RETURN(auto nodes, layer::locate(v, pairs[rank]));
    const auto s = form_after(src, nodes.first, options, max_steps);
    const auto t = form_after(tgt, nodes.second, options, max_steps);
    if (!s || !t || !seen.insert({*s, *t}).second) continue;
    const OpForm& sf = src.forms[*s];
    const OpForm& tf = tgt.forms[*t];
    if (op_form_kind(sf) != op_form_kind(tf)) continue;  // a range Clip is no substitute for a softmax
    const FormComparison cmp = compare_op_forms(sf, tf, form_options);
    if (cmp.same_function || attribute_check_sees(sf, tf, options)) continue;
    out.push_back(form_finding(v, sf, tf, cmp, pairs[rank], static_cast<int>(rank)));
  }
  if (auto f = lone_softmax_finding(v, src, tgt, seen, pairs, form_options)) out.push_back(std::move(*f));
  return out;
}

json OperatorFormEvidence::to_json() const {
  json j{{"source_form", form_json(source_form)},
         {"target_form", form_json(target_form)},
         {"differences", differences},
         {"core_source_node", core_source_node},
         {"core_target_node", core_target_node}};
  regions.add_to(j);
  return j;
}

Result<std::vector<Finding>> OperatorFormEvidence::run(const CheckContext& c) {
  return check_operator_forms(*c.source.model, *c.target.model, c.matching->pairs, *c.layer_options);
}

}  // namespace fetafix::localize
