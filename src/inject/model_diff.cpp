#include "inject/model_diff.h"

#include <algorithm>
#include <map>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "model/graph.h"
#include "model/weights.h"

namespace fetafix::inject {
namespace {

std::string bytes_of(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

bool is_constant_value_attribute(const onnx::NodeProto& node, const std::string& attribute) {
  return node.op_type() == "Constant" && node.domain().empty() && attribute.rfind("value", 0) == 0;
}

std::map<std::string, const onnx::NodeProto*> nodes_by_name(const onnx::GraphProto& graph) {
  const auto names = model::name_nodes(graph);
  std::map<std::string, const onnx::NodeProto*> nodes;
  for (size_t i = 0; i < names.names.size(); ++i) nodes[names.names[i]] = &graph.node(static_cast<int>(i));
  return nodes;
}

std::map<std::string, std::string> weight_contents(const onnx::ModelProto& m) {
  std::map<std::string, std::string> contents;
  for (const auto& w : model::list_weights(m)) {
    auto t = model::get_weight(m, w.value);
    if (t.ok()) {
      contents[w.value] = std::string(dtype_name(t->dtype)) + shape_to_string(t->shape) +
                          std::string(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
    } else if (w.storage == model::WeightStorage::kInitializer) {
      contents[w.value] = bytes_of(m.graph().initializer(static_cast<int>(w.index)));
    } else {
      contents[w.value] = bytes_of(m.graph().node(static_cast<int>(w.index)));
    }
  }
  return contents;
}

template <class Map, class Same>
void diff_maps(const Map& before, const Map& after, const std::string& prefix, Same same,
               std::vector<std::string>& out) {
  for (const auto& [name, value] : before) {
    auto it = after.find(name);
    if (it == after.end()) out.push_back(prefix + "-removed " + name);
    else if (!same(value, it->second)) out.push_back(prefix + "-changed " + name);
  }
  for (const auto& [name, value] : after)
    if (!before.count(name)) out.push_back(prefix + "-added " + name);
}

std::map<std::string, std::string> value_infos(const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& list) {
  std::map<std::string, std::string> out;
  for (const auto& v : list) out[v.name()] = bytes_of(v);
  return out;
}

std::map<std::string, int64_t> opsets(const onnx::ModelProto& m) {
  std::map<std::string, int64_t> out;
  for (const auto& o : m.opset_import()) out[o.domain()] = o.version();
  return out;
}

}  // namespace

std::vector<std::string> diff_models(const onnx::ModelProto& before, const onnx::ModelProto& after) {
  std::vector<std::string> out;
  const auto old_nodes = nodes_by_name(before.graph()), new_nodes = nodes_by_name(after.graph());
  for (const auto& [name, old_node] : old_nodes) {
    auto it = new_nodes.find(name);
    if (it == new_nodes.end()) {
      out.push_back("node-removed " + name);
      continue;
    }
    const onnx::NodeProto& a = *old_node;
    const onnx::NodeProto& b = *it->second;
    if (a.op_type() != b.op_type() || a.domain() != b.domain()) out.push_back("node-op " + name);
    if (!std::equal(a.input().begin(), a.input().end(), b.input().begin(), b.input().end()))
      out.push_back("node-inputs " + name);
    if (!std::equal(a.output().begin(), a.output().end(), b.output().begin(), b.output().end()))
      out.push_back("node-outputs " + name);
    std::map<std::string, std::string> old_attrs, new_attrs;
    for (const auto& attr : a.attribute())
      if (!is_constant_value_attribute(a, attr.name())) old_attrs[attr.name()] = bytes_of(attr);
    for (const auto& attr : b.attribute())
      if (!is_constant_value_attribute(b, attr.name())) new_attrs[attr.name()] = bytes_of(attr);
    std::vector<std::string> attribute_changes;
    diff_maps(old_attrs, new_attrs, "attribute", std::equal_to<>(), attribute_changes);
    for (const auto& change : attribute_changes) {  // "attribute-removed pads" -> "... conv1.pads"
      const size_t space = change.find(' ');
      out.push_back(change.substr(0, space + 1) + name + "." + change.substr(space + 1));
    }
  }
  for (const auto& [name, node] : new_nodes)
    if (!old_nodes.count(name)) out.push_back("node-added " + name);

  diff_maps(weight_contents(before), weight_contents(after), "weight", std::equal_to<>(), out);

  // Initializers listed as graph inputs (IR < 4) are weights, not inputs.
  auto inputs_without_weights = [](const onnx::ModelProto& m) {
    auto inputs = value_infos(m.graph().input());
    for (const auto& init : m.graph().initializer()) inputs.erase(init.name());
    return inputs;
  };
  diff_maps(inputs_without_weights(before), inputs_without_weights(after), "input", std::equal_to<>(), out);
  const auto old_outputs = value_infos(before.graph().output()), new_outputs = value_infos(after.graph().output());
  diff_maps(old_outputs, new_outputs, "output", std::equal_to<>(), out);
  std::vector<std::string> old_order, new_order;
  for (const auto& o : before.graph().output())
    if (new_outputs.count(o.name())) old_order.push_back(o.name());
  for (const auto& o : after.graph().output())
    if (old_outputs.count(o.name())) new_order.push_back(o.name());
  if (old_order != new_order) out.push_back("outputs-reordered");
  if (opsets(before) != opsets(after)) out.push_back("opset-changed");
  if (before.ir_version() != after.ir_version()) out.push_back("ir-version-changed");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace fetafix::inject
