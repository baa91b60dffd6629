// The core layers of one model and the per-node features that matching compares.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "match/weight_compare.h"
#include "model/graph.h"

namespace fetafix::match {

// The main weight as the core node consumes it (after Transpose/DequantizeLinear/Cast/... chains),
// and how it is stored.
struct ResolvedWeight {
  DenseWeight effective;                // the value at the node's input, ONNX layout for the op
  std::string stored_value;             // the initializer / Constant output at the chain's end
  // effective = transpose(stored, stored_to_effective); empty when a Reshape made it unknowable.
  std::vector<int64_t> stored_to_effective;
};

struct CoreNode {
  size_t node = 0;                      // index into graph.node
  std::string name;
  std::string op_type;
  std::string family;                   // "Conv", "ConvTranspose", "Dense" (Gemm/MatMul), or op_type
  std::optional<ResolvedWeight> weight;
  int64_t out_axis = -1;                // the effective weight's output-channel axis; -1 unknown
  // Per-channel factors of a BatchNormalization (or per-channel Mul) right after the node:
  // gamma/sqrt(var+eps). Folding multiplies the weight's output channels by them.
  std::vector<float> bn_factors;
  std::string bn_node;
  // Attributes that describe the layer's geometry (not its faults: pads are left out).
  std::vector<int64_t> kernel_shape, strides, dilations;
  int64_t group = 1;
  // Position that survives reordering of independent branches and inserted/removed non-core
  // nodes: longest chain of core ancestors, and core ancestor/descendant counts, each 0..1.
  double depth = 0, ancestors = 0, descendants = 0;
};

// Core nodes of the model's top-level graph in topological order, with their features.
// Fails when the graph has a cycle.
Result<std::vector<CoreNode>> collect_core_nodes(const onnx::ModelProto& model, const std::set<std::string>& core_ops);

}  // namespace fetafix::match
