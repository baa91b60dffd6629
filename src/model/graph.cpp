#include "model/graph.h"

#include <algorithm>
#include <queue>
#include <set>

namespace fetafix::model {

namespace {

void collect_outer_refs(const onnx::GraphProto& graph, std::set<std::string>& outer);

// Outer references of every subgraph attribute of `node`.
void collect_node_subgraph_refs(const onnx::NodeProto& node, std::set<std::string>& refs) {
  for (const auto& attr : node.attribute()) {
    if (attr.has_g()) collect_outer_refs(attr.g(), refs);
    for (const auto& g : attr.graphs()) collect_outer_refs(g, refs);
  }
}

// Names read by `graph` (or its nested subgraphs) that `graph` itself does not define.
void collect_outer_refs(const onnx::GraphProto& graph, std::set<std::string>& outer) {
  std::set<std::string> local;
  for (const auto& v : graph.input()) local.insert(v.name());
  for (const auto& t : graph.initializer()) local.insert(t.name());
  for (const auto& s : graph.sparse_initializer()) local.insert(s.values().name());
  for (const auto& n : graph.node())
    for (const auto& o : n.output()) local.insert(o);
  std::set<std::string> used;
  for (const auto& n : graph.node()) {
    for (const auto& i : n.input())
      if (!i.empty()) used.insert(i);
    collect_node_subgraph_refs(n, used);
  }
  for (const auto& u : used)
    if (!local.count(u)) outer.insert(u);
}

std::vector<int64_t> dims_of(const onnx::TypeProto& type, bool& has_shape) {
  std::vector<int64_t> dims;
  has_shape = type.has_tensor_type() && type.tensor_type().has_shape();
  if (!has_shape) return dims;
  for (const auto& d : type.tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return dims;
}

}  // namespace

std::vector<std::string> implicit_inputs(const onnx::NodeProto& node) {
  std::set<std::string> refs;
  collect_node_subgraph_refs(node, refs);
  return {refs.begin(), refs.end()};
}

NodeNames name_nodes(const onnx::GraphProto& graph) {
  NodeNames out;
  const size_t n = static_cast<size_t>(graph.node_size());
  out.names.resize(n);
  out.synthesized.assign(n, false);
  // Real names claim first, so a synthesized name never takes a name a node really has.
  std::unordered_map<std::string, size_t> real;
  for (size_t i = 0; i < n; ++i) {
    const std::string& name = graph.node(static_cast<int>(i)).name();
    if (!name.empty() && !real.count(name)) {
      real.emplace(name, i);
      out.names[i] = name;
    }
  }
  out.index = real;
  for (size_t i = 0; i < n; ++i) {
    if (!out.names[i].empty()) continue;
    const auto& node = graph.node(static_cast<int>(i));
    std::string base = (node.op_type().empty() ? std::string("node") : node.op_type()) + "_" + std::to_string(i);
    std::string candidate = base;
    for (int k = 1; out.index.count(candidate); ++k) candidate = base + "_" + std::to_string(k);
    out.names[i] = candidate;
    out.synthesized[i] = true;
    out.index.emplace(candidate, i);
  }
  return out;
}

std::optional<size_t> find_node(const onnx::GraphProto& graph, std::string_view name) {
  NodeNames names = name_nodes(graph);
  auto it = names.index.find(std::string(name));
  if (it == names.index.end()) return std::nullopt;
  return it->second;
}

size_t assign_node_names(onnx::GraphProto& graph) {
  NodeNames names = name_nodes(graph);
  size_t renamed = 0;
  for (size_t i = 0; i < names.names.size(); ++i) {
    if (!names.synthesized[i]) continue;
    graph.mutable_node(static_cast<int>(i))->set_name(names.names[i]);
    ++renamed;
  }
  return renamed;
}

Result<GraphView> GraphView::build(const onnx::GraphProto& graph) {
  GraphView v;
  v.graph_ = &graph;
  v.names_ = name_nodes(graph);
  const size_t n = v.names_.names.size();

  for (const auto& t : graph.initializer()) v.initializers_.insert(t.name());
  for (const auto& s : graph.sparse_initializer()) v.initializers_.insert(s.values().name());
  for (const auto& o : graph.output()) v.outputs_.insert(o.name());
  std::unordered_set<std::string> real_input_set;
  for (const auto& i : graph.input())
    if (!v.initializers_.count(i.name()) && real_input_set.insert(i.name()).second) v.real_inputs_.push_back(i.name());

  // The first producer wins if a (malformed) graph produces a value twice.
  for (size_t i = 0; i < n; ++i)
    for (const auto& o : graph.node(static_cast<int>(i)).output())
      if (!o.empty()) v.producer_.emplace(o, i);

  std::vector<bool> reads_real_input(n, false);
  v.preds_.assign(n, {});
  v.succs_.assign(n, {});
  for (size_t i = 0; i < n; ++i) {
    const auto& node = graph.node(static_cast<int>(i));
    auto use = [&](const std::string& value, int index) {
      if (value.empty()) return;
      v.consumers_[value].push_back({i, index});
      if (real_input_set.count(value)) reads_real_input[i] = true;
      auto p = v.producer_.find(value);
      if (p != v.producer_.end()) v.preds_[i].push_back(p->second);
    };
    for (int k = 0; k < node.input_size(); ++k) use(node.input(k), k);
    for (const auto& value : implicit_inputs(node)) use(value, -1);
    auto& preds = v.preds_[i];
    std::sort(preds.begin(), preds.end());
    preds.erase(std::unique(preds.begin(), preds.end()), preds.end());
    for (size_t p : preds) v.succs_[p].push_back(i);
  }

  // Kahn's algorithm with a min-heap: among ready nodes the earliest in the file goes first.
  std::vector<size_t> pending(n);
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i) {
    pending[i] = v.preds_[i].size();
    if (pending[i] == 0) ready.push(i);
  }
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    v.topo_.push_back(i);
    for (size_t s : v.succs_[i])
      if (--pending[s] == 0) ready.push(s);
  }
  if (v.topo_.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] != 0)
        return make_error("graph '{}': cycle through node '{}'", graph.name(), v.names_.names[i]);
  }
  v.topo_position_.assign(n, 0);
  for (size_t k = 0; k < n; ++k) v.topo_position_[v.topo_[k]] = k;

  // Dominators (Cooper-Harvey-Kennedy). On a DAG visited in topological order every
  // predecessor is final before its successors, so one pass is exact.
  v.idom_.assign(n, kNotReached);
  auto position = [&](int64_t x) -> int64_t { return x == kVirtualRoot ? -1 : static_cast<int64_t>(v.topo_position_[x]); };
  auto intersect = [&](int64_t a, int64_t b) {
    while (a != b) {
      while (position(a) > position(b)) a = v.idom_[a];
      while (position(b) > position(a)) b = v.idom_[b];
    }
    return a;
  };
  for (size_t i : v.topo_) {
    int64_t idom = reads_real_input[i] ? kVirtualRoot : kNotReached;
    if (idom != kVirtualRoot) {
      for (size_t p : v.preds_[i]) {
        if (v.idom_[p] == kNotReached) continue;
        idom = idom == kNotReached ? static_cast<int64_t>(p) : intersect(idom, static_cast<int64_t>(p));
        if (idom == kVirtualRoot) break;
      }
    }
    v.idom_[i] = idom;
  }

  // Declared shapes; later sources are the more exact ones and overwrite earlier ones.
  auto declare = [&](const onnx::ValueInfoProto& vi) {
    bool has_shape = false;
    auto dims = dims_of(vi.type(), has_shape);
    if (has_shape) v.shapes_[vi.name()] = std::move(dims);
    if (vi.type().has_tensor_type() && vi.type().tensor_type().elem_type() != 0)
      v.dtypes_[vi.name()] = static_cast<DType>(vi.type().tensor_type().elem_type());
  };
  for (const auto& vi : graph.value_info()) declare(vi);
  for (const auto& vi : graph.output()) declare(vi);
  for (const auto& vi : graph.input()) declare(vi);
  auto declare_tensor = [&](const std::string& name, const onnx::TensorProto& t) {
    v.shapes_[name] = {t.dims().begin(), t.dims().end()};
    v.dtypes_[name] = static_cast<DType>(t.data_type());
  };
  for (const auto& t : graph.initializer()) declare_tensor(t.name(), t);
  for (const auto& node : graph.node()) {
    if (node.op_type() != "Constant" || node.output_size() != 1 || !node.domain().empty()) continue;
    const std::string& out = node.output(0);
    for (const auto& a : node.attribute()) {
      if (a.name() == "value" && a.has_t()) declare_tensor(out, a.t());
      else if (a.name() == "value_float") { v.shapes_[out] = {}; v.dtypes_[out] = DType::kFloat32; }
      else if (a.name() == "value_int") { v.shapes_[out] = {}; v.dtypes_[out] = DType::kInt64; }
      else if (a.name() == "value_floats") { v.shapes_[out] = {a.floats_size()}; v.dtypes_[out] = DType::kFloat32; }
      else if (a.name() == "value_ints") { v.shapes_[out] = {a.ints_size()}; v.dtypes_[out] = DType::kInt64; }
    }
  }
  return v;
}

