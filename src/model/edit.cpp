#include "model/edit.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <google/protobuf/util/json_util.h>

#include "model/attributes.h"
#include "model/graph.h"
#include "model/weights.h"

namespace fetafix::model {

namespace {

using json = nlohmann::json;
using Undo = std::function<void(onnx::ModelProto&)>;

constexpr std::array<EditKind, 11> kAllKinds = {
    EditKind::kSetWeight,     EditKind::kSetAttribute,      EditKind::kRemoveAttribute, EditKind::kInsertNode,
    EditKind::kRemoveNode,    EditKind::kSetNodeInput,      EditKind::kSetGraphInput,   EditKind::kRemoveGraphOutput,
    EditKind::kAddGraphOutput, EditKind::kAddInitializer,   EditKind::kRemoveInitializer};

constexpr std::array<DType, 13> kAllDTypes = {
    DType::kFloat32, DType::kUInt8,  DType::kInt8,    DType::kUInt16, DType::kInt16,  DType::kInt32,    DType::kInt64,
    DType::kBool,    DType::kFloat16, DType::kFloat64, DType::kUInt32, DType::kUInt64, DType::kBFloat16};

// ---- list helpers that keep every other element where it was ---------------------------

template <class T>
void insert_at(google::protobuf::RepeatedPtrField<T>* field, int index, const T& item) {
  *field->Add() = item;
  std::rotate(field->pointer_begin() + index, field->pointer_end() - 1, field->pointer_end());
}

template <class T>
void erase_at(google::protobuf::RepeatedPtrField<T>* field, int index) {
  field->DeleteSubrange(index, 1);
}

// ---- what the graph defines and uses --------------------------------------------------

int find_initializer(const onnx::GraphProto& g, const std::string& name) {
  for (int i = 0; i < g.initializer_size(); ++i)
    if (g.initializer(i).name() == name) return i;
  return -1;
}
int find_value_info(const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& list, const std::string& name) {
  for (int i = 0; i < list.size(); ++i)
    if (list.Get(i).name() == name) return i;
  return -1;
}
int find_producer(const onnx::GraphProto& g, const std::string& value) {
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& o : g.node(i).output())
      if (o == value) return i;
  return -1;
}
bool is_graph_level_value(const onnx::GraphProto& g, const std::string& value) {
  return find_value_info(g.input(), value) >= 0 || find_initializer(g, value) >= 0;
}
// Defined anywhere: graph input, initializer or node output.
bool value_exists(const onnx::GraphProto& g, const std::string& value) {
  return is_graph_level_value(g, value) || find_producer(g, value) >= 0;
}
// Usable by a node placed at `position` without breaking the sorted node list.
bool available_before(const onnx::GraphProto& g, const std::string& value, int position) {
  if (is_graph_level_value(g, value)) return true;
  int p = find_producer(g, value);
  return p >= 0 && p < position;
}
// Who still needs `value`: "node 'x'" / "graph output", or "" when nobody.
std::string user_of(const onnx::GraphProto& g, const std::string& value, int skip_node = -1) {
  if (find_value_info(g.output(), value) >= 0) return "the graph output '" + value + "'";
  NodeNames names;
  bool named = false;
  for (int i = 0; i < g.node_size(); ++i) {
    if (i == skip_node) continue;
    const auto& n = g.node(i);
    bool uses = std::find(n.input().begin(), n.input().end(), value) != n.input().end();
    if (!uses) {
      auto implicit = implicit_inputs(n);
      uses = std::binary_search(implicit.begin(), implicit.end(), value);
    }
    if (uses) {
      if (!named) names = name_nodes(g), named = true;
      return "node '" + names.names[static_cast<size_t>(i)] + "'";
    }
  }
  return "";
}

// ---- applying one edit: validate everything first, then mutate, return the inverse -----

Result<Undo> apply_set_weight(onnx::ModelProto& m, const Edit& e) {
  auto w = find_weight(m, e.value);
  if (!w) return make_error("no weight named '{}' (neither an initializer nor a Constant output)", e.value);
  FETAFIX_TRY_STATUS(check_tensor(e.tensor, "new value of '" + e.value + "'"));
  const int index = static_cast<int>(w->index);
  Undo undo;
  if (w->storage == WeightStorage::kInitializer) {
    undo = [index, old = m.graph().initializer(index)](onnx::ModelProto& mm) {
      *mm.mutable_graph()->mutable_initializer(index) = old;
    };
  } else {
    undo = [index, old = m.graph().node(index)](onnx::ModelProto& mm) { *mm.mutable_graph()->mutable_node(index) = old; };
  }
  FETAFIX_TRY_STATUS(set_weight(m, e.value, e.tensor));
  return undo;
}

Result<int> resolve_node(const onnx::GraphProto& g, const std::string& name) {
  auto i = find_node(g, name);
  if (!i) return make_error("no node named '{}'", name);
  return static_cast<int>(*i);
}

Result<Undo> apply_set_attribute(onnx::ModelProto& m, const Edit& e) {
  FETAFIX_ASSIGN_OR_RETURN(int n, resolve_node(m.graph(), e.node));
  if (e.attribute.name().empty()) return make_error("node '{}': the new attribute has no name", e.node);
  if (e.attribute.type() == onnx::AttributeProto::UNDEFINED)
    return make_error("node '{}': the new attribute '{}' has no type", e.node, e.attribute.name());
  auto& node = *m.mutable_graph()->mutable_node(n);
  const int a = attribute_index(node, e.attribute.name());
  Undo undo;
  if (a >= 0) {
    undo = [n, a, old = node.attribute(a)](onnx::ModelProto& mm) {
      *mm.mutable_graph()->mutable_node(n)->mutable_attribute(a) = old;
    };
  } else {
    const int appended = node.attribute_size();
    undo = [n, appended](onnx::ModelProto& mm) { erase_at(mm.mutable_graph()->mutable_node(n)->mutable_attribute(), appended); };
  }
  set_attribute(node, e.attribute);
  return undo;
}

Result<Undo> apply_remove_attribute(onnx::ModelProto& m, const Edit& e) {
  FETAFIX_ASSIGN_OR_RETURN(int n, resolve_node(m.graph(), e.node));
  auto& node = *m.mutable_graph()->mutable_node(n);
  const int a = attribute_index(node, e.attribute_name);
  if (a < 0) return make_error("node '{}' has no attribute '{}'", e.node, e.attribute_name);
  Undo undo = [n, a, old = node.attribute(a)](onnx::ModelProto& mm) {
    insert_at(mm.mutable_graph()->mutable_node(n)->mutable_attribute(), a, old);
  };
  erase_at(node.mutable_attribute(), a);
  return undo;
}

Result<Undo> apply_insert_node(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  const auto& node = e.node_proto;
  const std::string& name = node.name();
  if (name.empty()) return make_error("the new {} node has no name (edits refer to nodes by name)", node.op_type());
  if (node.op_type().empty()) return make_error("node '{}' has no op_type", name);
  if (find_node(g, name)) return make_error("a node named '{}' already exists", name);
  if (e.index < -1 || e.index > g.node_size())
    return make_error("node '{}': position {} is outside 0..{}", name, e.index, g.node_size());
  const int position = e.index < 0 ? g.node_size() : static_cast<int>(e.index);
  std::set<std::string> outputs;
  for (const auto& o : node.output()) {
    if (o.empty()) continue;
    if (value_exists(g, o) || !outputs.insert(o).second)
      return make_error("node '{}': output '{}' is already defined", name, o);
  }
  for (const auto& i : node.input())
    if (!i.empty() && !available_before(g, i, position))
      return make_error("node '{}': input '{}' is not produced before position {}", name, i, position);
  insert_at(m.mutable_graph()->mutable_node(), position, node);
  return Undo([position](onnx::ModelProto& mm) { erase_at(mm.mutable_graph()->mutable_node(), position); });
}

Result<Undo> apply_remove_node(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  FETAFIX_ASSIGN_OR_RETURN(int n, resolve_node(g, e.node));
  for (const auto& o : g.node(n).output()) {
    if (o.empty()) continue;
    std::string user = user_of(g, o, n);
    if (!user.empty()) return make_error("node '{}': its output '{}' is still used by {}", e.node, o, user);
  }
  Undo undo = [n, old = g.node(n)](onnx::ModelProto& mm) { insert_at(mm.mutable_graph()->mutable_node(), n, old); };
  erase_at(m.mutable_graph()->mutable_node(), n);
  return undo;
}

Result<Undo> apply_set_node_input(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  FETAFIX_ASSIGN_OR_RETURN(int n, resolve_node(g, e.node));
  const int count = g.node(n).input_size();
  if (e.index < 0 || e.index > count)
    return make_error("node '{}': input index {} is outside 0..{}", e.node, e.index, count);
  if (!e.value.empty() && !available_before(g, e.value, n))
    return make_error("node '{}': value '{}' is not produced before the node", e.node, e.value);
  auto& node = *m.mutable_graph()->mutable_node(n);
  const int k = static_cast<int>(e.index);
  if (k == count) {
    node.add_input(e.value);
    return Undo([n](onnx::ModelProto& mm) { mm.mutable_graph()->mutable_node(n)->mutable_input()->RemoveLast(); });
  }
  Undo undo = [n, k, old = node.input(k)](onnx::ModelProto& mm) { mm.mutable_graph()->mutable_node(n)->set_input(k, old); };
  node.set_input(k, e.value);
  return undo;
}

Result<Undo> apply_set_graph_input(onnx::ModelProto& m, const Edit& e) {
  const std::string& name = e.value_info.name();
  if (name.empty()) return make_error("the new input has no name");
  const int i = find_value_info(m.graph().input(), name);
  if (i < 0) return make_error("no graph input named '{}'", name);
  Undo undo = [i, old = m.graph().input(i)](onnx::ModelProto& mm) { *mm.mutable_graph()->mutable_input(i) = old; };
  *m.mutable_graph()->mutable_input(i) = e.value_info;
  return undo;
}

Result<Undo> apply_remove_graph_output(onnx::ModelProto& m, const Edit& e) {
  const int i = find_value_info(m.graph().output(), e.value);
  if (i < 0) return make_error("no graph output named '{}'", e.value);
  if (m.graph().output_size() == 1) return make_error("'{}' is the only graph output", e.value);
  Undo undo = [i, old = m.graph().output(i)](onnx::ModelProto& mm) { insert_at(mm.mutable_graph()->mutable_output(), i, old); };
  erase_at(m.mutable_graph()->mutable_output(), i);
  return undo;
}

Result<Undo> apply_add_graph_output(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  const std::string& name = e.value_info.name();
  if (name.empty()) return make_error("the new output has no name");
  if (find_value_info(g.output(), name) >= 0) return make_error("'{}' is already a graph output", name);
  if (!value_exists(g, name)) return make_error("no value named '{}' in the graph", name);
  if (e.index < -1 || e.index > g.output_size())
    return make_error("output '{}': position {} is outside 0..{}", name, e.index, g.output_size());
  const int position = e.index < 0 ? g.output_size() : static_cast<int>(e.index);
  insert_at(m.mutable_graph()->mutable_output(), position, e.value_info);
  return Undo([position](onnx::ModelProto& mm) { erase_at(mm.mutable_graph()->mutable_output(), position); });
}

Result<Undo> apply_add_initializer(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  if (e.value.empty()) return make_error("the new initializer has no name");
  if (find_initializer(g, e.value) >= 0) return make_error("an initializer named '{}' already exists", e.value);
  if (find_producer(g, e.value) >= 0) return make_error("'{}' is already produced by a node", e.value);
  FETAFIX_TRY_STATUS(check_tensor(e.tensor, "initializer '" + e.value + "'"));
  const int position = g.initializer_size();
  *m.mutable_graph()->add_initializer() = tensor_to_proto(e.tensor, e.value);
  return Undo([position](onnx::ModelProto& mm) { erase_at(mm.mutable_graph()->mutable_initializer(), position); });
}

Result<Undo> apply_remove_initializer(onnx::ModelProto& m, const Edit& e) {
  const auto& g = m.graph();
  const int i = find_initializer(g, e.value);
  if (i < 0) return make_error("no initializer named '{}'", e.value);
  std::string user = user_of(g, e.value);
  if (!user.empty()) return make_error("'{}' is still used by {}", e.value, user);
  Undo undo = [i, old = g.initializer(i)](onnx::ModelProto& mm) { insert_at(mm.mutable_graph()->mutable_initializer(), i, old); };
  erase_at(m.mutable_graph()->mutable_initializer(), i);
  return undo;
}

Result<Undo> apply_edit(onnx::ModelProto& m, const Edit& e) {
  Result<Undo> r = [&]() -> Result<Undo> {
    switch (e.kind) {
      case EditKind::kSetWeight: return apply_set_weight(m, e);
      case EditKind::kSetAttribute: return apply_set_attribute(m, e);
      case EditKind::kRemoveAttribute: return apply_remove_attribute(m, e);
      case EditKind::kInsertNode: return apply_insert_node(m, e);
      case EditKind::kRemoveNode: return apply_remove_node(m, e);
      case EditKind::kSetNodeInput: return apply_set_node_input(m, e);
      case EditKind::kSetGraphInput: return apply_set_graph_input(m, e);
      case EditKind::kRemoveGraphOutput: return apply_remove_graph_output(m, e);
      case EditKind::kAddGraphOutput: return apply_add_graph_output(m, e);
      case EditKind::kAddInitializer: return apply_add_initializer(m, e);
      case EditKind::kRemoveInitializer: return apply_remove_initializer(m, e);
    }
    return make_error("unknown edit kind {}", static_cast<int>(e.kind));
  }();
  if (!r.ok()) return make_error("{}: {}", edit_kind_name(e.kind), r.error().message);
  return r;
}

// ---- JSON ---------------------------------------------------------------------------

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<std::byte>& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(std::to_integer<uint8_t>(bytes[k])); };
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    for (int s = 18; s >= 0; s -= 6) out += kBase64[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = at(i) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::vector<std::byte>> base64_decode(const std::string& text) {
  if (text.size() % 4 != 0) return make_error("base64 text length {} is not a multiple of 4", text.size());
  std::vector<std::byte> out;
  out.reserve(text.size() / 4 * 3);
  auto digit = [](char c) -> int {
    const char* p = std::strchr(kBase64, c);
    return (c != '\0' && p) ? static_cast<int>(p - kBase64) : -1;
  };
  for (size_t i = 0; i < text.size(); i += 4) {
    int pad = 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      int d = 0;
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
      } else if (pad > 0 || (d = digit(c)) < 0) {
        return make_error("invalid base64 character at offset {}", i + k);
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<std::byte>(v >> 16));
    if (pad < 2) out.push_back(static_cast<std::byte>((v >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<std::byte>(v & 0xff));
  }
  return out;
}

json tensor_to_json(const Tensor& t) {
  return json{{"dtype", std::string(dtype_name(t.dtype))}, {"dims", t.shape}, {"raw_base64", base64_encode(t.bytes)}};
}

template <class Message>
json proto_to_json(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // "op_type", as in onnx.proto
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) return json();  // only fails for Any types, which ONNX protos never contain
  return json::parse(text);
}

template <class Message>
Status proto_from_json(const json& j, Message& message, const std::string& key) {
  if (!j.is_object()) return make_error("'{}' must be a JSON object", key);
  google::protobuf::util::JsonParseOptions options;
  auto status = google::protobuf::util::JsonStringToMessage(j.dump(), &message, options);
  if (!status.ok()) return make_error("'{}' is not a valid {}: {}", key, Message::descriptor()->name(), status.ToString());
  return {};
}

// A field of an edit object, with its type checked.
struct Fields {
  const json& j;
  Result<std::string> string(const char* key) const {
    if (!j.contains(key) || !j.at(key).is_string()) return make_error("needs a string '{}'", key);
    return j.at(key).get<std::string>();
  }
  Result<int64_t> integer(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    if (!j.contains(key)) {
      if (fallback) return *fallback;
      return make_error("needs an integer '{}'", key);
    }
    if (!j.at(key).is_number_integer()) return make_error("'{}' must be an integer", key);
    return j.at(key).get<int64_t>();
  }
  Result<Tensor> tensor(const char* key) const {
    if (!j.contains(key) || !j.at(key).is_object()) return make_error("needs a tensor object '{}'", key);
    const json& t = j.at(key);
    for (const auto& [k, v] : t.items())
      if (k != "dtype" && k != "dims" && k != "raw_base64") return make_error("'{}' has an unknown key '{}'", key, k);
    if (!t.contains("dtype") || !t.at("dtype").is_string()) return make_error("'{}' needs a string 'dtype'", key);
    if (!t.contains("dims") || !t.at("dims").is_array()) return make_error("'{}' needs an array 'dims'", key);
    if (!t.contains("raw_base64") || !t.at("raw_base64").is_string())
      return make_error("'{}' needs a string 'raw_base64'", key);
    const std::string dtype = t.at("dtype").get<std::string>();
    Tensor out;
    for (DType d : kAllDTypes)
      if (dtype_name(d) == dtype) out.dtype = d;
    if (out.dtype == DType::kUndefined) return make_error("'{}': unknown dtype '{}'", key, dtype);
    for (const auto& d : t.at("dims")) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return make_error("'{}': dims must be integers >= 0", key);
      out.shape.push_back(d.get<int64_t>());
    }
    auto bytes = base64_decode(t.at("raw_base64").get<std::string>());
    if (!bytes.ok()) return make_error("'{}': {}", key, bytes.error().message);
    out.bytes = std::move(bytes).value();
    FETAFIX_TRY_STATUS(check_tensor(out, "'" + std::string(key) + "'"));
    return out;
  }
};

