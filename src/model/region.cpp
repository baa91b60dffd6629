#include "model/region.h"

#include <algorithm>
#include <string>

namespace fetafix::model {
namespace {

std::string io_signature(const onnx::ModelProto& m) {
  onnx::ModelProto shell;
  shell.set_ir_version(m.ir_version());
  *shell.mutable_opset_import() = m.opset_import();
  *shell.mutable_graph()->mutable_input() = m.graph().input();
  *shell.mutable_graph()->mutable_output() = m.graph().output();
  std::string out;
  shell.SerializeToString(&out);
  return out;
}

bool is_heavy(const onnx::NodeProto& n) {
  static const std::unordered_set<std::string> heavy{"Conv", "ConvTranspose", "ConvInteger", "QLinearConv",
                                                     "MatMul", "MatMulInteger", "QLinearMatMul", "Gemm",
                                                     "Einsum", "LSTM", "GRU", "RNN", "Attention"};
  return heavy.count(n.op_type()) > 0;
}

bool has_subgraph(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute())
    if (a.has_g() || a.graphs_size() > 0) return true;
  return false;
}

}  // namespace

ModelFingerprint::ModelFingerprint(const onnx::ModelProto& base) : valid_(true) {
  std::string bytes;
  for (const auto& n : base.graph().node()) {
    n.SerializeToString(&bytes);
    nodes_.insert(bytes);
  }
  for (const auto& t : base.graph().initializer()) {
    t.SerializeToString(&bytes);
    initializers_[t.name()] = bytes;
  }
  io_ = io_signature(base);
}

struct RegionFinder {
  static std::optional<ChangedRegion> find(const ModelFingerprint& base, const onnx::ModelProto& candidate) {
    if (!base.valid_ || io_signature(candidate) != base.io_) return std::nullopt;
    const auto& g = candidate.graph();
    if (g.output_size() == 0) return std::nullopt;
    std::unordered_set<std::string> changed_values;  // values whose contents may differ from the base's
    std::unordered_set<std::string> initializers;
    std::string bytes;
    for (const auto& t : g.initializer()) {
      initializers.insert(t.name());
      auto it = base.initializers_.find(t.name());
      if (it == base.initializers_.end()) {
        changed_values.insert(t.name());
        continue;
      }
      t.SerializeToString(&bytes);
      if (bytes != it->second) changed_values.insert(t.name());
    }
    // An initializer the base had and the candidate lacks: whatever reads that name now reads
    // something else, and that node's own bytes are unchanged only if a node now produces it
    // (then that node is new, hence changed). Either way it is caught below.
    std::vector<bool> in_region(static_cast<size_t>(g.node_size()), false);
    ChangedRegion region;
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      if (has_subgraph(n)) return std::nullopt;
      bool changed = false;
      for (const auto& in : n.input()) changed = changed || (!in.empty() && changed_values.count(in));
      if (!changed) {
        n.SerializeToString(&bytes);
        changed = !base.nodes_.count(bytes);
      }
      if (!changed) continue;
      in_region[static_cast<size_t>(i)] = true;
      region.nodes.push_back(i);
      for (const auto& out : n.output())
        if (!out.empty()) changed_values.insert(out);
    }
    if (region.nodes.empty()) return std::nullopt;
    region.output = g.output(0).name();
    if (!changed_values.count(region.output)) return std::nullopt;
    // Keep only what the first output depends on: walk back from it through region nodes.
    std::unordered_map<std::string, int> producer;
    for (int i : region.nodes)
      for (const auto& out : g.node(i).output()) producer[out] = i;
    std::unordered_set<int> needed;
    std::vector<std::string> stack{region.output};
    std::unordered_set<std::string> frontier;
    std::unordered_set<std::string> graph_inputs;
    for (const auto& in : g.input()) graph_inputs.insert(in.name());
    while (!stack.empty()) {
      const std::string value = stack.back();
      stack.pop_back();
      auto it = producer.find(value);
      if (it == producer.end()) {
        if (initializers.count(value)) continue;
        if (graph_inputs.count(value)) return std::nullopt;  // the change reaches back to the input
        frontier.insert(value);
        continue;
      }
      if (!needed.insert(it->second).second) continue;
      for (const auto& in : g.node(it->second).input())
        if (!in.empty()) stack.push_back(in);
    }
    std::vector<int> kept;
    for (int i : region.nodes)
      if (needed.count(i)) kept.push_back(i);
    region.nodes = std::move(kept);
    size_t heavy_total = 0, heavy_in = 0;
    for (const auto& n : g.node()) heavy_total += is_heavy(n);
    for (int i : region.nodes) heavy_in += is_heavy(g.node(i));
    region.cost_share = heavy_total ? static_cast<double>(heavy_in) / static_cast<double>(heavy_total)
                                    : static_cast<double>(region.nodes.size()) / std::max(g.node_size(), 1);
    region.frontier.assign(frontier.begin(), frontier.end());
    std::sort(region.frontier.begin(), region.frontier.end());
    return region;
  }
};

