#include "localize/layer_checks.h"

#include <functional>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include <fmt/format.h>

#include "localize/layer_support.h"
#include "model/attributes.h"
#include "model/graph.h"

namespace fetafix::localize {
namespace {

using layer::ResolvedWeight;
using model::GraphView;
using nlohmann::json;

struct Side {
  const onnx::ModelProto& model;
  const GraphView& view;
  const std::map<std::string, std::vector<int64_t>>& observed_shapes;
  const char* label;  // "Source" / "Target"
};

struct Views {
  GraphView source, target;
};

Result<Views> build_views(const onnx::ModelProto& source, const onnx::ModelProto& target) {
  auto s = GraphView::build(source.graph());
  if (!s.ok()) return make_error("Source: {}", s.error().message);
  auto t = GraphView::build(target.graph());
  if (!t.ok()) return make_error("Target: {}", t.error().message);
  return Views{std::move(s).value(), std::move(t).value()};
}

Result<std::pair<size_t, size_t>> locate(const Views& v, const match::NodeMatch& pair) {
  auto s = v.source.find_node(pair.source_node);
  if (!s) return make_error("layer checks: Source has no node '{}'", pair.source_node);
  auto t = v.target.find_node(pair.target_node);
  if (!t) return make_error("layer checks: Target has no node '{}'", pair.target_node);
  return std::pair{*s, *t};
}

// Nodes after the matched layers paired step by step while their op types agree. A BN folded
// into the other side's layer is passed over so the rest of the chain still pairs. With
// `fan_out`, nodes past the first fork (options.fan_out_depth) are paired too, by op type and
// order, for the op types both sides have equally many of there.
// `chained` says how many of the pairs (the first ones) come from the chains.
std::vector<std::pair<size_t, size_t>> neighbour_pairs(const Views& v, size_t s, size_t t, const match::NodeMatch& pair,
                                                       const LayerCheckOptions& options, bool fan_out, size_t& chained) {
  const auto chain_s = layer::following_chain(v.source, s, options.core_ops, options.max_neighbours,
                                              pair.bn_folded_in_target ? pair.folded_bn_node : "");
  const auto chain_t = layer::following_chain(v.target, t, options.core_ops, options.max_neighbours,
                                              pair.bn_folded_in_source ? pair.folded_bn_node : "");
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < std::min(chain_s.size(), chain_t.size()); ++i) {
    if (v.source.node(chain_s[i]).op_type() != v.target.node(chain_t[i]).op_type()) break;
    out.emplace_back(chain_s[i], chain_t[i]);
  }
  chained = out.size();
  if (!fan_out || options.fan_out_depth == 0) return out;
  std::set<size_t> paired_s, paired_t;
  for (auto [a, b] : out) paired_s.insert(a), paired_t.insert(b);
  auto by_op = [&](const model::GraphView& view, size_t from, const std::set<size_t>& paired) {
    std::map<std::string, std::vector<size_t>> m;
    for (size_t n : layer::nodes_downstream(view, from, options.core_ops, options.fan_out_depth))
      if (!paired.count(n)) m[view.node(n).op_type()].push_back(n);
    return m;
  };
  const auto near_s = by_op(v.source, s, paired_s), near_t = by_op(v.target, t, paired_t);
  for (const auto& [op, nodes] : near_s) {
    auto it = near_t.find(op);
    if (it == near_t.end() || it->second.size() != nodes.size()) continue;
    for (size_t i = 0; i < nodes.size(); ++i) out.emplace_back(nodes[i], it->second[i]);
  }
  return out;
}

std::string dtype_label(const ResolvedWeight* w) {
  return w ? std::string(dtype_name(w->stored_dtype)) : std::string("absent");
}

// ---- WB ----------------------------------------------------------------------------------

struct TensorDiff {
  int64_t differing = 0, total = 0;
  double max_abs = 0, mean_abs = 0;
};

TensorDiff diff_values(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol) {
  TensorDiff d;
  d.total = static_cast<int64_t>(b.size());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    if (std::isnan(x) || std::isnan(y)) {
      if (std::isnan(x) != std::isnan(y)) ++d.differing;
      continue;
    }
    const double diff = std::fabs(x - y);
    sum += diff;
    d.max_abs = std::max(d.max_abs, diff);
    if (diff > atol + rtol * std::fabs(x)) ++d.differing;
  }
  d.mean_abs = a.empty() ? 0 : sum / static_cast<double>(a.size());
  return d;
}