std::vector<const char*> keys_of(EditKind kind) {
  switch (kind) {
    case EditKind::kSetWeight: return {"value", "tensor"};
    case EditKind::kSetAttribute: return {"node", "attribute"};
    case EditKind::kRemoveAttribute: return {"node", "attribute"};
    case EditKind::kInsertNode: return {"proto", "position"};
    case EditKind::kRemoveNode: return {"node"};
    case EditKind::kSetNodeInput: return {"node", "index", "value"};
    case EditKind::kSetGraphInput: return {"value_info"};
    case EditKind::kRemoveGraphOutput: return {"value"};
    case EditKind::kAddGraphOutput: return {"value_info", "position"};
    case EditKind::kAddInitializer: return {"value", "tensor"};
    case EditKind::kRemoveInitializer: return {"value"};
  }
  return {};
}

Result<Edit> parse_edit(const json& j, EditKind kind) {
  for (const auto& item : j.items()) {
    const std::string& k = item.key();  // not a structured binding: clang < 16 cannot capture those
    if (k == "kind") continue;
    auto keys = keys_of(kind);
    if (std::none_of(keys.begin(), keys.end(), [&](const char* allowed) { return k == allowed; }))
      return make_error("unknown key '{}'", k);
  }
  Fields f{j};
  Edit e;
  e.kind = kind;
  switch (kind) {
    case EditKind::kSetWeight:
    case EditKind::kAddInitializer: {
      FETAFIX_ASSIGN_OR_RETURN(e.value, f.string("value"));
      FETAFIX_ASSIGN_OR_RETURN(e.tensor, f.tensor("tensor"));
      break;
    }
    case EditKind::kSetAttribute: {
      FETAFIX_ASSIGN_OR_RETURN(e.node, f.string("node"));
      if (!j.contains("attribute")) return make_error("needs an object 'attribute'");
      FETAFIX_TRY_STATUS(proto_from_json(j.at("attribute"), e.attribute, "attribute"));
      break;
    }
    case EditKind::kRemoveAttribute: {
      FETAFIX_ASSIGN_OR_RETURN(e.node, f.string("node"));
      FETAFIX_ASSIGN_OR_RETURN(e.attribute_name, f.string("attribute"));
      break;
    }
    case EditKind::kInsertNode: {
      if (!j.contains("proto")) return make_error("needs an object 'proto'");
      FETAFIX_TRY_STATUS(proto_from_json(j.at("proto"), e.node_proto, "proto"));
      FETAFIX_ASSIGN_OR_RETURN(e.index, f.integer("position", -1));
      break;
    }
    case EditKind::kRemoveNode: {
      FETAFIX_ASSIGN_OR_RETURN(e.node, f.string("node"));
      break;
    }
    case EditKind::kSetNodeInput: {
      FETAFIX_ASSIGN_OR_RETURN(e.node, f.string("node"));
      FETAFIX_ASSIGN_OR_RETURN(e.index, f.integer("index"));
      FETAFIX_ASSIGN_OR_RETURN(e.value, f.string("value"));
      break;
    }
    case EditKind::kSetGraphInput:
    case EditKind::kAddGraphOutput: {
      if (!j.contains("value_info")) return make_error("needs an object 'value_info'");
      FETAFIX_TRY_STATUS(proto_from_json(j.at("value_info"), e.value_info, "value_info"));
      if (kind == EditKind::kAddGraphOutput) {
        FETAFIX_ASSIGN_OR_RETURN(e.index, f.integer("position", -1));
      }
      break;
    }
    case EditKind::kRemoveGraphOutput:
    case EditKind::kRemoveInitializer: {
      FETAFIX_ASSIGN_OR_RETURN(e.value, f.string("value"));
      break;
    }
  }
  return e;
}

}  // namespace

