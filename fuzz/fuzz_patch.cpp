// libFuzzer target: patch JSON -> patch_from_json -> apply_patch on a small CNN (every edit
// kind's checks) -> check_model_structure on the result (edits keep valid graphs valid).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "match/cnn_fixture.h"
#include "model/model.h"
#include "repair/patch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const onnx::ModelProto base = fetafix::testing::build_cnn();
  auto json = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr,
                                    /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  auto patch = fetafix::repair::patch_from_json(json, "fuzz");
  if (!patch.ok()) return 0;
  onnx::ModelProto model = base;
  if (!fetafix::repair::apply_patch(*patch, model).ok()) {
    // All or nothing: a failed patch leaves the model as it was.
    if (fetafix::model::serialize_model(model) != fetafix::model::serialize_model(base)) __builtin_trap();
    return 0;
  }
  if (!fetafix::model::check_model_structure(model, "patched").ok()) __builtin_trap();
  (void)fetafix::repair::patch_to_json(*patch).dump();
  return 0;
}
