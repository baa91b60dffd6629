// WB (paper §4.1, weights and biases): the main weight and bias of each matched layer, aligned
// to the Target's layout (and with a BatchNormalization folded first where the pair says so),
// and the parameters of the paired neighbours. One finding per differing tensor; its repair
// writes the Source's values where the Target stores them.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "localize/checks/check.h"
#include "localize/layer_pairs.h"
#include "model/attributes.h"
#include "model/batch_norm.h"
#include "model/layout.h"

namespace fetafix::localize {
namespace {

using layer::ResolvedWeight;
using layer::resolve_input;
using layer::Side;
using layer::Views;
using nlohmann::json;

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

  const std::string source_node = v.source.node_name(c.source_node), target_node = v.target.node_name(c.target_node);
  const std::string& op = v.target.node(c.target_node).op_type();
  std::string summary;
  if (c.shape_mismatch) {
    summary = fmt::format("{} of {} '{}' (input {}): shapes {} in Source, {} in Target", c.role, op, target_node,
                          c.target_input, c.source ? shape_to_string(c.source->shape) : "absent",
                          c.target ? shape_to_string(c.target->shape) : "absent");
  } else {
    summary = fmt::format("{} of {} '{}' (input {}): {} of {} elements differ, max |diff| {:.3g}, mean {:.3g}; {} vs {}",
                          c.role, op, target_node, c.target_input, d.differing, d.total, d.max_abs, d.mean_abs,
                          dtype_label(c.source), dtype_label(c.target));
  }
  auto side = [](const ResolvedWeight* w) {
    WeightSide out;
    if (w) out = {w->stored_name, std::string(dtype_name(w->stored_dtype)), w->shape, w->chain, w->dequantized};
    return out;
  };
  WeightsEvidence e;
  e.role = c.role;
  e.source = side(c.source);
  e.target = side(c.target);
  e.input_index = c.target_input;
  e.source_input_index = c.source_input;
  e.layout_permutation = c.permutation;
  if (!c.shape_mismatch) {
    e.max_abs_diff = d.max_abs;
    e.mean_abs_diff = d.mean_abs;
  }
  e.differing = d.differing;
  e.total = d.total;
  e.shape_mismatch = c.shape_mismatch;
  e.bn_folded = pair.bn_folded_in_target ? "target" : pair.bn_folded_in_source ? "source" : "none";
  e.folded_bn_node = pair.folded_bn_node;
  e.core_source_node = pair.source_node;
  e.core_target_node = pair.target_node;
  Finding f = make_finding(std::move(e), source_node, target_node, std::move(summary), rank);
  out.push_back(std::move(f));
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
    std::vector<float> aligned = perm == identity ? s : model::transpose(model::float_tensor(s, s_shape), perm).to_float();
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
  const std::vector<double> scale = model::batch_norm_scale(p[0], p[3], eps);
  model::scale_channels(weight, shape, axis, channels, scale);
  if (bias.empty()) bias.assign(static_cast<size_t>(channels), 0.0f);
  if (static_cast<int64_t>(bias.size()) != channels)
    return make_error("{}: bias of the layer folded with '{}' has {} values for {} channels", side.label, bn_name,
                      bias.size(), channels);
  model::fold_bias(bias, p[2], p[1], scale);
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

}  // namespace

Result<std::vector<Finding>> check_weights(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                           const std::vector<match::NodeMatch>& pairs,
                                           const LayerCheckOptions& options) {
  const layer::PairCompare core = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                               const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_core(a, b, v, s, t, pair, r, options, out);
  };
  const layer::PairCompare neighbour = [&](const Side& a, const Side& b, const Views& v, size_t s, size_t t,
                                    const match::NodeMatch& pair, int r, std::vector<Finding>& out) {
    return compare_neighbour(a, b, v, s, t, pair, r, options, out);
  };
  return layer::over_pairs_and_neighbours(source, target, pairs, options, core, neighbour, [&](const Views& v, size_t ns) {
    return options.neighbour_weight_ops.count(v.source.node(ns).op_type()) > 0;
  });
}

json WeightsEvidence::to_json() const {
  auto optional_number = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {
      {"role", role},
      {"source_tensor", source.tensor},
      {"target_tensor", target.tensor},
      {"input_index", input_index},
      {"source_input_index", source_input_index},
      {"layout_permutation", layout_permutation},
      {"max_abs_diff", optional_number(max_abs_diff)},
      {"mean_abs_diff", optional_number(mean_abs_diff)},
      {"differing", differing},
      {"total", total},
      {"source_dtype", source.dtype},
      {"target_dtype", target.dtype},
      {"source_shape", source.shape},
      {"target_shape", target.shape},
      {"source_chain", source.chain},
      {"target_chain", target.chain},
      {"source_dequantized", source.dequantized},
      {"target_dequantized", target.dequantized},
      {"shape_mismatch", shape_mismatch},
      {"bn_folded", bn_folded},
      {"folded_bn_node", folded_bn_node},
      {"core_source_node", core_source_node},
      {"core_target_node", core_target_node},
  };
}

Result<std::vector<Finding>> WeightsEvidence::run(const CheckContext& c) {
  return check_weights(*c.source.model, *c.target.model, c.matching->pairs, *c.layer_options);
}

}  // namespace fetafix::localize