std::string_view edit_kind_name(EditKind kind) {
  switch (kind) {
    case EditKind::kSetWeight: return "set_weight";
    case EditKind::kSetAttribute: return "set_attribute";
    case EditKind::kRemoveAttribute: return "remove_attribute";
    case EditKind::kInsertNode: return "insert_node";
    case EditKind::kRemoveNode: return "remove_node";
    case EditKind::kSetNodeInput: return "set_node_input";
    case EditKind::kSetGraphInput: return "set_graph_input";
    case EditKind::kRemoveGraphOutput: return "remove_graph_output";
    case EditKind::kAddGraphOutput: return "add_graph_output";
    case EditKind::kAddInitializer: return "add_initializer";
    case EditKind::kRemoveInitializer: return "remove_initializer";
  }
  return "unknown";
}

Edit Edit::set_weight(std::string value, Tensor tensor) {
  Edit e;
  e.kind = EditKind::kSetWeight;
  e.value = std::move(value);
  e.tensor = std::move(tensor);
  return e;
}
Edit Edit::set_attribute(std::string node, onnx::AttributeProto attribute) {
  Edit e;
  e.kind = EditKind::kSetAttribute;
  e.node = std::move(node);
  e.attribute = std::move(attribute);
  return e;
}
Edit Edit::remove_attribute(std::string node, std::string attribute_name) {
  Edit e;
  e.kind = EditKind::kRemoveAttribute;
  e.node = std::move(node);
  e.attribute_name = std::move(attribute_name);
  return e;
}
Edit Edit::insert_node(onnx::NodeProto node, int64_t position) {
  Edit e;
  e.kind = EditKind::kInsertNode;
  e.node = node.name();
  e.node_proto = std::move(node);
  e.index = position;
  return e;
}
Edit Edit::remove_node(std::string node) {
  Edit e;
  e.kind = EditKind::kRemoveNode;
  e.node = std::move(node);
  return e;
}
Edit Edit::set_node_input(std::string node, int64_t index, std::string value) {
  Edit e;
  e.kind = EditKind::kSetNodeInput;
  e.node = std::move(node);
  e.index = index;
  e.value = std::move(value);
  return e;
}
Edit Edit::set_graph_input(onnx::ValueInfoProto input) {
  Edit e;
  e.kind = EditKind::kSetGraphInput;
  e.value = input.name();
  e.value_info = std::move(input);
  return e;
}
Edit Edit::remove_graph_output(std::string value) {
  Edit e;
  e.kind = EditKind::kRemoveGraphOutput;
  e.value = std::move(value);
  return e;
}
Edit Edit::add_graph_output(onnx::ValueInfoProto output, int64_t position) {
  Edit e;
  e.kind = EditKind::kAddGraphOutput;
  e.value = output.name();
  e.value_info = std::move(output);
  e.index = position;
  return e;
}
Edit Edit::add_initializer(std::string value, Tensor tensor) {
  Edit e;
  e.kind = EditKind::kAddInitializer;
  e.value = std::move(value);
  e.tensor = std::move(tensor);
  return e;
}
Edit Edit::remove_initializer(std::string value) {
  Edit e;
  e.kind = EditKind::kRemoveInitializer;
  e.value = std::move(value);
  return e;
}

