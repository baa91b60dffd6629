// Preprocessing presets: how each framework turns a photo into the input tensor.
// Constants are the frameworks' own (see docs/preprocessing.md for sources).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "common/tensor.h"
#include "data/image.h"

namespace fetafix::data {

enum class Layout { kNCHW, kNHWC };
// PIL's resampling filters, reproduced to the byte (Pillow's Resample.c, 8-bit path).
enum class ResizeFilter { kNearest, kBox, kBilinear, kHamming, kBicubic, kLanczos };
enum class CropPolicy {
  kStretch,           // resize the whole image to the input size, aspect ignored
  kShorterSideCrop,   // resize the shorter side to size/crop_fraction (256 for 224), center-crop
                      // (torchvision Resize + CenterCrop)
  kCentralFraction,   // crop the central crop_fraction of the image, then resize to the input
                      // size (TF-slim / tf.image.central_crop + resize)
};
enum class ChannelOrder { kRGB, kBGR };

struct Preset {
  std::string name;
  // Input size; 0 = take it from the model's input.
  int width = 0;
  int height = 0;
  // Unset = take it from the model's input (a dim of 3 at position 1 -> NCHW, at 3 -> NHWC).
  std::optional<Layout> layout;
  // The framework's own layout: used when `layout` is unset and the model cannot tell
  // (an input of [N,3,H,3], or preprocessing with an unbound preset).
  Layout default_layout = Layout::kNCHW;
  ResizeFilter filter = ResizeFilter::kBilinear;
  // PIL widens the filter when downscaling (antialiasing); TF's resize does not.
  bool antialias = true;
  CropPolicy crop = CropPolicy::kStretch;
  double crop_fraction = 0.875;
  ChannelOrder channels = ChannelOrder::kRGB;
  // value = (pixel * scale - mean[c]) / std[c], with c in output channel order.
  float scale = 1.0f;
  std::array<float, 3> mean{0, 0, 0};
  std::array<float, 3> std{1, 1, 1};
  DType dtype = DType::kFloat32;  // kFloat32, or kUInt8 (raw bytes; scale/mean/std ignored)

  nlohmann::json to_json() const;
};

// The built-in presets: torch, tf (alias inception), caffe, raw, uint8.
std::vector<std::string> preset_names();
Result<Preset> preset_by_name(const std::string& name);

// A preset from a JSON file: {"base": "torch", "width": 299, ...} or a full description;
// keys are those of Preset::to_json(). Unknown keys are errors (they are typos).
Result<Preset> load_preset_file(const std::filesystem::path& path);
// Applies the keys of `overrides` (same schema) onto `preset`.
Status apply_overrides(Preset& preset, const nlohmann::json& overrides);

// Resolves a user's spec: a built-in name, or a path to a JSON preset file.
Result<Preset> resolve_preset(const std::string& spec);

// Fills in what the preset leaves to the model (size, layout) from the model input's
// shape (dims < 0 are dynamic). Errors if the input cannot take an RGB image.
Result<Preset> bind_preset_to_input(const Preset& preset, const std::vector<int64_t>& input_shape,
                                    DType input_dtype, const std::string& input_name);

// Resamples `src` to out_w x out_h with Pillow's algorithm (8-bit, two passes).
// box = source region {x0, y0, x1, y1} in pixels (may be fractional), default whole image;
// it is clamped to the image. A size <= 0 (or an empty src) gives an empty image.
Image resize(const Image& src, int out_w, int out_h, ResizeFilter filter, bool antialias = true,
             std::optional<std::array<double, 4>> box = std::nullopt);

// Writes one preprocessed image into `dst`, which holds width*height*3 elements of the
// preset's dtype in its layout. The preset must be bound (size and layout known); an
// unbound one gets 224x224 and its default_layout.
void preprocess_into(const Image& image, const Preset& preset, void* dst);

// Convenience: a [1, ...] tensor for one image.
Tensor preprocess(const Image& image, const Preset& preset);

}  // namespace fetafix::data