double max_magnitude(const std::vector<float>& v) {
  double m = 0;
  for (float x : v)
    if (!std::isnan(x)) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// One compared tensor of a pair; `source`/`target` null when that side has none.
struct WeightComparison {
  std::string role;  // "weight", "bias", "parameter"
  size_t source_node = 0, target_node = 0;
  int source_input = -1, target_input = -1;
  const ResolvedWeight* source = nullptr;
  const ResolvedWeight* target = nullptr;
  std::vector<float> source_values, target_values;  // as compared (source aligned/folded)
  std::vector<int64_t> permutation;                 // applied to the source (empty: none)
  bool folded = false;
  bool shape_mismatch = false;
};

void report_if_different(const Views& v, const match::NodeMatch& pair, int rank, const WeightComparison& c,
                         const LayerCheckOptions& options, std::vector<Finding>& out) {
  TensorDiff d;
  if (c.shape_mismatch) {
    d.total = static_cast<int64_t>(c.target_values.size());
    d.differing = std::max<int64_t>(d.total, 1);
  } else {
    const double atol = options.weight_atol + (c.folded ? options.folded_rtol * max_magnitude(c.source_values) : 0.0);
    d = diff_values(c.source_values, c.target_values, atol, options.weight_rtol);
  }
  if (d.differing == 0) return;

  Finding f;
  f.type = FaultType::kWB;
  f.source_node = v.source.node_name(c.source_node);
  f.target_node = v.target.node_name(c.target_node);
  f.layer_rank = rank;
  const std::string& op = v.target.node(c.target_node).op_type();
  if (c.shape_mismatch) {
    f.summary = fmt::format("{} of {} '{}' (input {}): shapes {} in Source, {} in Target", c.role, op, f.target_node,
                            c.target_input, c.source ? shape_to_string(c.source->shape) : "absent",
                            c.target ? shape_to_string(c.target->shape) : "absent");
  } else {
    f.summary = fmt::format("{} of {} '{}' (input {}): {} of {} elements differ, max |diff| {:.3g}, mean {:.3g}; {} vs {}",
                            c.role, op, f.target_node, c.target_input, d.differing, d.total, d.max_abs, d.mean_abs,
                            dtype_label(c.source), dtype_label(c.target));
  }
  auto side = [](const ResolvedWeight* w) {
    if (!w) return json{{"tensor", ""}, {"dtype", "absent"}, {"shape", json::array()}, {"chain", json::array()},
                        {"dequantized", false}};
    return json{{"tensor", w->stored_name}, {"dtype", dtype_name(w->stored_dtype)}, {"shape", w->shape},
                {"chain", w->chain}, {"dequantized", w->dequantized}};
  };
  const json s = side(c.source), t = side(c.target);
  f.evidence = {
      {"check", "weights"},
      {"role", c.role},
      {"source_tensor", s["tensor"]},
      {"target_tensor", t["tensor"]},
      {"input_index", c.target_input},
      {"source_input_index", c.source_input},
      {"layout_permutation", c.permutation},
      {"max_abs_diff", c.shape_mismatch ? json(nullptr) : json(d.max_abs)},
      {"mean_abs_diff", c.shape_mismatch ? json(nullptr) : json(d.mean_abs)},
      {"differing", d.differing},
      {"total", d.total},
      {"source_dtype", s["dtype"]},
      {"target_dtype", t["dtype"]},
      {"source_shape", s["shape"]},
      {"target_shape", t["shape"]},
      {"source_chain", s["chain"]},
      {"target_chain", t["chain"]},
      {"source_dequantized", s["dequantized"]},
      {"target_dequantized", t["dequantized"]},
      {"shape_mismatch", c.shape_mismatch},
      {"bn_folded", pair.bn_folded_in_target ? "target" : pair.bn_folded_in_source ? "source" : "none"},
      {"folded_bn_node", pair.folded_bn_node},
      {"core_source_node", pair.source_node},
      {"core_target_node", pair.target_node},
  };
  out.push_back(std::move(f));
}

Tensor float_tensor_of(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  Tensor t(DType::kFloat32, shape);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Fills c.source_values/target_values: flat when the counts agree, a single value broadcast,
// otherwise a shape mismatch.
void align_flat(WeightComparison& c, const std::vector<float>& s, const std::vector<float>& t) {
  c.target_values = t;
  if (s.size() == t.size()) {
    c.source_values = s;
  } else if (s.size() == 1) {
    c.source_values.assign(t.size(), s[0]);
  } else if (t.size() == 1) {
    c.target_values.assign(s.size(), t[0]);
    c.source_values = s;
  } else {
    c.shape_mismatch = true;
  }
}

// Chooses the layout under which the source weight matches the target best: identity, the
// pair's weight_permutation, or (2-D) a transpose for Gemm transB / MatMul differences.
void align_main_weight(WeightComparison& c, const std::vector<float>& s, const std::vector<int64_t>& s_shape,
                       const std::vector<float>& t, const std::vector<int64_t>& t_shape,
                       const std::vector<int64_t>& weight_permutation, const LayerCheckOptions& options) {
  std::vector<std::vector<int64_t>> candidates;
  std::vector<int64_t> identity(s_shape.size());
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int64_t>(i);
  candidates.push_back(identity);
  if (weight_permutation.size() == s_shape.size() && weight_permutation != identity)
    candidates.push_back(weight_permutation);
  if (s_shape.size() == 2) candidates.push_back({1, 0});
  c.target_values = t;
  bool found = false;
  int64_t best = std::numeric_limits<int64_t>::max();
  for (const auto& perm : candidates) {
    if (layer::permuted_shape(s_shape, perm) != t_shape) continue;
    std::vector<float> aligned = perm == identity ? s : layer::transpose(float_tensor_of(s, s_shape), perm).to_float();
    const int64_t differing = diff_values(aligned, t, options.weight_atol, options.weight_rtol).differing;
    if (!found || differing < best) {
      found = true;
      best = differing;
      c.source_values = std::move(aligned);
      c.permutation = perm == identity ? std::vector<int64_t>{} : perm;
    }
  }
  if (!found) c.shape_mismatch = true;
}

bool has_bias_slot(const std::string& op) { return op == "Conv" || op == "ConvTranspose" || op == "Gemm"; }

// Axis of the main weight that indexes output channels, as the node consumes it.
int64_t output_channel_axis(const onnx::NodeProto& node) {
  const std::string& op = node.op_type();
  if (op == "Conv") return 0;
  if (op == "ConvTranspose") return 1;
  if (op == "Gemm") return model::get_int_or(node, "transB", 0).ok() && model::get_int_or(node, "transB", 0).value() ? 0 : 1;
  return 1;  // MatMul [K, N]
}

Result<std::optional<ResolvedWeight>> resolve_input(const Side& side, size_t node, int index) {
  const auto& n = side.view.node(node);
  if (index < 0 || index >= n.input_size()) return std::optional<ResolvedWeight>{};
  return layer::resolve_weight(side.model, side.view, n.input(index));
}

// The input holding a core layer's main weight; -1 when none is a weight.
Result<int> main_weight_index(const Side& side, size_t node) {
  const auto& n = side.view.node(node);
  if (n.op_type() != "MatMul") return n.input_size() > 1 ? 1 : -1;
  for (int i : {1, 0}) {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, node, i));
    if (w) return i;
  }
  return -1;
}