Result<Edit> set_graph_input_shape(const onnx::ModelProto& model, const std::string& name,
                                   const std::vector<int64_t>& dims) {
  const int i = find_value_info(model.graph().input(), name);
  if (i < 0) return make_error("set_graph_input: no graph input named '{}'", name);
  onnx::ValueInfoProto vi = model.graph().input(i);
  if (!vi.type().has_tensor_type()) return make_error("set_graph_input: graph input '{}' is not a tensor", name);
  auto* shape = vi.mutable_type()->mutable_tensor_type()->mutable_shape();
  const onnx::TensorShapeProto old = *shape;
  shape->clear_dim();
  for (size_t k = 0; k < dims.size(); ++k) {
    auto* dim = shape->add_dim();
    if (dims[k] >= 0) dim->set_dim_value(dims[k]);
    else if (static_cast<int>(k) < old.dim_size() && old.dim(static_cast<int>(k)).has_dim_param())
      dim->set_dim_param(old.dim(static_cast<int>(k)).dim_param());
  }
  return Edit::set_graph_input(std::move(vi));
}

std::string describe(const Edit& e) {
  const std::string kind(edit_kind_name(e.kind));
  auto tensor_text = [](const Tensor& t) { return std::string(dtype_name(t.dtype)) + shape_to_string(t.shape); };
  switch (e.kind) {
    case EditKind::kSetWeight:
    case EditKind::kAddInitializer: return fmt::format("{} '{}' {}", kind, e.value, tensor_text(e.tensor));
    case EditKind::kSetAttribute: return fmt::format("{} '{}'.{}", kind, e.node, e.attribute.name());
    case EditKind::kRemoveAttribute: return fmt::format("{} '{}'.{}", kind, e.node, e.attribute_name);
    case EditKind::kInsertNode:
      return fmt::format("{} '{}' ({}) at {}", kind, e.node_proto.name(), e.node_proto.op_type(),
                         e.index < 0 ? std::string("end") : std::to_string(e.index));
    case EditKind::kRemoveNode: return fmt::format("{} '{}'", kind, e.node);
    case EditKind::kSetNodeInput: return fmt::format("{} '{}'[{}] = '{}'", kind, e.node, e.index, e.value);
    case EditKind::kSetGraphInput:
    case EditKind::kAddGraphOutput: return fmt::format("{} '{}'", kind, e.value_info.name());
    case EditKind::kRemoveGraphOutput:
    case EditKind::kRemoveInitializer: return fmt::format("{} '{}'", kind, e.value);
  }
  return kind;
}

