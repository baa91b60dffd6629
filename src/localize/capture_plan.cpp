#include "localize/capture_plan.h"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "model/region.h"

namespace fetafix::localize {
namespace {

struct GraphIndex {
  std::unordered_map<std::string, int> producer;
  std::unordered_map<std::string, std::vector<int>> consumers;
  std::unordered_set<std::string> weights;  // initializers and values computed from them alone
};

GraphIndex index_graph(const onnx::GraphProto& g) {
  GraphIndex ix;
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& out : g.node(i).output())
      if (!out.empty()) ix.producer.emplace(out, i);
    for (const auto& in : g.node(i).input())
      if (!in.empty()) ix.consumers[in].push_back(i);
  }
  for (const auto& t : g.initializer()) ix.weights.insert(t.name());
  // Nodes in graph order (producers first, as ONNX requires): weight-only when every input is.
  for (const auto& n : g.node()) {
    bool from_weights = true;
    for (const auto& in : n.input()) from_weights = from_weights && (in.empty() || ix.weights.count(in));
    if (from_weights)
      for (const auto& out : n.output()) ix.weights.insert(out);
  }
  return ix;
}

// Nodes computing `values`, walking back to the graph inputs.
std::vector<bool> ancestors(const onnx::GraphProto& g, const GraphIndex& ix, const std::vector<std::string>& values) {
  std::vector<bool> in(static_cast<size_t>(g.node_size()), false);
  std::vector<std::string> stack(values.begin(), values.end());
  while (!stack.empty()) {
    const std::string v = std::move(stack.back());
    stack.pop_back();
    auto it = ix.producer.find(v);
    if (it == ix.producer.end() || in[static_cast<size_t>(it->second)]) continue;
    in[static_cast<size_t>(it->second)] = true;
    for (const auto& input : g.node(it->second).input())
      if (!input.empty()) stack.push_back(input);
  }
  return in;
}

// Per-image bytes of a value; nullopt when it is not a per-image activation.
std::optional<size_t> per_image_bytes(const CapturePlanInput& in, const std::string& value) {
  auto it = in.values->find(value);
  if (it == in.values->end() || it->second.shape.empty() || it->second.shape[0] != in.probe_batch)
    return std::nullopt;
  return static_cast<size_t>(shape_numel(it->second.shape) / in.probe_batch) * dtype_size(it->second.dtype);
}

// The cut after `covered`: values produced inside it that a needed node outside it reads, and
// needed values (later passes' own) produced inside it.
std::set<std::string> cut_after(const onnx::GraphProto& g, const GraphIndex& ix, const std::vector<bool>& covered,
                                const std::vector<bool>& needed, const std::set<std::string>& later_values) {
  std::set<std::string> cut;
  auto inside = [&](const std::string& v) {
    auto it = ix.producer.find(v);
    return it != ix.producer.end() && covered[static_cast<size_t>(it->second)];
  };
  for (int i = 0; i < g.node_size(); ++i) {
    if (!needed[static_cast<size_t>(i)] || covered[static_cast<size_t>(i)]) continue;
    for (const auto& input : g.node(i).input())
      if (!input.empty() && inside(input)) cut.insert(input);
  }
  for (const auto& v : later_values)
    if (inside(v)) cut.insert(v);
  return cut;
}

// An element-wise op with one activation input and weights otherwise: cheap to recompute, and
// a cut may move across it to a smaller value (a QuantizeLinear's uint8 output is a quarter of
// its float input).
bool cheap_unary(const onnx::NodeProto& n, const GraphIndex& ix, std::string* activation) {
  static const std::set<std::string> ops{"QuantizeLinear", "DequantizeLinear", "Cast", "Identity", "Relu",
                                         "Clip", "LeakyRelu", "Sigmoid", "Tanh", "BatchNormalization",
                                         "Mul", "Add", "Sub", "Div", "Min", "Max", "Transpose"};
  if (!ops.count(n.op_type()) || n.output_size() != 1) return false;
  std::string found;
  for (const auto& in : n.input()) {
    if (in.empty() || ix.weights.count(in)) continue;
    if (!found.empty()) return false;
    found = in;
  }
  if (found.empty()) return false;
  *activation = found;
  return true;
}

// Moves the cut to smaller values where one cheap op away: backward over a node of this pass
// (its input is kept instead, the node recomputed later), forward over the single consumer of a
// value (computed now, its output kept instead) unless a later pass wants that value itself.
// `covered` and `cut` change together.
void shrink_cut(const onnx::GraphProto& g, const GraphIndex& ix, const CapturePlanInput& in,
                const std::vector<bool>& this_pass, const std::vector<bool>& needed,
                const std::set<std::string>& later_values, std::vector<bool>& covered, std::set<std::string>& cut) {
  auto bytes = [&](const std::string& v) { return per_image_bytes(in, v); };
  for (int round = 0; round < 8; ++round) {
    bool moved = false;
    const std::vector<std::string> snapshot(cut.begin(), cut.end());  // cut changes in the loop
    for (const std::string& v : snapshot) {
      const auto vb = bytes(v);
      if (!vb) continue;
      const int producer = ix.producer.at(v);
      std::string u;
      if (this_pass[static_cast<size_t>(producer)] && cheap_unary(g.node(producer), ix, &u) && bytes(u) &&
          *bytes(u) < *vb) {
        covered[static_cast<size_t>(producer)] = false;
        cut.erase(v);
        cut.insert(u);
        moved = true;
        continue;
      }
      if (later_values.count(v)) continue;
      std::vector<int> readers;
      for (int c : ix.consumers.count(v) ? ix.consumers.at(v) : std::vector<int>{})
        if (needed[static_cast<size_t>(c)] && !covered[static_cast<size_t>(c)]) readers.push_back(c);
      if (readers.size() != 1 || !cheap_unary(g.node(readers[0]), ix, &u)) continue;
      const std::string& w = g.node(readers[0]).output(0);
      if (!bytes(w) || *bytes(w) >= *vb) continue;
      covered[static_cast<size_t>(readers[0])] = true;
      cut.erase(v);
      cut.insert(w);
      moved = true;
    }
    if (!moved) break;
  }
}

