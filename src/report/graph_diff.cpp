#include "report/graph_diff.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/weights.h"
#include "report/html.h"

namespace fetafix::report {
using localize::Finding;

std::string attribute_text(const onnx::AttributeProto& a) {
  auto join = [](const auto& values, auto format) {
    std::string s = "[";
    int n = 0;
    for (const auto& v : values) {
      if (n) s += ",";
      if (++n > 16) {
        s += "…";
        break;
      }
      s += format(v);
    }
    return s + "]";
  };
  switch (a.type()) {
    case onnx::AttributeProto::INT: return std::to_string(a.i());
    case onnx::AttributeProto::FLOAT: return fmt::format("{:g}", a.f());
    case onnx::AttributeProto::STRING: return "'" + a.s() + "'";
    case onnx::AttributeProto::INTS: return join(a.ints(), [](int64_t v) { return std::to_string(v); });
    case onnx::AttributeProto::FLOATS: return join(a.floats(), [](float v) { return fmt::format("{:g}", v); });
    case onnx::AttributeProto::STRINGS: return join(a.strings(), [](const std::string& v) { return "'" + v + "'"; });
    case onnx::AttributeProto::TENSOR: {
      std::vector<int64_t> dims(a.t().dims().begin(), a.t().dims().end());
      return fmt::format("tensor {}{}", dtype_name(static_cast<DType>(a.t().data_type())), shape_to_string(dims));
    }
    case onnx::AttributeProto::GRAPH: return "graph '" + a.g().name() + "'";
    default: return "(" + std::string(a.type() == onnx::AttributeProto::UNDEFINED ? "undefined" : "other") + ")";
  }
}

Result<std::shared_ptr<const GraphContext>> GraphContext::create(const onnx::ModelProto& model,
                                                                 const std::set<std::string>& core_ops) {
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(model.graph()));
  auto ctx = std::shared_ptr<GraphContext>(new GraphContext(std::move(view)));
  for (const auto& w : model::list_weights(model))
    ctx->weights_[w.value] = fmt::format("{}{}", dtype_name(w.dtype), shape_to_string(w.shape));
  ctx->core_ops_ = core_ops;
  const auto& topo = ctx->view_.topological_order();
  ctx->topo_position_.assign(ctx->view_.node_count(), 0);
  for (size_t i = 0; i < topo.size(); ++i) ctx->topo_position_[topo[i]] = i;
  return std::shared_ptr<const GraphContext>(std::move(ctx));
}

const std::string& GraphContext::weight_type(const std::string& value) const {
  static const std::string kNone;
  auto it = weights_.find(value);
  return it == weights_.end() ? kNone : it->second;
}

bool GraphContext::is_core(size_t node) const {
  const auto& n = view_.node(node);
  if (!core_ops_.count(n.op_type())) return false;
  if (n.op_type() != "MatMul") return true;
  for (const auto& in : n.input())
    if (is_weight(in)) return true;
  return false;
}

WeightDifferences weight_differences(const std::vector<Finding>& findings) {
  WeightDifferences out;
  for (const auto& f : findings) {
    const auto* e = std::get_if<localize::WeightsEvidence>(&f.evidence);
    if (!e) continue;
    const std::string text = e->shape_mismatch ? std::string("shapes differ")
                                               : fmt::format("{}/{} differ, max |Δ| {}", e->differing, e->total,
                                                             number(e->max_abs_diff.value_or(0.0)));
    if (!e->source.tensor.empty()) out.source.emplace(e->source.tensor, text);
    if (!e->target.tensor.empty()) out.target.emplace(e->target.tensor, text);
  }
  return out;
}

