#include "repair/patch.h"

#include "common/fs.h"
#include "common/json_text.h"

namespace fetafix::repair {

using nlohmann::json;

json patch_to_json(const Patch& patch) {
  json edits = json::array();
  for (const auto& e : patch.edits) edits.push_back(model::edit_to_json(e));
  return {{"schema", kPatchSchema},
          {"preprocess", patch.preprocess ? patch.preprocess->to_json() : json(nullptr)},
          {"edits", std::move(edits)}};
}

Result<Patch> patch_from_json(const json& j, const std::string& label) {
  if (!j.is_object()) return make_error("{}: a patch must be a JSON object", label);
  for (const auto& [key, _] : j.items())
    if (key != "schema" && key != "preprocess" && key != "edits")
      return make_error("{}: unknown key '{}' (a typo?)", label, key);
  if (!j.contains("schema") || j["schema"] != kPatchSchema)
    return make_error("{}: not a fetafix patch (\"schema\" must be \"{}\")", label, kPatchSchema);
  Patch patch;
  if (j.contains("preprocess") && !j["preprocess"].is_null()) {
    data::Preset preset;
    if (auto st = data::apply_overrides(preset, j["preprocess"]); !st.ok())
      return make_error("{}: preprocess: {}", label, st.error().message);
    patch.preprocess = std::move(preset);
  }
  if (!j.contains("edits") || !j["edits"].is_array()) return make_error("{}: \"edits\" must be a list", label);
  for (size_t i = 0; i < j["edits"].size(); ++i) {
    auto e = model::edit_from_json(j["edits"][i]);
    if (!e.ok()) return make_error("{}: edit #{}: {}", label, i, e.error().message);
    patch.edits.push_back(std::move(e).value());
  }
  return patch;
}

Result<Patch> load_patch(const std::filesystem::path& path) {
  // A patch is a few KB to a few MB (weights as base64): 1 GiB is a generous ceiling.
  FETAFIX_ASSIGN_OR_RETURN(const std::string text, read_regular_file(path, "patch", uint64_t{1} << 30));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("patch '{}': not valid JSON", path.string());
  return patch_from_json(j, "patch '" + path.string() + "'");
}

Status save_patch(const Patch& patch, const std::filesystem::path& path) {
  return write_file_atomic(path, json_text(patch_to_json(patch)));
}

Status apply_patch(const Patch& patch, onnx::ModelProto& model) {
  model::EditLog log(model);
  return log.apply_all(patch.edits);
}

}  // namespace fetafix::repair