// Folds BatchNormalization `bn_name` into (weight, bias) along `axis`:
// w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta.
Status fold_batch_norm(const Side& side, const std::string& bn_name, std::vector<float>& weight,
                       const std::vector<int64_t>& shape, int64_t axis, std::vector<float>& bias) {
  auto bn = side.view.find_node(bn_name);
  if (!bn || side.view.node(*bn).op_type() != "BatchNormalization")
    return make_error("{}: folded BatchNormalization '{}' not found", side.label, bn_name);
  std::vector<std::vector<float>> p;
  for (int i = 1; i <= 4; ++i) {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, *bn, i));
    if (!w) return make_error("{}: BatchNormalization '{}' input {} is not a weight", side.label, bn_name, i);
    p.push_back(std::move(w->values));
  }
  FETAFIX_ASSIGN_OR_RETURN(float eps, model::get_float_or(side.view.node(*bn), "epsilon", 1e-5f));
  const int64_t channels = shape.empty() ? 0 : shape[static_cast<size_t>(axis)];
  for (const auto& v : p)
    if (static_cast<int64_t>(v.size()) != channels)
      return make_error("{}: BatchNormalization '{}' has {} channels, the folded weight {} along axis {}", side.label,
                        bn_name, v.size(), channels, axis);
  std::vector<double> scale(static_cast<size_t>(channels));
  for (size_t c = 0; c < scale.size(); ++c) scale[c] = p[0][c] / std::sqrt(static_cast<double>(p[3][c]) + eps);
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  for (size_t i = 0; i < weight.size(); ++i)
    weight[i] = static_cast<float>(weight[i] * scale[static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels)]);
  if (bias.empty()) bias.assign(static_cast<size_t>(channels), 0.0f);
  if (static_cast<int64_t>(bias.size()) != channels)
    return make_error("{}: bias of the layer folded with '{}' has {} values for {} channels", side.label, bn_name,
                      bias.size(), channels);
  for (size_t c = 0; c < bias.size(); ++c) bias[c] = static_cast<float>((bias[c] - p[2][c]) * scale[c] + p[1][c]);
  return {};
}