std::optional<ChangedRegion> find_changed_region(const ModelFingerprint& base, const onnx::ModelProto& candidate) {
  return RegionFinder::find(base, candidate);
}

Result<onnx::ModelProto> extract_region(const onnx::ModelProto& candidate, const ChangedRegion& region,
                                        const std::map<std::string, FrontierValue>& frontier) {
  onnx::ModelProto out;
  out.set_ir_version(candidate.ir_version());
  *out.mutable_opset_import() = candidate.opset_import();
  out.set_producer_name("fetafix partial re-execution");
  *out.mutable_functions() = candidate.functions();
  const auto& g = candidate.graph();
  auto* og = out.mutable_graph();
  og->set_name(g.name() + "_region");
  std::unordered_set<std::string> read;
  for (int i : region.nodes) {
    *og->add_node() = g.node(i);
    for (const auto& in : g.node(i).input()) read.insert(in);
  }
  for (const auto& t : g.initializer())
    if (read.count(t.name())) *og->add_initializer() = t;
  for (const auto& name : region.frontier) {
    auto it = frontier.find(name);
    if (it == frontier.end()) return make_error("partial re-execution: no type for value '{}'", name);
    auto* in = og->add_input();
    in->set_name(name);
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(static_cast<int32_t>(it->second.dtype));
    auto* shape = tt->mutable_shape();
    for (int64_t d : it->second.shape) {
      if (d >= 0) shape->add_dim()->set_dim_value(d);
      else shape->add_dim()->set_dim_param("N");
    }
  }
  bool found = false;
  for (const auto& o : g.output())
    if (o.name() == region.output) {
      *og->add_output() = o;
      found = true;
      break;
    }
  if (!found) return make_error("partial re-execution: '{}' is not a graph output", region.output);
  return out;
}

Result<Subgraph> subgraph_between(const onnx::GraphProto& g, const std::set<std::string>& entries,
                                  const std::vector<std::string>& outputs) {
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& out : g.node(i).output())
      if (!out.empty()) producer.emplace(out, i);
  std::unordered_set<std::string> initializers, graph_inputs;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  for (const auto& in : g.input())
    if (!initializers.count(in.name())) graph_inputs.insert(in.name());

  std::set<int> nodes;
  std::set<std::string> entries_read, inputs_read;
  std::unordered_set<std::string> seen;
  std::vector<std::string> stack(outputs.rbegin(), outputs.rend());
  for (const auto& out : outputs)
    if (!producer.count(out) && !entries.count(out) && !graph_inputs.count(out) && !initializers.count(out))
      return make_error("'{}' is no value of the graph", out);
  while (!stack.empty()) {
    const std::string value = std::move(stack.back());
    stack.pop_back();
    if (value.empty() || !seen.insert(value).second) continue;
    if (entries.count(value)) {
      entries_read.insert(value);
      continue;
    }
    if (initializers.count(value)) continue;
    auto it = producer.find(value);
    if (it == producer.end()) {
      if (!graph_inputs.count(value)) return make_error("a node reads '{}', which nothing produces", value);
      inputs_read.insert(value);
      continue;
    }
    if (!nodes.insert(it->second).second) continue;
    const auto& node = g.node(it->second);
    if (has_subgraph(node))
      return make_error("node '{}' ({}) has a subgraph and cannot be replayed on its own", node.name(),
                        node.op_type());
    for (const auto& in : node.input()) stack.push_back(in);
  }
  Subgraph sg;
  sg.nodes.assign(nodes.begin(), nodes.end());
  sg.entries_read.assign(entries_read.begin(), entries_read.end());
  sg.graph_inputs_read.assign(inputs_read.begin(), inputs_read.end());
  return sg;
}

