#include "localize/equivalence_rules.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "match/match.h"
#include "model/attributes.h"
#include "model/batch_norm.h"
#include "model/resolve_weight.h"

namespace fetafix::localize {
namespace {

// One step of a region read as a chain: a Mul or Add by a constant (`constant` set), or any other
// node compared by op type, attributes and constant inputs (`inputs`: per input its values when it
// is a weight; a core layer's weights are left out, the WB check compares them).
struct Step {
  std::string op;
  const onnx::NodeProto* node = nullptr;
  std::vector<float> constant;
  bool from_batch_norm = false;
  std::vector<std::optional<std::vector<float>>> inputs;
};

std::optional<std::vector<float>> weight_values(const onnx::ModelProto& model, const model::GraphView& view,
                                                const std::string& value) {
  auto w = model::resolve_weight(model, view, value);
  if (!w.ok() || !w->has_value()) return std::nullopt;
  return (*w)->values;
}

// BatchNormalization as Mul(a) then Add(c); nullopt when its parameters are not weights.
std::optional<std::pair<Step, Step>> batch_norm_steps(const onnx::ModelProto& model, const model::GraphView& view,
                                                      const onnx::NodeProto& node) {
  if (node.input_size() < 5) return std::nullopt;
  std::vector<std::vector<float>> p;  // gamma, beta, mean, var
  for (int i = 1; i < 5; ++i) {
    auto v = weight_values(model, view, node.input(i));
    if (!v) return std::nullopt;
    p.push_back(std::move(*v));
  }
  const size_t channels = p[0].size();
  if (p[1].size() != channels || p[2].size() != channels || p[3].size() != channels) return std::nullopt;
  const auto epsilon = model::get_float_or(node, "epsilon", 1e-5f);
  if (!epsilon.ok()) return std::nullopt;
  const std::vector<double> a = model::batch_norm_scale(p[0], p[3], *epsilon);
  Step mul{"Mul", nullptr, std::vector<float>(channels), true}, add{"Add", nullptr, std::vector<float>(channels), true};
  for (size_t c = 0; c < channels; ++c) {
    mul.constant[c] = static_cast<float>(a[c]);
    add.constant[c] = static_cast<float>(p[1][c] - p[2][c] * a[c]);
  }
  return std::make_pair(std::move(mul), std::move(add));
}

// A Mul or Add whose one input is an activation and the other a constant; nullopt otherwise.
std::optional<Step> constant_step(const onnx::ModelProto& model, const model::GraphView& view,
                                  const onnx::NodeProto& node) {
  if ((node.op_type() != "Mul" && node.op_type() != "Add") || node.input_size() != 2) return std::nullopt;
  auto first = weight_values(model, view, node.input(0)), second = weight_values(model, view, node.input(1));
  if (first.has_value() == second.has_value()) return std::nullopt;
  return Step{node.op_type(), nullptr, first ? std::move(*first) : std::move(*second), false};
}

// The region's nodes as steps, in its canonical order; nullopt when a node is missing.
std::optional<std::vector<Step>> steps_of(const onnx::ModelProto& model, const model::GraphView& view,
                                          const RegionNames& region) {
  std::vector<Step> steps;
  for (const auto& name : region.nodes) {
    const auto index = view.find_node(name);
    if (!index) return std::nullopt;
    const onnx::NodeProto& node = view.node(*index);
    if (node.op_type() == "Identity") continue;
    if (node.op_type() == "BatchNormalization") {
      if (auto bn = batch_norm_steps(model, view, node)) {
        steps.push_back(std::move(bn->first));
        steps.push_back(std::move(bn->second));
        continue;
      }
    }
    if (auto c = constant_step(model, view, node)) {
      steps.push_back(std::move(*c));
      continue;
    }
    Step other{node.op_type(), &node, {}, false, {}};
    if (!match::default_core_ops().count(node.op_type()))
      for (const auto& input : node.input()) other.inputs.push_back(weight_values(model, view, input));
    steps.push_back(std::move(other));
  }
  return steps;
}

std::map<std::string, std::string> attributes_of(const onnx::NodeProto& node) {
  std::map<std::string, std::string> out;
  for (const auto& a : node.attribute()) out[a.name()] = a.SerializeAsString();
  return out;
}

bool constants_match(const std::vector<float>& s, const std::vector<float>& t, double rtol, double atol) {
  if (s.size() != t.size()) return false;
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(s[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(s[i]) - t[i]));
  }
  return max_diff <= rtol * max_abs + atol;
}

bool steps_match(const Step& s, const Step& t, double rtol, double atol) {
  const bool s_constant = s.node == nullptr, t_constant = t.node == nullptr;
  if (s.op != t.op || s_constant != t_constant) return false;
  if (s_constant) return constants_match(s.constant, t.constant, rtol, atol);
  if (attributes_of(*s.node) != attributes_of(*t.node) || s.inputs.size() != t.inputs.size()) return false;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const auto &a = s.inputs[i], &b = t.inputs[i];
    if (a.has_value() != b.has_value() || (a && !constants_match(*a, *b, rtol, atol))) return false;
  }
  return true;
}

// Whether the region's names are its nodes': `output` made by one of them and `inputs` the
// activations they read from outside (broken evidence is left to the replay, which reports it).
bool names_agree(const model::GraphView& view, const RegionNames& region) {
  std::set<size_t> nodes;
  for (const auto& name : region.nodes)
    if (auto index = view.find_node(name)) nodes.insert(*index);
  const auto out = view.producer(region.output);
  if (nodes.size() != region.nodes.size() || !out || !nodes.count(*out)) return false;
  std::set<std::string> entries;
  for (size_t n : nodes)
    for (const auto& value : view.node(n).input()) {
      const auto from = view.producer(value);
      const bool activation = from ? view.reached_from_inputs(*from)
                                   : std::find(view.real_inputs().begin(), view.real_inputs().end(), value) !=
                                         view.real_inputs().end();
      if (activation && !(from && nodes.count(*from))) entries.insert(value);
    }
  return entries == std::set<std::string>(region.inputs.begin(), region.inputs.end());
}

}  // namespace

std::optional<std::string> exact_rule(const RuleModels& models, const JudgedRegions& regions, double rtol, double atol) {
  if (!names_agree(models.source_view, regions.source) || !names_agree(models.target_view, regions.target) ||
      regions.source.inputs.size() != regions.target.inputs.size())
    return std::nullopt;
  const auto s = steps_of(models.source, models.source_view, regions.source);
  const auto t = steps_of(models.target, models.target_view, regions.target);
  if (!s || !t || s->size() != t->size()) return std::nullopt;
  bool rewritten = false;  // a BatchNormalization on one side met a Mul + Add on the other
  for (size_t i = 0; i < s->size(); ++i) {
    if (!steps_match((*s)[i], (*t)[i], rtol, atol)) return std::nullopt;
    rewritten = rewritten || (*s)[i].from_batch_norm != (*t)[i].from_batch_norm;
  }
  if (!rewritten) return std::nullopt;
  return std::string("batch_norm_as_mul_add");
}

}  // namespace fetafix::localize