namespace {

// The finding's own nodes on one side: its node, and the nodes its evidence names (a CG
// finding's compared nodes, an LH or CG finding's region, a Pad folded into an LH finding's Conv).
std::set<size_t> seeds_of(const GraphContext& ctx, const Finding& f, bool source_side) {
  std::vector<std::string> names{source_side ? f.source_node : f.target_node};
  auto add = [&](const std::vector<std::string>& more) { names.insert(names.end(), more.begin(), more.end()); };
  if (const auto* g = std::get_if<localize::GraphEvidence>(&f.evidence)) add(source_side ? g->source_nodes : g->target_nodes);
  if (const auto* r = f.regions()) add(source_side ? r->source.nodes : r->target.nodes);
  if (const auto* lh = std::get_if<localize::HyperparametersEvidence>(&f.evidence))
    names.push_back(source_side ? lh->source_pad_node : lh->target_pad_node);
  std::set<size_t> out;
  for (const auto& n : names)
    if (!n.empty())
      if (auto i = ctx.view().find_node(n)) out.insert(*i);
  return out;
}

// The core layer named by the evidence (a WB finding on a neighbour BN names its layer here).
std::optional<size_t> core_of(const GraphContext& ctx, const Finding& f, bool source_side) {
  const std::string name = std::visit(
      [&](const auto& e) -> std::string {
        if constexpr (requires { e.core_source_node; }) return source_side ? e.core_source_node : e.core_target_node;
        else return {};
      },
      f.evidence);
  if (name.empty()) return std::nullopt;
  return ctx.view().find_node(name);
}

// First input that carries data (not a weight) and has a producer.
std::optional<size_t> data_producer(const GraphContext& ctx, size_t node) {
  for (const auto& in : ctx.view().node(node).input()) {
    if (in.empty() || ctx.is_weight(in)) continue;
    if (auto p = ctx.view().producer(in); p && ctx.view().reached_from_inputs(*p)) return p;
  }
  return std::nullopt;
}

std::optional<size_t> first_consumer(const GraphContext& ctx, size_t node) {
  std::optional<size_t> best;
  for (const auto& out : ctx.view().node(node).output())
    for (const auto& use : ctx.view().consumers(out))
      if (!best || ctx.topo_position(use.node) < ctx.topo_position(*best)) best = use.node;
  return best;
}

std::vector<size_t> window(const GraphContext& ctx, const std::set<size_t>& seeds, const SideBySideOptions& o) {
  if (seeds.empty()) return {};
  std::set<size_t> nodes = seeds;
  auto by_topo = [&](size_t a, size_t b) { return ctx.topo_position(a) < ctx.topo_position(b); };
  size_t first = *std::min_element(seeds.begin(), seeds.end(), by_topo);
  size_t last = *std::max_element(seeds.begin(), seeds.end(), by_topo);
  // To the previous and the next core layer: both sides then cover the same stretch even when
  // a converter put extra nodes on one of them.
  for (int k = 0; k < o.max_walk; ++k) {
    auto p = data_producer(ctx, first);
    if (!p) break;
    nodes.insert(first = *p);
    if (ctx.is_core(*p)) break;
  }
  for (int k = 0; k < o.max_walk; ++k) {
    auto c = first_consumer(ctx, last);
    if (!c) break;
    nodes.insert(last = *c);
    if (ctx.is_core(*c)) break;
  }
  std::vector<size_t> out;
  for (size_t n : nodes)  // weight-only nodes (Constant, weight DequantizeLinear) show as weights instead
    if (seeds.count(n) || ctx.view().reached_from_inputs(n)) out.push_back(n);
  std::sort(out.begin(), out.end(), by_topo);
  if (out.size() > o.max_rows) {  // keep the rows around the first focus node
    size_t centre = 0;
    while (centre < out.size() && !seeds.count(out[centre])) ++centre;
    const size_t start = std::min(centre > o.max_rows / 4 ? centre - o.max_rows / 4 : 0, out.size() - o.max_rows);
    out = std::vector<size_t>(out.begin() + static_cast<std::ptrdiff_t>(start),
                              out.begin() + static_cast<std::ptrdiff_t>(start + o.max_rows));
  }
  return out;
}

NodeCell make_cell(const GraphContext& ctx, size_t node, const std::set<size_t>& focus,
                   const std::set<std::string>& unmatched, const std::map<std::string, std::string>& weight_diffs) {
  const auto& n = ctx.view().node(node);
  NodeCell c;
  c.name = ctx.view().node_name(node);
  c.op = n.domain().empty() || n.domain() == "ai.onnx" ? n.op_type() : n.domain() + "::" + n.op_type();
  for (const auto& a : n.attribute()) c.attributes.emplace_back(a.name(), attribute_text(a));
  for (int i = 0; i < n.input_size(); ++i) {
    const std::string& in = n.input(i);
    if (in.empty()) continue;
    std::string stored = in;
    // A weight reached through Identity/Cast/Transpose/DequantizeLinear: name the stored tensor.
    for (int hop = 0; hop < 3 && !ctx.is_weight(stored); ++hop) {
      auto p = ctx.view().producer(stored);
      if (!p || ctx.view().reached_from_inputs(*p) || ctx.view().node(*p).input_size() == 0) break;
      stored = ctx.view().node(*p).input(0);
    }
    if (!ctx.is_weight(stored)) continue;
    NodeCell::Weight w{i, stored, ctx.weight_type(stored), ""};
    if (auto it = weight_diffs.find(stored); it != weight_diffs.end()) w.difference = it->second;
    c.weights.push_back(std::move(w));
  }
  c.core = ctx.is_core(node);
  c.unmatched_core = c.core && unmatched.count(c.name) > 0;
  c.focus = focus.count(node) > 0;
  return c;
}

std::set<std::string> differing_attributes(const NodeCell& s, const NodeCell& t) {
  std::map<std::string, std::pair<std::optional<std::string>, std::optional<std::string>>> all;
  for (const auto& [k, v] : s.attributes) all[k].first = v;
  for (const auto& [k, v] : t.attributes) all[k].second = v;
  std::set<std::string> out;
  for (const auto& [k, v] : all)
    if (v.first != v.second) out.insert(k);
  return out;
}

}  // namespace