namespace {

void add_typed_input(onnx::GraphProto& g, const std::string& name, const FrontierValue& type) {
  auto* in = g.add_input();
  in->set_name(name);
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(type.dtype));
  auto* shape = tt->mutable_shape();
  for (int64_t d : type.shape) {
    if (d >= 0) shape->add_dim()->set_dim_value(d);
    else shape->add_dim()->set_dim_param("N");
  }
}

// Copies one piece's nodes into `g` under its prefix; records the initializers it reads.
Status copy_piece(const onnx::GraphProto& src, const SubgraphCopy& copy, onnx::GraphProto& g,
                  std::set<std::string>& names, std::set<std::string>& initializers_read) {
  std::unordered_set<std::string> produced;
  for (int i : copy.piece.nodes)
    for (const auto& out : src.node(i).output())
      if (!out.empty()) produced.insert(out);
  for (const auto& value : produced)
    if (!names.insert(copy.prefix + value).second)
      return make_error("renamed value '{}' collides with another name", copy.prefix + value);
  for (int i : copy.piece.nodes) {
    onnx::NodeProto node = src.node(i);
    node.set_name(copy.prefix + (node.name().empty() ? node.op_type() + "_" + std::to_string(i) : node.name()));
    for (auto& in : *node.mutable_input()) {
      if (in.empty()) continue;
      if (auto e = copy.entry_inputs.find(in); e != copy.entry_inputs.end()) in = e->second;
      else if (produced.count(in)) in = copy.prefix + in;
      else initializers_read.insert(in);  // or a graph input: filtered when initializers are added
    }
    for (auto& out : *node.mutable_output())
      if (!out.empty()) out = copy.prefix + out;
    *g.add_node() = std::move(node);
  }
  for (const auto& out : copy.outputs) {
    if (!produced.count(out)) return make_error("output '{}' is not computed inside the piece", out);
    g.add_output()->set_name(copy.prefix + out);
  }
  return {};
}

}  // namespace

Result<onnx::ModelProto> combine_subgraphs(const onnx::ModelProto& model, const std::vector<SubgraphCopy>& copies,
                                           const std::map<std::string, FrontierValue>& entry_types) {
  const auto& src = model.graph();
  onnx::ModelProto out;
  out.set_ir_version(std::max<int64_t>(model.ir_version(), 4));  // >= 4: initializers need not be inputs
  *out.mutable_opset_import() = model.opset_import();
  *out.mutable_functions() = model.functions();
  out.set_producer_name("fetafix local replay");
  auto* g = out.mutable_graph();
  g->set_name(src.name() + "_pieces");

  std::set<std::string> names;  // every name the combined graph defines
  std::set<std::string> entry_inputs_used, graph_inputs_used;
  for (const auto& copy : copies) {
    for (const auto& e : copy.piece.entries_read) {
      auto it = copy.entry_inputs.find(e);
      if (it == copy.entry_inputs.end()) return make_error("piece '{}': no input given for entry '{}'", copy.prefix, e);
      if (!entry_types.count(it->second)) return make_error("no type for input '{}'", it->second);
      entry_inputs_used.insert(it->second);
    }
    graph_inputs_used.insert(copy.piece.graph_inputs_read.begin(), copy.piece.graph_inputs_read.end());
  }
  names.insert(entry_inputs_used.begin(), entry_inputs_used.end());
  names.insert(graph_inputs_used.begin(), graph_inputs_used.end());
  for (const auto& t : src.initializer()) names.insert(t.name());

  std::set<std::string> read;
  for (const auto& copy : copies) FETAFIX_TRY_STATUS(copy_piece(src, copy, *g, names, read));
  for (const auto& t : src.initializer())
    if (read.count(t.name())) *g->add_initializer() = t;
  for (const auto& name : entry_inputs_used) add_typed_input(*g, name, entry_types.at(name));
  for (const auto& in : src.input())
    if (graph_inputs_used.count(in.name())) *g->add_input() = in;
  return out;
}

}  // namespace fetafix::model
