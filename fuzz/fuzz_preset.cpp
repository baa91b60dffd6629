// libFuzzer target: preset JSON -> apply_overrides on each built-in preset -> to_json round
// trip -> bind_preset_to_input (NCHW and NHWC, float and uint8) -> preprocess_into on a small
// image when the bound size stays small.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/image.h"
#include "data/preprocess.h"

namespace {

const fetafix::data::Image& test_image() {
  static const fetafix::data::Image image = [] {
    fetafix::data::Image im;
    im.width = 13;
    im.height = 7;
    im.rgb.resize(13 * 7 * 3);
    for (size_t i = 0; i < im.rgb.size(); ++i) im.rgb[i] = static_cast<uint8_t>(i * 37);
    return im;
  }();
  return image;
}

void exercise(const fetafix::data::Preset& preset) {
  using fetafix::DType;
  const std::vector<std::pair<std::vector<int64_t>, DType>> inputs = {
      {{1, 3, -1, -1}, DType::kFloat32}, {{1, -1, -1, 3}, DType::kFloat32}, {{1, 3, 8, 8}, DType::kUInt8}};
  for (const auto& [shape, dtype] : inputs) {
    auto bound = fetafix::data::bind_preset_to_input(preset, shape, dtype, "x");
    if (!bound.ok()) continue;
    // Sizes up to 65536 are valid presets; preprocessing them is exercised only while small.
    if (bound->width > 64 || bound->height > 64) continue;
    std::vector<std::byte> out(static_cast<size_t>(bound->width) * bound->height * 3 * fetafix::dtype_size(bound->dtype));
    fetafix::data::preprocess_into(test_image(), *bound, out.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto json = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr,
                                    /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  for (const auto& name : fetafix::data::preset_names()) {
    auto preset = fetafix::data::preset_by_name(name);
    if (!preset.ok() || !fetafix::data::apply_overrides(*preset, json).ok()) continue;
    fetafix::data::Preset again = fetafix::data::preset_by_name(name).value();
    if (!fetafix::data::apply_overrides(again, preset->to_json()).ok()) __builtin_trap();  // to_json must round-trip
    exercise(*preset);
  }
  return 0;
}
