// Undoable, serializable model edits: the only way localize/repair changes a model, so every
// change can be reverted exactly and replayed on another copy. Edits name nodes (see
// graph.h name_nodes: real or synthesized names) and values, never pointers.
// JSON schema and guarantees: docs/edits.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::model {

enum class EditKind {
  kSetWeight,
  kSetAttribute,
  kRemoveAttribute,
  kInsertNode,
  kRemoveNode,
  kSetNodeInput,
  kSetGraphInput,
  kRemoveGraphOutput,
  kAddGraphOutput,
  kAddInitializer,
  kRemoveInitializer,
};
std::string_view edit_kind_name(EditKind kind);  // "set_weight", ... (the JSON "kind")

// One edit; which fields matter depends on `kind` (see the factories).
struct Edit {
  EditKind kind = EditKind::kSetWeight;
  std::string node;                  // node name
  std::string value;                 // value name
  std::string attribute_name;        // remove_attribute
  int64_t index = -1;                // input position (set_node_input); list position, -1 = end (insert_node, add_graph_output)
  Tensor tensor;                     // set_weight, add_initializer
  onnx::AttributeProto attribute;    // set_attribute
  onnx::NodeProto node_proto;        // insert_node
  onnx::ValueInfoProto value_info;   // set_graph_input, add_graph_output

  // A weight (initializer or Constant output) gets new contents where it is stored.
  static Edit set_weight(std::string value, Tensor tensor);
  // Replaces the attribute of the same name in place, or appends it.
  static Edit set_attribute(std::string node, onnx::AttributeProto attribute);
  static Edit remove_attribute(std::string node, std::string attribute_name);
  // Inserts before node index `position` (-1 = at the end). The node needs a name not yet used,
  // new output names, and inputs available before `position`.
  static Edit insert_node(onnx::NodeProto node, int64_t position = -1);
  // Refused while another node or a graph output still uses one of its outputs.
  static Edit remove_node(std::string node);
  // Points input `index` of `node` at `value` ("" = omitted optional input); index == input
  // count appends. The value must be available before the node (keeps the list sorted).
  static Edit set_node_input(std::string node, int64_t index, std::string value);
  // Replaces the graph input of the same name (type and shape).
  static Edit set_graph_input(onnx::ValueInfoProto input);
  static Edit remove_graph_output(std::string value);
  static Edit add_graph_output(onnx::ValueInfoProto output, int64_t position = -1);
  static Edit add_initializer(std::string value, Tensor tensor);
  // Refused while a node or graph output still uses it.
  static Edit remove_initializer(std::string value);
};

// A set_graph_input edit that changes only the shape of graph input `name`, keeping its element
// type. A dim < 0 becomes dynamic, keeping the symbolic name the old dim had at that position.
Result<Edit> set_graph_input_shape(const onnx::ModelProto& model, const std::string& name,
                                   const std::vector<int64_t>& dims);

// One line for logs and reports, e.g. "set_weight 'conv1.w' float32[16,3,3,3]".
std::string describe(const Edit& edit);

nlohmann::json edit_to_json(const Edit& edit);
Result<Edit> edit_from_json(const nlohmann::json& json);
// {"format": "fetafix-edits", "version": 1, "edits": [...]}
nlohmann::json edits_to_json(const std::vector<Edit>& edits);
Result<std::vector<Edit>> edits_from_json(const nlohmann::json& json);

// Applies edits to one model and remembers how to revert each. The model must not be changed
// by anything else while the log holds edits (undo restores positions it recorded).
class EditLog {
 public:
  explicit EditLog(onnx::ModelProto& model) : model_(&model) {}
  // On failure the model is unchanged and nothing is logged.
  Status apply(const Edit& edit);
  // All or nothing: on the first failure the edits applied by this call are undone; the error
  // names the failing edit's position in `edits`.
  Status apply_all(const std::vector<Edit>& edits);
  bool undo_last();  // false when there is nothing to undo
  void undo_all();
  size_t size() const { return edits_.size(); }
  const std::vector<Edit>& edits() const { return edits_; }
  nlohmann::json to_json() const { return edits_to_json(edits_); }

 private:
  onnx::ModelProto* model_;
  std::vector<Edit> edits_;
  std::vector<std::function<void(onnx::ModelProto&)>> undos_;
};

// Parses an edit list (edits_to_json's format) and applies it, all or nothing. Applying the JSON
// of a log to a copy of the model the log started from gives byte-identical serialize_model().
Status replay(const nlohmann::json& edits, onnx::ModelProto& model);

}  // namespace fetafix::model