Status compare_core(const Side& src, const Side& tgt, const Views& v, size_t s, size_t t, const match::NodeMatch& pair,
                    int rank, const LayerCheckOptions& options, std::vector<Finding>& out) {
  FETAFIX_ASSIGN_OR_RETURN(int si, main_weight_index(src, s));
  FETAFIX_ASSIGN_OR_RETURN(int ti, main_weight_index(tgt, t));
  FETAFIX_ASSIGN_OR_RETURN(auto sw, resolve_input(src, s, si));
  FETAFIX_ASSIGN_OR_RETURN(auto tw, resolve_input(tgt, t, ti));
  if (!sw || !tw) return {};  // an activation x activation MatMul: nothing to compare
  const auto& sn = src.view.node(s);
  const auto& tn = tgt.view.node(t);
  const bool bias_slots = has_bias_slot(sn.op_type()) && has_bias_slot(tn.op_type());
  std::optional<ResolvedWeight> sb, tb;
  if (bias_slots) {
    FETAFIX_ASSIGN_OR_RETURN(sb, resolve_input(src, s, 2));
    FETAFIX_ASSIGN_OR_RETURN(tb, resolve_input(tgt, t, 2));
  }
  std::vector<float> s_weight = sw->values, t_weight = tw->values;
  std::vector<float> s_bias = sb ? sb->values : std::vector<float>{}, t_bias = tb ? tb->values : std::vector<float>{};
  const bool folded = pair.bn_folded_in_target || pair.bn_folded_in_source;
  if (pair.bn_folded_in_target)
    FETAFIX_TRY_STATUS(fold_batch_norm(src, pair.folded_bn_node, s_weight, sw->shape, output_channel_axis(sn), s_bias));
  if (pair.bn_folded_in_source)
    FETAFIX_TRY_STATUS(fold_batch_norm(tgt, pair.folded_bn_node, t_weight, tw->shape, output_channel_axis(tn), t_bias));

  WeightComparison w;
  w.role = "weight";
  w.source_node = s;
  w.target_node = t;
  w.source_input = si;
  w.target_input = ti;
  w.source = &*sw;
  w.target = &*tw;
  w.folded = folded;
  align_main_weight(w, s_weight, sw->shape, t_weight, tw->shape, pair.weight_permutation, options);
  report_if_different(v, pair, rank, w, options, out);

  if (!bias_slots || (s_bias.empty() && t_bias.empty())) return {};
  // A missing bias is a zero bias: Conv(x, W) == Conv(x, W, 0).
  const size_t channels = std::max(s_bias.size(), t_bias.size());
  if (s_bias.empty()) s_bias.assign(channels, 0.0f);
  if (t_bias.empty()) t_bias.assign(channels, 0.0f);
  WeightComparison b;
  b.role = "bias";
  b.source_node = s;
  b.target_node = t;
  b.source_input = sb ? 2 : -1;
  b.target_input = tb ? 2 : -1;
  b.source = sb ? &*sb : nullptr;
  b.target = tb ? &*tb : nullptr;
  b.folded = folded;
  align_flat(b, s_bias, t_bias);
  report_if_different(v, pair, rank, b, options, out);
  return {};
}

Status compare_neighbour(const Side& src, const Side& tgt, const Views& v, size_t s, size_t t,
                         const match::NodeMatch& pair, int rank, const LayerCheckOptions& options,
                         std::vector<Finding>& out) {
  const auto& sn = src.view.node(s);
  const auto& tn = tgt.view.node(t);
  std::vector<std::pair<int, ResolvedWeight>> sws, tws;
  for (int i = 0; i < sn.input_size(); ++i) {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(src, s, i));
    if (w) sws.emplace_back(i, std::move(*w));
  }
  for (int i = 0; i < tn.input_size(); ++i) {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(tgt, t, i));
    if (w) tws.emplace_back(i, std::move(*w));
  }
  auto compare = [&](const std::pair<int, ResolvedWeight>& a, const std::pair<int, ResolvedWeight>& b) {
    WeightComparison c;
    c.role = "parameter";
    c.source_node = s;
    c.target_node = t;
    c.source_input = a.first;
    c.target_input = b.first;
    c.source = &a.second;
    c.target = &b.second;
    align_flat(c, a.second.values, b.second.values);
    report_if_different(v, pair, rank, c, options, out);
  };
  // Mul/Add commute: a single weight operand is compared wherever each side put it.
  if (sn.op_type() != "BatchNormalization" && sws.size() == 1 && tws.size() == 1) {
    compare(sws[0], tws[0]);
    return {};
  }
  for (const auto& a : sws)
    for (const auto& b : tws)
      if (a.first == b.first) compare(a, b);
  return {};
}

// ---- LH ----------------------------------------------------------------------------------

// One attribute as the node effectively has it.
struct Reading {
  bool applicable = false;  // present, or absent with a known ONNX default
  bool explicit_value = false;
  json value;               // null: absent without default (or an absent Clip bound: no bound)
  std::string form;         // "attribute", "input", "default", "auto_pad", "pad_node"
};