std::vector<DiffRow> side_by_side(const GraphContext& source, const GraphContext& target,
                                  const match::MatchResult& matching, const Finding& finding,
                                  const WeightDifferences& weights, const SideBySideOptions& options) {
  std::set<size_t> s_seeds = seeds_of(source, finding, true), t_seeds = seeds_of(target, finding, false);
  const std::set<size_t> s_focus = s_seeds, t_focus = t_seeds;
  if (s_seeds.empty() && t_seeds.empty()) return {};
  // Anchor both sides on the finding's core layer, so a one-sided finding still shows the
  // other model at the same place.
  if (auto c = core_of(source, finding, true)) s_seeds.insert(*c);
  if (auto c = core_of(target, finding, false)) t_seeds.insert(*c);
  std::map<std::string, std::string> s_to_t, t_to_s;
  for (const auto& p : matching.pairs) {
    s_to_t[p.source_node] = p.target_node;
    t_to_s[p.target_node] = p.source_node;
  }
  for (size_t n : std::set<size_t>(s_seeds))
    if (auto it = s_to_t.find(source.view().node_name(n)); it != s_to_t.end())
      if (auto t = target.view().find_node(it->second)) t_seeds.insert(*t);
  for (size_t n : std::set<size_t>(t_seeds))
    if (auto it = t_to_s.find(target.view().node_name(n)); it != t_to_s.end())
      if (auto s = source.view().find_node(it->second)) s_seeds.insert(*s);

  const auto a = window(source, s_seeds, options), b = window(target, t_seeds, options);
  const std::set<std::string> unmatched_s(matching.unmatched_source.begin(), matching.unmatched_source.end());
  const std::set<std::string> unmatched_t(matching.unmatched_target.begin(), matching.unmatched_target.end());
  std::map<std::pair<std::string, std::string>, double> pair_confidence;
  for (const auto& p : matching.pairs) pair_confidence[{p.source_node, p.target_node}] = p.confidence;

  // Global alignment maximising matched pairs (10) and same-op pairs (3); no substitution of
  // different ops: those become one-sided rows.
  constexpr int kNo = std::numeric_limits<int>::min() / 4;
  auto score = [&](size_t i, size_t j) {
    const auto& sn = source.view().node_name(a[i]);
    const auto& tn = target.view().node_name(b[j]);
    if (pair_confidence.count({sn, tn})) return 10;
    const bool s_paired = s_to_t.count(sn) > 0, t_paired = t_to_s.count(tn) > 0;
    if (s_paired || t_paired) return kNo;  // a matched layer only sits beside its partner
    return source.view().node(a[i]).op_type() == target.view().node(b[j]).op_type() ? 3 : kNo;
  };
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> best(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;) {
      int v = std::max(best[i + 1][j], best[i][j + 1]);
      if (const int sc = score(i, j); sc > kNo) v = std::max(v, sc + best[i + 1][j + 1]);
      best[i][j] = v;
    }
  std::vector<DiffRow> rows;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m) {
      if (const int sc = score(i, j); sc > kNo && best[i][j] == sc + best[i + 1][j + 1]) {
        DiffRow r;
        r.kind = sc == 10 ? RowKind::kMatched : RowKind::kSameOp;
        r.source = make_cell(source, a[i], s_focus, unmatched_s, weights.source);
        r.target = make_cell(target, b[j], t_focus, unmatched_t, weights.target);
        r.differing_attributes = differing_attributes(*r.source, *r.target);
        if (sc == 10) r.confidence = fmt::format("{:.2f}", pair_confidence[{r.source->name, r.target->name}]);
        rows.push_back(std::move(r));
        ++i, ++j;
        continue;
      }
    }
    // Source-only rows first when both gaps are optimal: reads as "removed, then added".
    if (i < n && (j == m || best[i][j] == best[i + 1][j])) {
      DiffRow r;
      r.kind = RowKind::kSourceOnly;
      r.source = make_cell(source, a[i++], s_focus, unmatched_s, weights.source);
      rows.push_back(std::move(r));
    } else {
      DiffRow r;
      r.kind = RowKind::kTargetOnly;
      r.target = make_cell(target, b[j++], t_focus, unmatched_t, weights.target);
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace fetafix::report
