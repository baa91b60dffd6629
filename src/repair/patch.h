// Patch files: the kept repair edits (and the preprocessing a PP repair chose), replayable on
// the Target they were made for. Schema "fetafix.patch/1" (docs/repair-strategies.md):
//   {"schema": "fetafix.patch/1", "preprocess": <Preset::to_json()> | null,
//    "edits": [<edit JSON of docs/edits.md>, ...]}
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "data/preprocess.h"
#include "model/edit.h"

namespace fetafix::repair {

inline constexpr const char* kPatchSchema = "fetafix.patch/1";

struct Patch {
  std::optional<data::Preset> preprocess;  // feed the Target this way (no graph change)
  std::vector<model::Edit> edits;
};

nlohmann::json patch_to_json(const Patch& patch);
// `label` names the patch in errors (usually its path).
Result<Patch> patch_from_json(const nlohmann::json& json, const std::string& label = "patch");
Result<Patch> load_patch(const std::filesystem::path& path);
// Written atomically.
Status save_patch(const Patch& patch, const std::filesystem::path& path);

// Applies the edits to `model`, all or nothing: on failure the model is unchanged and the
// error names the failing edit. Applying a patch recorded from an EditLog to a copy of the model
// the log started from gives byte-identical model::serialize_model().
Status apply_patch(const Patch& patch, onnx::ModelProto& model);

}  // namespace fetafix::repair