std::optional<size_t> GraphView::find_node(std::string_view name) const {
  auto it = names_.index.find(std::string(name));
  if (it == names_.index.end()) return std::nullopt;
  return it->second;
}

std::optional<size_t> GraphView::producer(const std::string& value) const {
  auto it = producer_.find(value);
  if (it == producer_.end()) return std::nullopt;
  return it->second;
}

std::span<const ValueUse> GraphView::consumers(const std::string& value) const {
  auto it = consumers_.find(value);
  if (it == consumers_.end()) return {};
  return it->second;
}

bool GraphView::is_initializer(const std::string& value) const { return initializers_.count(value) != 0; }
bool GraphView::is_graph_output(const std::string& value) const { return outputs_.count(value) != 0; }

std::vector<size_t> GraphView::ancestors_within(size_t to, const std::vector<bool>& allowed) const {
  std::vector<bool> seen(node_count(), false);
  std::vector<size_t> stack{to}, out;
  seen[to] = true;
  while (!stack.empty()) {
    size_t x = stack.back();
    stack.pop_back();
    out.push_back(x);
    for (size_t p : preds_[x])
      if (allowed[p] && !seen[p]) {
        seen[p] = true;
        stack.push_back(p);
      }
  }
  std::sort(out.begin(), out.end(), [&](size_t a, size_t b) { return topo_position_[a] < topo_position_[b]; });
  return out;
}

