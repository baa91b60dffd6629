#include "inject/injection_context.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>

#include "model/weights.h"

namespace fetafix::inject::detail {

int64_t Injection::opset() const {
  for (const auto& o : model_->opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 1;
}

std::string Injection::fresh_name(const std::string& base) const {
  std::set<std::string> taken;
  const auto& g = graph();
  for (const auto& n : g.node()) {
    taken.insert(n.name());
    for (const auto& o : n.output()) taken.insert(o);
    for (const auto& i : n.input()) taken.insert(i);
  }
  for (const auto& v : g.input()) taken.insert(v.name());
  for (const auto& v : g.output()) taken.insert(v.name());
  for (const auto& v : g.initializer()) taken.insert(v.name());
  for (const auto& v : g.value_info()) taken.insert(v.name());
  for (const auto& n : model::name_nodes(g).names) taken.insert(n);
  if (!taken.count(base)) return base;
  for (int k = 1;; ++k)
    if (std::string candidate = base + "_" + std::to_string(k); !taken.count(candidate)) return candidate;
}

std::optional<size_t> Injection::node_index(const std::string& handle) const {
  const auto& g = graph();
  for (int i = 0; i < g.node_size(); ++i)
    if (g.node(i).output_size() > 0 && g.node(i).output(0) == handle) return static_cast<size_t>(i);
  return std::nullopt;
}

std::string Injection::node_name(const std::string& handle) const {
  const auto index = node_index(handle);
  return index ? model::name_nodes(graph()).names[*index] : std::string();
}

const onnx::NodeProto& Injection::node(const std::string& handle) const {
  return graph().node(static_cast<int>(node_index(handle).value()));
}

Result<std::vector<std::string>> Injection::select_nodes(const std::function<bool(const onnx::NodeProto&)>& eligible,
                                                         const std::string& what, DefaultNodes default_nodes) {
  const auto& g = graph();
  const auto names = model::name_nodes(g);
  std::vector<size_t> candidates;
  for (int i = 0; i < g.node_size(); ++i)
    if (g.node(i).output_size() > 0 && !g.node(i).output(0).empty() && eligible(g.node(i)))
      candidates.push_back(static_cast<size_t>(i));
  std::vector<size_t> chosen;
  const auto& wanted = spec_->nodes;
  const std::string mode = wanted.empty() ? (default_nodes == DefaultNodes::kAll ? "all" : "first") : wanted[0];
  if (mode == "all" || mode == "first" || mode == "random") {
    if (candidates.empty()) return make_error("the model has no {}", what);
    if (mode == "all") chosen = candidates;
    else if (mode == "first") chosen = {candidates.front()};
    else chosen = {candidates[rng_->next_u64() % candidates.size()]};
  } else {
    for (const auto& name : wanted) {
      auto it = names.index.find(name);
      if (it == names.index.end()) return make_error("no node named '{}'", name);
      if (std::find(candidates.begin(), candidates.end(), it->second) == candidates.end())
        return make_error("node '{}' ({}) is not a {}", name, g.node(static_cast<int>(it->second)).op_type(), what);
      chosen.push_back(it->second);
    }
    std::sort(chosen.begin(), chosen.end());
    chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  }
  std::vector<std::string> handles;
  for (size_t i : chosen) handles.push_back(g.node(static_cast<int>(i)).output(0));
  return handles;
}

bool Injection::value_used(const std::string& value) const {
  const auto& g = graph();
  for (const auto& n : g.node())
    if (std::find(n.input().begin(), n.input().end(), value) != n.input().end()) return true;
  for (const auto& o : g.output())
    if (o.name() == value) return true;
  return false;
}

Status Injection::redirect_uses(const std::string& from, const std::string& to, const std::string& except_handle,
                                Injected& out) {
  // Collect first: the edits below change the lists being walked.
  struct Use {
    std::string handle;
    int index;
  };
  std::vector<Use> uses;
  for (const auto& n : graph().node()) {
    if (handle_of(n) == except_handle) continue;
    for (int k = 0; k < n.input_size(); ++k)
      if (n.input(k) == from) uses.push_back({handle_of(n), k});
  }
  for (const auto& use : uses) {
    FETAFIX_TRY_STATUS(apply(model::Edit::set_node_input(node_name(use.handle), use.index, to)));
    out.node_handles.push_back(use.handle);
  }
  const auto& outputs = graph().output();
  for (int k = 0; k < outputs.size(); ++k) {
    if (outputs[k].name() != from) continue;
    onnx::ValueInfoProto renamed = outputs[k];
    renamed.set_name(to);
    FETAFIX_TRY_STATUS(apply(model::Edit::add_graph_output(renamed, k)));
    FETAFIX_TRY_STATUS(apply(model::Edit::remove_graph_output(from)));
    out.values.insert(out.values.end(), {from, to});
  }
  return Status::Ok();
}

Status Injection::remove_weight_if_unused(const std::string& value) {
  if (value.empty() || value_used(value)) return Status::Ok();
  const auto weight = model::find_weight(model(), value);
  if (!weight) return Status::Ok();
  for (const auto& input : graph().input())  // an IR<4 initializer also listed as a graph input stays
    if (input.name() == value) return Status::Ok();
  if (weight->storage == model::WeightStorage::kInitializer) return apply(model::Edit::remove_initializer(value));
  return apply(model::Edit::remove_node(node_name(value)));
}

Result<std::string> Injection::first_real_input() const {
  std::set<std::string> initializers;
  for (const auto& i : graph().initializer()) initializers.insert(i.name());
  for (const auto& input : graph().input())
    if (!initializers.count(input.name())) return input.name();
  return make_error("the model has no graph input to change");
}

Result<int64_t> parse_int(const std::string& text, const std::string& what) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    return make_error("{} must be an integer, not '{}'", what, text);
  return v;
}

Result<double> parse_double(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return make_error("{} must be a number, not '{}'", what, text);
  return v;
}

Result<std::vector<int64_t>> parse_ints(const std::string& text, const std::string& what) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    FETAFIX_ASSIGN_OR_RETURN(int64_t v, parse_int(text.substr(start, comma == std::string::npos ? std::string::npos
                                                                                                   : comma - start),
                                                    what));
    values.push_back(v);
    if (comma == std::string::npos) return values;
    start = comma + 1;
  }
}

onnx::ValueInfoProto float_value_info(const std::string& name, DType dtype) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  vi.mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int32_t>(dtype));
  return vi;
}

onnx::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                          std::vector<std::string> outputs, std::vector<onnx::AttributeProto> attributes) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  for (auto& i : inputs) node.add_input(std::move(i));
  for (auto& o : outputs) node.add_output(std::move(o));
  for (auto& a : attributes) *node.add_attribute() = std::move(a);
  return node;
}

}  // namespace fetafix::inject::detail