json edit_to_json(const Edit& e) {
  json j{{"kind", std::string(edit_kind_name(e.kind))}};
  switch (e.kind) {
    case EditKind::kSetWeight:
    case EditKind::kAddInitializer:
      j["value"] = e.value;
      j["tensor"] = tensor_to_json(e.tensor);
      break;
    case EditKind::kSetAttribute:
      j["node"] = e.node;
      j["attribute"] = proto_to_json(e.attribute);
      break;
    case EditKind::kRemoveAttribute:
      j["node"] = e.node;
      j["attribute"] = e.attribute_name;
      break;
    case EditKind::kInsertNode:
      j["proto"] = proto_to_json(e.node_proto);
      j["position"] = e.index;
      break;
    case EditKind::kRemoveNode: j["node"] = e.node; break;
    case EditKind::kSetNodeInput:
      j["node"] = e.node;
      j["index"] = e.index;
      j["value"] = e.value;
      break;
    case EditKind::kSetGraphInput: j["value_info"] = proto_to_json(e.value_info); break;
    case EditKind::kAddGraphOutput:
      j["value_info"] = proto_to_json(e.value_info);
      j["position"] = e.index;
      break;
    case EditKind::kRemoveGraphOutput:
    case EditKind::kRemoveInitializer: j["value"] = e.value; break;
  }
  return j;
}