std::vector<size_t> GraphView::nodes_between(size_t from, size_t to) const {
  const size_t n = node_count();
  if (from >= n || to >= n) return {};
  std::vector<bool> forward(n, false);
  std::vector<size_t> stack{from};
  forward[from] = true;
  while (!stack.empty()) {
    size_t x = stack.back();
    stack.pop_back();
    for (size_t s : succs_[x])
      if (!forward[s] && idom_[s] != kNotReached) {
        forward[s] = true;
        stack.push_back(s);
      }
  }
  if (!forward[to]) return {};
  return ancestors_within(to, forward);
}

std::vector<size_t> GraphView::region_to_dominator(size_t node) const {
  if (node >= node_count() || idom_[node] == kNotReached) return {};
  if (idom_[node] != kVirtualRoot) return nodes_between(static_cast<size_t>(idom_[node]), node);
  std::vector<bool> reached(node_count());
  for (size_t i = 0; i < node_count(); ++i) reached[i] = idom_[i] != kNotReached;
  return ancestors_within(node, reached);
}

std::optional<std::vector<int64_t>> GraphView::shape(const std::string& value) const {
  auto it = shapes_.find(value);
  if (it == shapes_.end()) return std::nullopt;
  return it->second;
}

DType GraphView::dtype(const std::string& value) const {
  auto it = dtypes_.find(value);
  return it == dtypes_.end() ? DType::kUndefined : it->second;
}

void GraphView::merge_observed_shapes(const std::map<std::string, std::vector<int64_t>>& observed) {
  for (const auto& [name, dims] : observed) shapes_[name] = dims;
}

}  // namespace fetafix::model
