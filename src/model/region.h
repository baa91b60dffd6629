// Partial re-execution, graph side: which nodes of an edited model can compute something
// different from the model it was edited from, the values those nodes read from the unchanged
// part (the frontier), and a model made of just those nodes. The runtime feeds the frontier
// with cached values of the base model, so an edit near the output costs a fraction of a run.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::model {

// A model's nodes and initializers by content, to diff candidates against it cheaply.
class ModelFingerprint {
 public:
  ModelFingerprint() = default;
  explicit ModelFingerprint(const onnx::ModelProto& base);
  bool empty() const { return !valid_; }

 private:
  friend struct RegionFinder;
  bool valid_ = false;
  std::unordered_set<std::string> nodes_;                       // serialized NodeProtos
  std::unordered_map<std::string, std::string> initializers_;   // name -> serialized TensorProto
  std::string io_;                                              // inputs, outputs, opsets, IR version
};

struct ChangedRegion {
  std::vector<int> nodes;              // node indices in the candidate, in graph order
  std::vector<std::string> frontier;   // values the region reads from outside itself (no initializers), sorted
  std::string output;                  // the candidate's first graph output, computed inside the region
  // Share of the candidate's compute-heavy nodes (Conv, MatMul, Gemm, ...; all nodes when it
  // has none) inside the region: what a partial run costs relative to a full one.
  double cost_share = 1.0;
};

// The nodes of `candidate` that differ from the fingerprinted base (node contents, or an
// initializer they read) and every node downstream of them. nullopt when partial execution
// cannot stand in for a full run: graph inputs, outputs or opsets differ, a node has a
// subgraph, the first output does not depend on the change, the region reads a graph input,
// or nothing changed.
std::optional<ChangedRegion> find_changed_region(const ModelFingerprint& base, const onnx::ModelProto& candidate);

struct FrontierValue {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;  // -1: dynamic (the batch dim, unless the model fixes it)
};

// A model that computes `region.output` from the frontier values: the region's nodes and the
// initializers they read, with the frontier as graph inputs of the given types and shapes.
Result<onnx::ModelProto> extract_region(const onnx::ModelProto& candidate, const ChangedRegion& region,
                                        const std::map<std::string, FrontierValue>& frontier);

// ---------------------------------------------------------------------------------------------
// Replaying pieces of a model on values supplied from outside (layer-local replay: a Target
// region fed the Source's activations). A piece is found by walking back from its outputs.

// The nodes that compute `outputs` from `entries`: walking back from each output through
// producers, stopping at entries, graph inputs and initializers. Nodes computed from weights
// alone (Constant, a weight's DequantizeLinear) are part of the piece. Fails when an output is
// no value of the graph, or a node of the piece has a subgraph (If/Loop bodies read outer values
// by name, which a renamed copy cannot follow).
struct Subgraph {
  std::vector<int> nodes;                       // node indices, in graph order
  std::vector<std::string> entries_read;        // entries some node reads, sorted
  std::vector<std::string> graph_inputs_read;   // graph inputs (not initializers, not entries) read, sorted
};
Result<Subgraph> subgraph_between(const onnx::GraphProto& graph, const std::set<std::string>& entries,
                                  const std::vector<std::string>& outputs);

// One piece to copy into a combined model: its nodes and every value they produce are renamed
// `prefix + name`; an entry it reads is read from the combined model's input
// `entry_inputs.at(entry)` (several pieces may share one); graph inputs and initializers keep
// their names (one copy of each, shared).
struct SubgraphCopy {
  Subgraph piece;
  std::string prefix;
  std::vector<std::string> outputs;                    // become graph outputs `prefix + name`
  std::map<std::string, std::string> entry_inputs;     // entry value -> combined input name
};

// A model running every piece side by side in one session (one pass over a batch serves many
// regions). Inputs: the entry inputs with the types in `entry_types` (keyed by combined input
// name), then the original graph inputs read, as the model declares them. Opsets, IR version and
// functions are the model's. Fails when a renamed value would collide with an existing name.
Result<onnx::ModelProto> combine_subgraphs(const onnx::ModelProto& model, const std::vector<SubgraphCopy>& copies,
                                           const std::map<std::string, FrontierValue>& entry_types);

}  // namespace fetafix::model
