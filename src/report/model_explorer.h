// Files Google's Model Explorer loads beside the two models in its split view, so a reader can
// browse the whole graphs with fetafix's alignment instead of writing a node mapping by hand:
//   mapping.json                     sync-navigation mapping (Source = left pane, Target = right)
//   {source,target}.problematic.json node data: % of problematic elements per ranked layer
//   {source,target}.mean_abs_diff.json node data: mean |Target - Source| on dissimilar images
//   {source,target}.findings.json    node data: faults per node (red) / harmless differences (green)
// Formats and how to load them: docs/model-explorer.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "localize/finding.h"
#include "localize/localize.h"

namespace fetafix::report {

// SyncNavigationData: one mapping entry per matched core pair; a BatchNormalization folded into
// the other side's layer joins its layer's entry (many-to-one).
nlohmann::json model_explorer_mapping(const match::MatchResult& matching);

// ModelNodeData: {graph id: {"results": {node id: {"value": v, ...}}, "gradient"|"thresholds": ...}}.
// Node ids are ONNX node names (what Model Explorer's ONNX adapter uses); the graph id is the
// graph's name.
struct ModelExplorerNodeData {
  std::string file;  // e.g. "source.problematic.json"
  nlohmann::json json;
};
std::vector<ModelExplorerNodeData> model_explorer_node_data(const onnx::ModelProto& source,
                                                            const onnx::ModelProto& target,
                                                            const localize::LocalizeResult& localization,
                                                            const std::vector<localize::Finding>& findings);

// Writes mapping.json and the node data files into `dir` (created if missing), each atomically.
// Returns the paths written.
Result<std::vector<std::filesystem::path>> write_model_explorer_files(const std::filesystem::path& dir,
                                                                      const onnx::ModelProto& source,
                                                                      const onnx::ModelProto& target,
                                                                      const localize::LocalizeResult& localization,
                                                                      const std::vector<localize::Finding>& findings);

}  // namespace fetafix::report