Result<onnx::ModelProto> segment_model(const onnx::ModelProto& model, const model::Subgraph& piece,
                                       const std::vector<std::string>& outputs, const CapturePlanInput& in) {
  model::SubgraphCopy copy;
  copy.piece = piece;
  copy.outputs = outputs;
  std::map<std::string, model::FrontierValue> types;
  for (const auto& e : piece.entries_read) {
    copy.entry_inputs[e] = e;
    const auto& info = in.values->at(e);
    model::FrontierValue t{info.dtype, info.shape};
    t.shape[0] = in.fixed_batch > 0 ? in.fixed_batch : -1;
    types.emplace(e, std::move(t));
  }
  return model::combine_subgraphs(model, {copy}, types);
}

}  // namespace

Result<std::vector<SegmentPlan>> plan_capture_segments(const onnx::ModelProto& model, const CapturePlanInput& in) {
  const auto& g = model.graph();
  const GraphIndex ix = index_graph(g);
  const size_t passes = in.values_per_pass.size(), n = static_cast<size_t>(g.node_size());
  // needed_after[p]: nodes some later pass needs; later_values[p]: those passes' own values.
  std::vector<std::vector<bool>> needed_after(passes, std::vector<bool>(n, false));
  std::vector<std::set<std::string>> later_values(passes);
  for (size_t p = passes; p-- > 1;) {
    const auto own = ancestors(g, ix, in.values_per_pass[p]);
    needed_after[p - 1] = needed_after[p];
    for (size_t i = 0; i < n; ++i) needed_after[p - 1][i] = needed_after[p - 1][i] || own[i];
    later_values[p - 1] = later_values[p];
    later_values[p - 1].insert(in.values_per_pass[p].begin(), in.values_per_pass[p].end());
  }
  std::vector<bool> covered(n, false);
  std::set<std::string> cache;
  std::vector<SegmentPlan> plans;
  for (size_t p = 0; p < passes; ++p) {
    auto piece = model::subgraph_between(g, cache, in.values_per_pass[p]);
    if (!piece.ok()) return make_error("capture plan, pass {}: {}", p, piece.error().message);
    std::vector<bool> now_covered = covered, this_pass(n, false);
    for (int i : piece->nodes) now_covered[static_cast<size_t>(i)] = this_pass[static_cast<size_t>(i)] = true;
    auto cut = cut_after(g, ix, now_covered, needed_after[p], later_values[p]);
    shrink_cut(g, ix, in, this_pass, needed_after[p], later_values[p], now_covered, cut);
    size_t cut_bytes = 0;
    bool keepable = in.cache_budget > 0;
    for (const auto& v : cut) {
      const auto b = per_image_bytes(in, v);
      keepable = keepable && b.has_value();
      cut_bytes += b.value_or(0) * in.rows;
    }
    for (const auto& v : cache)  // held while the new cut is filled
      if (!cut.count(v)) cut_bytes += per_image_bytes(in, v).value_or(0) * in.rows;
    keepable = keepable && cut_bytes <= in.cache_budget;
    SegmentPlan plan;
    std::set<std::string> produced;
    for (int i : piece->nodes)
      for (const auto& out : g.node(i).output()) produced.insert(out);
    for (const auto& v : in.values_per_pass[p])
      if (produced.count(v) && std::find(plan.outputs.begin(), plan.outputs.end(), v) == plan.outputs.end())
        plan.outputs.push_back(v);
    std::set<std::string> next_cache;
    if (keepable) {
      covered = std::move(now_covered);
      next_cache = cut;
    } else {  // keep the old cut, without what no later pass reads
      const auto still = cut_after(g, ix, covered, needed_after[p], later_values[p]);
      for (const auto& v : cache)
        if (still.count(v)) next_cache.insert(v);
    }
    for (const auto& v : next_cache) {
      if (cache.count(v)) continue;
      plan.keep.push_back(v);
      if (std::find(plan.outputs.begin(), plan.outputs.end(), v) == plan.outputs.end()) plan.outputs.push_back(v);
    }
    if (!plan.outputs.empty()) {  // the pass's values and the new cut (which may reach past them)
      auto segment = model::subgraph_between(g, cache, plan.outputs);
      if (!segment.ok()) return make_error("capture plan, pass {}: {}", p, segment.error().message);
      plan.entries = segment->entries_read;
      FETAFIX_ASSIGN_OR_RETURN(auto m, segment_model(model, *segment, plan.outputs, in));
      plan.model = std::move(m);
    }
    cache = std::move(next_cache);
    plan.cache_after.assign(cache.begin(), cache.end());
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace fetafix::localize