Result<Edit> edit_from_json(const json& j) {
  if (!j.is_object()) return make_error("an edit must be a JSON object");
  if (!j.contains("kind") || !j.at("kind").is_string()) return make_error("an edit needs a string 'kind'");
  const std::string kind = j.at("kind").get<std::string>();
  for (EditKind k : kAllKinds) {
    if (edit_kind_name(k) != kind) continue;
    auto e = parse_edit(j, k);
    if (!e.ok()) return make_error("{}: {}", kind, e.error().message);
    if (k == EditKind::kInsertNode) e->node = e->node_proto.name();
    if (k == EditKind::kSetGraphInput || k == EditKind::kAddGraphOutput) e->value = e->value_info.name();
    return e;
  }
  return make_error("unknown edit kind '{}'", kind);
}

json edits_to_json(const std::vector<Edit>& edits) {
  json list = json::array();
  for (const auto& e : edits) list.push_back(edit_to_json(e));
  return json{{"format", "fetafix-edits"}, {"version", 1}, {"edits", std::move(list)}};
}

Result<std::vector<Edit>> edits_from_json(const json& j) {
  if (!j.is_object() || j.value("format", std::string()) != "fetafix-edits")
    return make_error("not a fetafix edit list (expected \"format\": \"fetafix-edits\")");
  if (!j.contains("version") || !j.at("version").is_number_integer() || j.at("version").get<int64_t>() != 1)
    return make_error("edit list: unsupported version (expected 1)");
  if (!j.contains("edits") || !j.at("edits").is_array()) return make_error("edit list: needs an array 'edits'");
  std::vector<Edit> out;
  for (size_t i = 0; i < j.at("edits").size(); ++i) {
    auto e = edit_from_json(j.at("edits").at(i));
    if (!e.ok()) return make_error("edit #{}: {}", i, e.error().message);
    out.push_back(std::move(e).value());
  }
  return out;
}

Status EditLog::apply(const Edit& edit) {
  FETAFIX_ASSIGN_OR_RETURN(Undo undo, apply_edit(*model_, edit));
  edits_.push_back(edit);
  undos_.push_back(std::move(undo));
  return {};
}

Status EditLog::apply_all(const std::vector<Edit>& edits) {
  for (size_t i = 0; i < edits.size(); ++i) {
    Status s = apply(edits[i]);
    if (!s.ok()) {
      for (size_t k = 0; k < i; ++k) undo_last();
      return make_error("edit #{}: {}", i, s.error().message);
    }
  }
  return {};
}

bool EditLog::undo_last() {
  if (undos_.empty()) return false;
  undos_.back()(*model_);
  undos_.pop_back();
  edits_.pop_back();
  return true;
}

void EditLog::undo_all() {
  while (undo_last()) {
  }
}

Status replay(const json& edits, onnx::ModelProto& model) {
  FETAFIX_ASSIGN_OR_RETURN(auto list, edits_from_json(edits));
  EditLog log(model);
  return log.apply_all(list);
}

}  // namespace fetafix::model
