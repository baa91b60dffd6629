// Loading and saving ONNX models. Loading never depends on ONNX's checker or shape
// inference (Debian's 1.12 stops at IR 8 / opset 17): newer models load as they are, and
// fields this ONNX version does not know survive a round trip as protobuf unknown fields.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::model {

struct Model {
  onnx::ModelProto proto;
  std::filesystem::path path;  // where it was loaded from (empty if built in memory)
};

// Loads an ONNX file. Errors (one line naming the file): missing, unreadable, not an ONNX
// protobuf, no graph, external data file missing/outside the model's folder.
// External-data tensors are read into raw_data at load time, resolved only inside the
// model's own folder: a location that is absolute or escapes it (.., symlink out) is refused.
// Handles files up to protobuf's 2 GB limit.
Result<Model> load_model(const std::filesystem::path& path);

// Same from bytes already in memory (`label` names it in errors). A tensor stored as
// external data is an error here: there is no folder to resolve it in.
Result<Model> parse_model(std::string_view bytes, const std::string& label);

// The checks every loaded model gets (load_model and parse_model call it), so no later layer
// meets a shape it cannot compute with: declared dims are >= -1 (-1 is "unknown", as some
// converters write it; -5 is refused), initializer dims are >= 0, their element count fits in
// 64 bits and their data size matches the dims, and the top-level node list has no cycle
// (GraphView::build). Errors name `label` and the value or node at fault.
Status check_model_structure(const onnx::ModelProto& model, const std::string& label);

// What fetafix allocates for a model's inputs stays under `max_tensor_bytes`: for each graph
// input, the bytes of its declared shape with unknown dims counted as 1 (so [N,3,1e6,1e6] is
// refused per image, and a fixed batch of 1e6 as a whole). Errors name `label`, the input, its
// shape and the limit (common/limits.h).
Status check_input_sizes(const onnx::ModelProto& model, const std::string& label, uint64_t max_tensor_bytes);

// Deterministic serialization (same model -> same bytes, every run), written atomically.
// Refuses to overwrite any of `never_overwrite` (pass the inputs) with an error naming the path,
// and refuses models over protobuf's 2 GB limit (external data is never written).
Status save_model(const onnx::ModelProto& model, const std::filesystem::path& path,
                  const std::vector<std::filesystem::path>& never_overwrite = {});

// Deterministic bytes. Empty for a model over 2 GB, which protobuf cannot serialize.
std::string serialize_model(const onnx::ModelProto& model);

}  // namespace fetafix::model