json attribute_json(const onnx::AttributeProto& a) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: return a.i();
    case onnx::AttributeProto::FLOAT: return static_cast<double>(a.f());
    case onnx::AttributeProto::STRING: return a.s();
    case onnx::AttributeProto::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case onnx::AttributeProto::FLOATS: {
      std::vector<double> v(a.floats().begin(), a.floats().end());
      return v;
    }
    default: return std::string(model::attribute_type_name(a.type()));
  }
}

bool is_kernel_op(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "MaxPool" || op == "AveragePool" || op == "LpPool";
}

std::optional<std::vector<int64_t>> shape_of(const Side& side, const std::string& value) {
  auto it = side.observed_shapes.find(value);
  if (it != side.observed_shapes.end()) return it->second;
  return side.view.shape(value);
}

bool known_dims(const std::vector<int64_t>& dims) {
  return std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d > 0; });
}

std::optional<json> default_value(const std::string& op, const std::string& name, int64_t opset,
                                  std::optional<size_t> spatial_rank, std::optional<std::vector<int64_t>> kernel) {
  if (is_kernel_op(op)) {
    if (name == "auto_pad") return json("NOTSET");
    if (spatial_rank && (name == "strides" || name == "dilations")) return json(std::vector<int64_t>(*spatial_rank, 1));
    if (spatial_rank && name == "pads") return json(std::vector<int64_t>(*spatial_rank * 2, 0));
    if ((op == "Conv" || op == "ConvTranspose") && name == "group") return json(1);
    if ((op == "Conv" || op == "ConvTranspose") && name == "kernel_shape" && kernel) return json(*kernel);
    if ((op == "MaxPool" || op == "AveragePool") && name == "ceil_mode") return json(0);
    if (op == "AveragePool" && name == "count_include_pad") return json(0);
  }
  if (name == "epsilon" && (op == "BatchNormalization" || op == "InstanceNormalization" ||
                            op == "LayerNormalization" || op == "GroupNormalization"))
    return json(1e-5);
  if (op == "Clip" && (name == "min" || name == "max")) return json(nullptr);
  if (name == "axis") {
    if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") return json(opset >= 13 ? -1 : 1);
    if (op == "Flatten" || op == "QuantizeLinear" || op == "DequantizeLinear") return json(1);
    if (op == "Gather" || op == "GatherElements" || op == "Split" || op == "ArgMax" || op == "ArgMin") return json(0);
    if (op == "LayerNormalization") return json(-1);
  }
  return std::nullopt;
}

// Pads implied by auto_pad on an input of spatial dims `in` (ONNX: SAME_UPPER puts the odd
// pixel at the end, SAME_LOWER at the beginning).
std::vector<int64_t> implied_pads(const std::string& auto_pad, const std::vector<int64_t>& in,
                                  const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
                                  const std::vector<int64_t>& dilations) {
  const size_t r = in.size();
  std::vector<int64_t> pads(2 * r, 0);
  if (auto_pad == "VALID") return pads;
  for (size_t i = 0; i < r; ++i) {
    const int64_t out = (in[i] + strides[i] - 1) / strides[i];
    const int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in[i]);
    const int64_t small = total / 2, large = total - small;
    pads[i] = auto_pad == "SAME_UPPER" ? small : large;
    pads[i + r] = auto_pad == "SAME_UPPER" ? large : small;
  }
  return pads;
}

std::vector<int64_t> json_ints(const json& j) {
  std::vector<int64_t> v;
  if (j.is_array())
    for (const auto& x : j) v.push_back(x.is_number() ? x.get<int64_t>() : 0);
  return v;
}

// A zero-valued constant Pad feeding only `conv` and padding only spatial dims: its pads
// (begin..., end... over all dims). nullopt when it is anything else.
Result<std::optional<std::pair<size_t, std::vector<int64_t>>>> foldable_pad(const Side& side, size_t conv) {
  using Out = std::optional<std::pair<size_t, std::vector<int64_t>>>;
  const auto& node = side.view.node(conv);
  if (node.input_size() == 0) return Out{};
  auto p = side.view.producer(node.input(0));
  if (!p || side.view.node(*p).op_type() != "Pad" || side.view.consumers(node.input(0)).size() != 1) return Out{};
  const auto& pad = side.view.node(*p);
  FETAFIX_ASSIGN_OR_RETURN(std::string mode, model::get_string_or(pad, "mode", "constant"));
  if (mode != "constant" || pad.input_size() > 3) return Out{};  // opset 18 `axes`: not folded
  std::vector<int64_t> pads;
  float value = 0;
  if (const auto* a = model::find_attribute(pad, "pads")) {
    pads.assign(a->ints().begin(), a->ints().end());
    FETAFIX_ASSIGN_OR_RETURN(value, model::get_float_or(pad, "value", 0.0f));
  } else {
    FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, *p, 1));
    if (!w) return Out{};
    for (float x : w->values) pads.push_back(static_cast<int64_t>(x));
    if (pad.input_size() > 2 && !pad.input(2).empty()) {
      FETAFIX_ASSIGN_OR_RETURN(auto cv, resolve_input(side, *p, 2));
      if (!cv || cv->values.size() != 1) return Out{};
      value = cv->values[0];
    }
  }
  const size_t rank = pads.size() / 2;
  if (value != 0.0f || rank < 3 || pads.size() != 2 * rank) return Out{};
  if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) return Out{};
  return Out{std::pair{*p, pads}};
}

