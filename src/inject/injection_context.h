// Internal to src/inject: what every fault injector shares. Injectors change the model only
// through Injection::apply (the edit log), and name nodes by their first output value ("handle"),
// which, unlike a synthesized node name, does not move when nodes are inserted before it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "inject/fault_spec.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/graph.h"

namespace fetafix::inject::detail {

// What one injector reports; inject() turns it into a ground-truth entry.
struct Injected {
  std::vector<std::string> node_handles;   // first outputs of the nodes changed or added (still present)
  std::vector<std::string> removed_nodes;  // names of nodes removed, as they were
  std::vector<std::string> values;         // weights, graph inputs/outputs and other values changed
  std::string description;
  nlohmann::json details = nlohmann::json::object();  // fault-specific facts (old/new attribute values, ...)
};

enum class DefaultNodes { kAll, kFirst };

class Injection {
 public:
  Injection(onnx::ModelProto& model, model::EditLog& log, const FaultSpec& spec, Rng& rng)
      : model_(&model), log_(&log), spec_(&spec), rng_(&rng) {}

  const onnx::ModelProto& model() const { return *model_; }
  const onnx::GraphProto& graph() const { return model_->graph(); }
  const FaultSpec& spec() const { return *spec_; }
  Status apply(const model::Edit& edit) { return log_->apply(edit); }

  int64_t opset() const;                                   // default-domain opset (1 when absent)
  std::string fresh_name(const std::string& base) const;  // no node or value has it yet
  std::optional<size_t> node_index(const std::string& handle) const;
  std::string node_name(const std::string& handle) const;  // the name edits use now
  const onnx::NodeProto& node(const std::string& handle) const;
  static std::string handle_of(const onnx::NodeProto& node) { return node.output_size() ? node.output(0) : ""; }

  // The nodes the spec's node=/layers= names among those `eligible` accepts (`what` describes
  // them in errors, e.g. "Conv/MaxPool with non-zero pads"), as handles in graph order.
  Result<std::vector<std::string>> select_nodes(const std::function<bool(const onnx::NodeProto&)>& eligible,
                                                const std::string& what, DefaultNodes default_nodes);

  // Points every use of `from` (node inputs and graph outputs) except by node `except_handle` at
  // `to`, and reports the nodes and graph outputs so changed in `out`.
  Status redirect_uses(const std::string& from, const std::string& to, const std::string& except_handle,
                       Injected& out);
  // Removes weight `value` (initializer or Constant node) when nothing uses it any more.
  Status remove_weight_if_unused(const std::string& value);
  bool value_used(const std::string& value) const;  // by a node input or a graph output

  // The first graph input that is not an initializer.
  Result<std::string> first_real_input() const;

 private:
  onnx::ModelProto* model_;
  model::EditLog* log_;
  const FaultSpec* spec_;
  Rng* rng_;
};

// Parsers for spec values; errors say what was expected.
Result<int64_t> parse_int(const std::string& text, const std::string& what);
Result<double> parse_double(const std::string& text, const std::string& what);
Result<std::vector<int64_t>> parse_ints(const std::string& text, const std::string& what);

onnx::ValueInfoProto float_value_info(const std::string& name, DType dtype);
onnx::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                          std::vector<std::string> outputs, std::vector<onnx::AttributeProto> attributes = {});

// "NCHW" or "NHWC" from an image input's dims (a channel dim of 1 or 3 at position 1 wins);
// an error naming the input otherwise.
Result<std::string> input_layout(const std::vector<int64_t>& dims, const std::string& input);
// Flips the first graph input's layout (NCHW -> NHWC, NHWC -> NCHW) with Transpose(perm) after
// it feeding what the input fed: perm [0,3,1,2] (resp. [0,2,3,1]) is the faithful rewrite
// (benign:nhwc), any other a TSS fault.
Result<Injected> flip_input_layout(Injection& in, const std::vector<int64_t>& perm);
// The Conv/pool's number of spatial dims (kernel_shape, strides, pads or weight rank); 0 unknown.
int64_t spatial_rank(const onnx::ModelProto& model, const onnx::NodeProto& node);
// The graph input's dims, -1 where dynamic; error when it has no tensor shape.
Result<std::vector<int64_t>> input_dims(const onnx::GraphProto& graph, const std::string& input);

// Injectors, one per fault type (the spec's `fault` picks the variant).
Result<Injected> inject_weights(Injection& in);       // WB
Result<Injected> inject_hyperparameter(Injection& in);  // LH
Result<Injected> inject_structure(Injection& in);    // TSS, ID, CG
Result<Injected> inject_preprocessing(Injection& in);  // PP
Result<Injected> inject_benign(Injection& in);       // benign rewrites made of edits

// Whole-model rewrites (benign:ort-optimized, benign:opset): a new model, not an edit list.
bool is_whole_model_rewrite(const FaultSpec& spec);
Result<onnx::ModelProto> rewrite_whole_model(const onnx::ModelProto& model, const FaultSpec& spec);

}  // namespace fetafix::inject::detail
