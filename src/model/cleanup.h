// Removing what a model no longer uses, so a repaired model is as clean as a converter's output:
// a repair that points a node at a new weight leaves the old one behind, and ONNX Runtime warns
// about every unused initializer when it loads the model. A pure, deterministic function of the
// model (the same model gives the same bytes); `fetafix repair` and `fetafix apply` both run it
// after the edits, which is how a patch still replays byte for byte (docs/edits.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::model {

struct CleanupReport {
  std::vector<std::string> nodes_removed;         // names as name_nodes gave them before the cleanup
  std::vector<std::string> initializers_removed;  // also dropped from graph.input when listed there
  std::vector<std::string> value_info_removed;
  size_t removed() const { return nodes_removed.size() + initializers_removed.size() + value_info_removed.size(); }
};

// Removes from the top-level graph, until nothing more can go:
// - nodes of the standard domains ("", ai.onnx, ai.onnx.ml) none of whose outputs is read by a
//   node (subgraph reads included) or is a graph output — Constant nodes of unused weights, and
//   the weight chains (DequantizeLinear, Cast, ...) a repair bypassed. ONNX's standard ops have no
//   side effects; nodes of other domains are kept.
// - initializers nothing reads and that are not graph outputs (with their graph.input entry when
//   the model lists initializers as inputs, IR < 4 style; real graph inputs are never removed);
// - value_info entries for values that no longer exist, and repeated entries for one value.
// Everything else keeps its order. Subgraphs are not changed.
CleanupReport cleanup_model(onnx::ModelProto& model);

// Checks a model the way `onnx.checker` would. At opset <= 17 and IR <= 8 (what Debian's ONNX
// 1.12 knows) it runs onnx::checker::check_model (full check: schemas, attributes, types).
// Newer models get the structural checks the checker starts with, which need no schema: every
// value defined once (graph inputs, initializers, node outputs), every node input defined
// before the node reads it (topological order) or a known outer/optional name, graph outputs
// defined, node names unique, initializer names unique. `full_check` says which ran.
struct ModelCheck {
  bool full_check = false;
};
Result<ModelCheck> check_model(const onnx::ModelProto& model);

}  // namespace fetafix::model