Result<std::map<std::string, Reading>> read_hyperparameters(const Side& side, size_t n, const LayerCheckOptions& options,
                                                           std::optional<size_t>& pad_node) {
  const auto& node = side.view.node(n);
  const std::string& op = node.op_type();
  const int64_t opset = layer::default_opset(side.model);
  std::optional<std::vector<int64_t>> input_shape;
  if (node.input_size() > 0) input_shape = shape_of(side, node.input(0));

  // Spatial rank and (Conv) kernel from kernel_shape, the weight's shape, or the input's rank.
  std::optional<size_t> spatial_rank;
  std::optional<std::vector<int64_t>> kernel;
  if (const auto* a = model::find_attribute(node, "kernel_shape")) spatial_rank = a->ints_size();
  if ((op == "Conv" || op == "ConvTranspose") && node.input_size() > 1) {
    auto ws = shape_of(side, node.input(1));
    if (!ws) {
      FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, 1));
      if (w) ws = w->shape;
    }
    if (ws && ws->size() >= 2) {
      kernel = std::vector<int64_t>(ws->begin() + 2, ws->end());
      if (!spatial_rank) spatial_rank = kernel->size();
    }
  }
  if (!spatial_rank && input_shape && input_shape->size() >= 2) spatial_rank = input_shape->size() - 2;

  std::map<std::string, Reading> readings;
  auto read = [&](const std::string& name) -> Status {
    Reading r;
    if (const auto* a = model::find_attribute(node, name)) {
      r = {true, true, attribute_json(*a), "attribute"};
    } else if (op == "Clip" && (name == "min" || name == "max") && opset >= 11) {
      const int index = name == "min" ? 1 : 2;
      if (index < node.input_size() && !node.input(index).empty()) {
        FETAFIX_ASSIGN_OR_RETURN(auto w, resolve_input(side, n, index));
        r = {true, true, w && w->values.size() == 1 ? json(static_cast<double>(w->values[0])) : json("<computed>"),
             "input"};
      } else {
        r = {true, false, nullptr, "default"};
      }
    } else if (auto d = default_value(op, name, opset, spatial_rank, kernel)) {
      r = {true, false, *d, "default"};
    }
    if (name == "axis" && r.value.is_number_integer() && r.value.get<int64_t>() < 0 && input_shape)
      r.value = r.value.get<int64_t>() + static_cast<int64_t>(input_shape->size());
    readings[name] = std::move(r);
    return {};
  };
  for (const auto& name : options.hyperparameters) FETAFIX_TRY_STATUS(read(name));
  // Pad resolution below needs these even when the caller does not compare them.
  for (const char* name : {"pads", "strides", "dilations", "kernel_shape", "auto_pad"})
    if (!readings.count(name)) FETAFIX_TRY_STATUS(read(name));

  if (is_kernel_op(op) && op != "ConvTranspose") {
    Reading& auto_pad = readings["auto_pad"];
    const std::string mode = auto_pad.value.is_string() ? auto_pad.value.get<std::string>() : "NOTSET";
    if (mode != "NOTSET" && input_shape && spatial_rank && input_shape->size() == *spatial_rank + 2) {
      const std::vector<int64_t> in(input_shape->begin() + 2, input_shape->end());
      const auto k = json_ints(readings["kernel_shape"].value);
      const auto s = json_ints(readings["strides"].value);
      const auto d = json_ints(readings["dilations"].value);
      if (known_dims(in) && k.size() == in.size() && s.size() == in.size() && d.size() == in.size()) {
        readings["pads"] = {true, true, implied_pads(mode, in, k, s, d), "auto_pad"};
        auto_pad.value = "NOTSET";
      }
    }
    if (op == "Conv" && auto_pad.value == "NOTSET") {
      FETAFIX_ASSIGN_OR_RETURN(auto pad, foldable_pad(side, n));
      auto conv_pads = json_ints(readings["pads"].value);
      if (pad && spatial_rank && conv_pads.size() == 2 * *spatial_rank && pad->second.size() == 2 * (*spatial_rank + 2)) {
        const size_t r = *spatial_rank, full = r + 2;
        for (size_t i = 0; i < r; ++i) {
          conv_pads[i] += pad->second[2 + i];
          conv_pads[r + i] += pad->second[full + 2 + i];
        }
        readings["pads"] = {true, true, conv_pads, "pad_node"};
        pad_node = pad->first;
      }
    }
  }
  return readings;
}

bool values_equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_float() || b.is_number_float())
      return static_cast<float>(a.get<double>()) == static_cast<float>(b.get<double>());
    return a.get<int64_t>() == b.get<int64_t>();
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!values_equal(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

std::string value_text(const Reading& r) {
  if (!r.applicable) return "absent";
  const std::string v = r.value.is_null() ? "none" : r.value.dump();
  return r.explicit_value ? v : v + " (default)";
}

Status compare_hyperparameters(const Side& src, const Side& tgt, const Views& v, size_t s, size_t t,
                               const match::NodeMatch& pair, int rank, const LayerCheckOptions& options,
                               std::vector<Finding>& out) {
  std::optional<size_t> s_pad, t_pad;
  FETAFIX_ASSIGN_OR_RETURN(auto rs, read_hyperparameters(src, s, options, s_pad));
  FETAFIX_ASSIGN_OR_RETURN(auto rt, read_hyperparameters(tgt, t, options, t_pad));
  for (const auto& name : options.hyperparameters) {
    const Reading& a = rs[name];
    const Reading& b = rt[name];
    if (!a.applicable && !b.applicable) continue;
    if (a.applicable && b.applicable && values_equal(a.value, b.value)) continue;
    const char* kind = a.explicit_value && !b.explicit_value   ? "missing"
                       : !a.explicit_value && b.explicit_value ? "extra"
                                                               : "different";
    Finding f;
    f.type = FaultType::kLH;
    f.source_node = v.source.node_name(s);
    f.target_node = v.target.node_name(t);
    f.layer_rank = rank;
    const std::string& op = v.source.node(s).op_type();
    f.summary = std::string(kind) == "missing"
                    ? fmt::format("{} {} in Source, missing in Target ({} '{}')", name, value_text(a), op, f.target_node)
                : std::string(kind) == "extra"
                    ? fmt::format("{} {} in Target, not set in Source ({} '{}')", name, value_text(b), op, f.target_node)
                    : fmt::format("{} {} in Source, {} in Target ({} '{}')", name, value_text(a), value_text(b), op,
                                  f.target_node);
    std::vector<size_t> s_nodes{s}, t_nodes{t};
    if (s_pad) s_nodes.push_back(*s_pad);
    if (t_pad) t_nodes.push_back(*t_pad);
    f.evidence = {
        {"check", "hyperparameters"},
        {"attribute", name},
        {"kind", kind},
        {"source_value", a.value},
        {"target_value", b.value},
        {"source_explicit", a.explicit_value},
        {"target_explicit", b.explicit_value},
        {"source_form", a.form},
        {"target_form", b.form},
        {"source_op", op},
        {"target_op", v.target.node(t).op_type()},
        {"core_source_node", pair.source_node},
        {"core_target_node", pair.target_node},
        {"source_pad_node", s_pad ? v.source.node_name(*s_pad) : ""},
        {"target_pad_node", t_pad ? v.target.node_name(*t_pad) : ""},
        {"source_region", layer::region_to_json(v.source, layer::make_region(v.source, s_nodes, s))},
        {"target_region", layer::region_to_json(v.target, layer::make_region(v.target, t_nodes, t))},
    };
    out.push_back(std::move(f));
  }
  return {};
}

// ---- CG ----------------------------------------------------------------------------------

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

Finding graph_finding(const Views& v, size_t s, size_t t, const layer::Region& rs, const layer::Region& rt,
                      const match::NodeMatch& pair, int rank, const LayerCheckOptions& options, bool& differs) {
  auto compared = [&](const GraphView& view, const layer::Region& r, json& ops, json& names) {
    ops = json::array();
    names = json::array();
    for (size_t n : r.nodes) {
      if (options.cg_ignored_ops.count(view.node(n).op_type())) continue;
      ops.push_back(view.node(n).op_type());
      names.push_back(view.node_name(n));
    }
  };
  json s_ops, s_names, t_ops, t_names;
  compared(v.source, rs, s_ops, s_names);
  compared(v.target, rt, t_ops, t_names);
  differs = s_ops != t_ops;
  Finding f;
  if (!differs) return f;
  size_t first = 0;
  while (first < s_ops.size() && first < t_ops.size() && s_ops[first] == t_ops[first]) ++first;
  auto at = [](const json& ops, size_t i) { return i < ops.size() ? ops[i].get<std::string>() : std::string("(end)"); };
  f.type = FaultType::kCG;
  f.source_node = v.source.node_name(s);
  f.target_node = v.target.node_name(t);
  f.layer_rank = rank;
  f.summary = fmt::format("graph before {} '{}' differs at op {}: Source {}, Target {} ({} vs {} ops)",
                          v.source.node(s).op_type(), f.target_node, first, at(s_ops, first), at(t_ops, first),
                          s_ops.size(), t_ops.size());
  f.evidence = {
      {"check", "graph"},
      {"source_ops", s_ops},
      {"target_ops", t_ops},
      {"source_nodes", s_names},
      {"target_nodes", t_names},
      {"first_difference", first},
      {"core_source_node", pair.source_node},
      {"core_target_node", pair.target_node},
      {"source_region", layer::region_to_json(v.source, rs)},
      {"target_region", layer::region_to_json(v.target, rt)},
  };
  return f;
}

}  // namespace

namespace {

// Calls compare(src, tgt, v, source node, target node, pair, rank, out) on every pair and on
// each of its paired neighbours (those `keep_neighbour` accepts), in the given pair order.
// With `fan_out`, neighbours past forks too (each Source node compared once: forks are shared
// by several layers' neighbourhoods).
template <class Compare, class KeepNeighbour>
Result<std::vector<Finding>> over_pairs_and_neighbours(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                       const std::vector<match::NodeMatch>& pairs,
                                                       const LayerCheckOptions& options, Compare compare_core_node,
                                                       Compare compare_neighbour_node, KeepNeighbour keep_neighbour,
                                                       bool fan_out = false) {
  FETAFIX_ASSIGN_OR_RETURN(Views v, build_views(source, target));
  const Side src{source, v.source, options.source_shapes, "Source"};
  const Side tgt{target, v.target, options.target_shapes, "Target"};
  std::vector<Finding> out;
  std::set<size_t> compared;  // Source neighbours already compared
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    const auto& pair = pairs[rank];
    FETAFIX_ASSIGN_OR_RETURN(auto nodes, locate(v, pair));
    auto [s, t] = nodes;
    const int r = static_cast<int>(rank);
    FETAFIX_TRY_STATUS(compare_core_node(src, tgt, v, s, t, pair, r, out));
    size_t chained = 0;
    const auto neighbours = neighbour_pairs(v, s, t, pair, options, fan_out, chained);
    for (size_t i = 0; i < neighbours.size(); ++i) {
      auto [ns, nt] = neighbours[i];
      // Chain neighbours as before; a fan-out neighbour only the first time it is reached.
      if (!compared.insert(ns).second && i >= chained) continue;
      if (keep_neighbour(v, ns)) FETAFIX_TRY_STATUS(compare_neighbour_node(src, tgt, v, ns, nt, pair, r, out));
    }
  }
  return out;
}

using PairCompare = std::function<Status(const Side&, const Side&, const Views&, size_t, size_t,
                                         const match::NodeMatch&, int, std::vector<Finding>&)>;

}  // namespace

Result<std::vector<Finding>> check_weights(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                           const std::vector<match::NodeMatch>& pairs,
                                           const LayerCheckOptions& options) {
  const PairCompare core = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                               const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_core(a, b, v, s, t, pair, r, options, out);
  };
  const PairCompare neighbour = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                                    const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_neighbour(a, b, v, s, t, pair, r, options, out);
  };
  return over_pairs_and_neighbours(source, target, pairs, options, core, neighbour, [&](const Views& v, size_t ns) {
    return options.neighbour_weight_ops.count(v.source.node(ns).op_type()) > 0;
  });
}

Result<std::vector<Finding>> check_hyperparameters(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                   const std::vector<match::NodeMatch>& pairs,
                                                   const LayerCheckOptions& options) {
  const PairCompare attributes = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                                     const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_hyperparameters(a, b, v, s, t, pair, r, options, out);
  };
  return over_pairs_and_neighbours(source, target, pairs, options, attributes, attributes,
                                   [](const Views&, size_t) { return true; }, /*fan_out=*/true);
}

Result<std::vector<Finding>> check_graph(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                         const std::vector<match::NodeMatch>& pairs,
                                         const LayerCheckOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(Views v, build_views(source, target));
  std::set<std::string> folded_source, folded_target;
  for (const auto& p : pairs)
    if (p.bn_folded_in_source || p.bn_folded_in_target) {
      folded_source.insert(p.source_node);
      folded_target.insert(p.target_node);
    }
  std::vector<Finding> out;
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    FETAFIX_ASSIGN_OR_RETURN(auto nodes, locate(v, pairs[rank]));
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
    bool differs = false;
    Finding f = graph_finding(v, s, t, rs, rt, pairs[rank], static_cast<int>(rank), options, differs);
    if (differs) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace fetafix::localize
