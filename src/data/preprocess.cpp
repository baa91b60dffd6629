// Preprocessing presets: built-ins, JSON overrides/files, binding to a model input, and
// the per-image pipeline (crop/resize with Pillow's resampler, then scale/normalize).
#include "data/preprocess.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/limits.h"
#include "data/resample.h"

namespace fetafix::data {
namespace {

using nlohmann::json;

constexpr int kDefaultInputSize = 224;

template <class Enum>
struct NamedValue {
  const char* name;
  Enum value;
};

constexpr NamedValue<Layout> kLayouts[] = {{"NCHW", Layout::kNCHW}, {"NHWC", Layout::kNHWC}};
constexpr NamedValue<ResizeFilter> kFilters[] = {
    {"nearest", ResizeFilter::kNearest}, {"box", ResizeFilter::kBox},         {"bilinear", ResizeFilter::kBilinear},
    {"hamming", ResizeFilter::kHamming}, {"bicubic", ResizeFilter::kBicubic}, {"lanczos", ResizeFilter::kLanczos}};
constexpr NamedValue<CropPolicy> kCrops[] = {{"stretch", CropPolicy::kStretch},
                                             {"shorter_side", CropPolicy::kShorterSideCrop},
                                             {"central_fraction", CropPolicy::kCentralFraction}};
constexpr NamedValue<ChannelOrder> kChannelOrders[] = {{"RGB", ChannelOrder::kRGB}, {"BGR", ChannelOrder::kBGR}};
constexpr NamedValue<DType> kDTypes[] = {{"float32", DType::kFloat32}, {"uint8", DType::kUInt8}};

template <class Enum, size_t N>
const char* name_of(const NamedValue<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return "?";
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

template <class Enum, size_t N>
Result<Enum> parse_named(const NamedValue<Enum> (&table)[N], const std::string& key, const json& value) {
  std::string choices;
  for (const auto& entry : table) choices += (choices.empty() ? "" : ", ") + std::string(entry.name);
  if (value.is_string()) {
    const std::string wanted = lowercase(value.get<std::string>());
    for (const auto& entry : table)
      if (lowercase(entry.name) == wanted) return entry.value;
  }
  return make_error("preset key '{}' must be one of {}, got {}", key, choices, value.dump());
}

Result<int> parse_size(const std::string& key, const json& value) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 1 << 16)
    return make_error("preset key '{}' must be an integer from 0 (from the model) to 65536, got {}", key, value.dump());
  return static_cast<int>(value.get<int64_t>());
}

Result<double> parse_number(const std::string& key, const json& value) {
  if (!value.is_number() || !std::isfinite(value.get<double>()))
    return make_error("preset key '{}' must be a number, got {}", key, value.dump());
  return value.get<double>();
}

// scale, mean and std are stored as float: a finite double beyond float's range (1e39) would
// become infinite there (and a preset that no longer round-trips through to_json, which fuzz_preset
// found), so it is refused here.
Result<float> parse_float(const std::string& key, const json& value) {
  FETAFIX_ASSIGN_OR_RETURN(const double v, parse_number(key, value));
  if (std::abs(v) > static_cast<double>(std::numeric_limits<float>::max()))
    return make_error("preset key '{}' must be a number within float32 range (|x| <= 3.4e38), got {}", key,
                      value.dump());
  return static_cast<float>(v);
}

Result<std::array<float, 3>> parse_triple(const std::string& key, const json& value) {
  if (value.is_number()) {  // one value for all three channels
    FETAFIX_ASSIGN_OR_RETURN(const float v, parse_float(key, value));
    return std::array<float, 3>{v, v, v};
  }
  if (!value.is_array() || value.size() != 3)
    return make_error("preset key '{}' must be a list of 3 numbers (in output channel order), got {}", key,
                      value.dump());
  std::array<float, 3> out{};
  for (int c = 0; c < 3; ++c) {
    FETAFIX_ASSIGN_OR_RETURN(out[c], parse_float(key, value[c]));
  }
  return out;
}

Status validate(const Preset& p) {
  if (p.crop_fraction <= 0.0 || p.crop_fraction > 1.0)
    return make_error("preset '{}': crop_fraction must be in (0, 1], got {}", p.name, p.crop_fraction);
  if (!(p.scale > 0.0f) || !std::isfinite(p.scale))
    return make_error("preset '{}': scale must be a positive number, got {}", p.name, p.scale);
  for (float s : p.std)
    if (s == 0.0f || !std::isfinite(s)) return make_error("preset '{}': std must be finite and non-zero", p.name);
  if (p.dtype != DType::kFloat32 && p.dtype != DType::kUInt8)
    return make_error("preset '{}': dtype must be float32 or uint8", p.name);
  return Status::Ok();
}

Preset make_torch() {
  Preset p;
  p.name = "torch";
  p.default_layout = Layout::kNCHW;
  p.filter = ResizeFilter::kBilinear;
  p.antialias = true;  // torchvision on PIL images resizes with PIL
  p.crop = CropPolicy::kShorterSideCrop;
  p.crop_fraction = 0.875;
  p.scale = 1.0f / 255.0f;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  return p;
}

Preset make_tf(const std::string& name) {
  Preset p;
  p.name = name;
  p.default_layout = Layout::kNHWC;
  p.filter = ResizeFilter::kBilinear;
  p.antialias = false;  // tf.image.resize(..., antialias=False), TF-slim's eval preprocessing
  p.crop = CropPolicy::kCentralFraction;
  p.crop_fraction = 0.875;
  p.scale = 1.0f / 127.5f;
  p.mean = {1.0f, 1.0f, 1.0f};
  return p;
}

Preset make_caffe() {
  Preset p;
  p.name = "caffe";
  p.default_layout = Layout::kNHWC;  // Keras models, which use this mode, are channels-last
  p.filter = ResizeFilter::kBilinear;
  p.antialias = true;
  p.crop = CropPolicy::kShorterSideCrop;
  p.crop_fraction = 0.875;
  p.channels = ChannelOrder::kBGR;
  p.mean = {103.939f, 116.779f, 123.68f};  // B, G, R
  return p;
}

Preset make_raw(const std::string& name, DType dtype) {
  Preset p;
  p.name = name;
  p.default_layout = Layout::kNHWC;  // quantized (TFLite-born) models are channels-last
  p.filter = ResizeFilter::kBilinear;
  // TF's resize, as the TFLite models' own evaluation: MobileNetV2 int8 (assets) scores
  // top-1 0.829 on imagenet-samples this way, 0.816 with PIL's antialiased downscale.
  p.antialias = false;
  p.crop = CropPolicy::kCentralFraction;
  p.crop_fraction = 0.875;
  p.dtype = dtype;
  return p;
}

// Frameworks divide (x / 255.0, x / 127.5) rather than multiply by a reciprocal; the two
// differ in the last bit for some pixels. A scale that is 1/d for d a multiple of 0.5 is
// therefore applied as a division by d, so values match those frameworks bit for bit.
float pixel_times_scale(int pixel, float scale) {
  const double divisor = 1.0 / static_cast<double>(scale);
  const double rounded = std::nearbyint(divisor * 2.0) / 2.0;
  if (rounded >= 1.0 && std::abs(divisor - rounded) <= 1e-6 * rounded)
    return static_cast<float>(pixel) / static_cast<float>(rounded);
  return static_cast<float>(pixel) * scale;
}

struct Geometry {
  detail::PixelRect source;   // region of the image that is resized
  int resize_w = 0, resize_h = 0;
  detail::PixelRect window;   // part of the resized image that becomes the input
};

int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

Geometry plan_geometry(int img_w, int img_h, int out_w, int out_h, const Preset& p) {
  Geometry g;
  g.source = {0, 0, img_w, img_h};
  g.resize_w = out_w;
  g.resize_h = out_h;
  g.window = {0, 0, out_w, out_h};
  if (p.crop == CropPolicy::kCentralFraction && p.crop_fraction < 1.0) {
    // tf.image.central_crop: start = int((size - size * fraction) / 2), in double.
    const int x0 = static_cast<int>((img_w - img_w * p.crop_fraction) / 2);
    const int y0 = static_cast<int>((img_h - img_h * p.crop_fraction) / 2);
    g.source = {x0, y0, img_w - 2 * x0, img_h - 2 * y0};
  } else if (p.crop == CropPolicy::kShorterSideCrop) {
    // torchvision Resize(round(size / fraction)): the long side is int(short_target * long / short).
    const int target = round_half_even(std::min(out_w, out_h) / p.crop_fraction);
    const bool portrait = img_w <= img_h;
    const int shorter = portrait ? img_w : img_h, longer = portrait ? img_h : img_w;
    const int new_long = static_cast<int>(static_cast<double>(target) * longer / shorter);
    g.resize_w = portrait ? target : new_long;
    g.resize_h = portrait ? new_long : target;
    // torchvision CenterCrop: zero-pad a side shorter than the crop, else
    // offset = int(round((size - crop) / 2.0)) with Python's half-to-even round.
    auto offset = [](int size, int crop) { return crop > size ? -((crop - size) / 2) : round_half_even((size - crop) / 2.0); };
    g.window = {offset(g.resize_w, out_w), offset(g.resize_h, out_h), out_w, out_h};
  }
  return g;
}

}  // namespace

nlohmann::json Preset::to_json() const {
  json j;
  j["name"] = name;
  j["width"] = width;
  j["height"] = height;
  j["layout"] = layout ? json(name_of(kLayouts, *layout)) : json(nullptr);
  j["default_layout"] = name_of(kLayouts, default_layout);
  j["filter"] = name_of(kFilters, filter);
  j["antialias"] = antialias;
  j["crop"] = name_of(kCrops, crop);
  j["crop_fraction"] = crop_fraction;
  j["channels"] = name_of(kChannelOrders, channels);
  j["scale"] = scale;
  j["mean"] = mean;
  j["std"] = std;
  j["dtype"] = name_of(kDTypes, dtype);
  return j;
}

std::vector<std::string> preset_names() { return {"torch", "tf", "inception", "caffe", "raw", "uint8"}; }

Result<Preset> preset_by_name(const std::string& name) {
  if (name == "torch") return make_torch();
  if (name == "tf" || name == "inception") return make_tf(name);
  if (name == "caffe") return make_caffe();
  if (name == "raw") return make_raw(name, DType::kFloat32);
  if (name == "uint8") return make_raw(name, DType::kUInt8);
  std::string names;
  for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  return make_error("unknown preset '{}'; the built-in presets are {}", name, names);
}

Status apply_overrides(Preset& preset, const nlohmann::json& overrides) {
  if (!overrides.is_object()) return make_error("preset overrides must be a JSON object, got {}", overrides.dump());
  Preset p = preset;  // all or nothing: a bad key leaves `preset` untouched
  for (const auto& [key, value] : overrides.items()) {
    if (key == "name") {
      if (!value.is_string()) return make_error("preset key 'name' must be a string, got {}", value.dump());
      p.name = value.get<std::string>();
    } else if (key == "width") {
      FETAFIX_ASSIGN_OR_RETURN(p.width, parse_size(key, value));
    } else if (key == "height") {
      FETAFIX_ASSIGN_OR_RETURN(p.height, parse_size(key, value));
    } else if (key == "size") {  // shorthand for a square input
      FETAFIX_ASSIGN_OR_RETURN(p.width, parse_size(key, value));
      p.height = p.width;
    } else if (key == "layout") {
      if (value.is_null()) {
        p.layout.reset();
      } else {
        FETAFIX_ASSIGN_OR_RETURN(p.layout, parse_named(kLayouts, key, value));
      }
    } else if (key == "default_layout") {
      FETAFIX_ASSIGN_OR_RETURN(p.default_layout, parse_named(kLayouts, key, value));
    } else if (key == "filter") {
      FETAFIX_ASSIGN_OR_RETURN(p.filter, parse_named(kFilters, key, value));
    } else if (key == "antialias") {
      if (!value.is_boolean()) return make_error("preset key 'antialias' must be true or false, got {}", value.dump());
      p.antialias = value.get<bool>();
    } else if (key == "crop") {
      FETAFIX_ASSIGN_OR_RETURN(p.crop, parse_named(kCrops, key, value));
    } else if (key == "crop_fraction") {
      FETAFIX_ASSIGN_OR_RETURN(p.crop_fraction, parse_number(key, value));
    } else if (key == "channels") {
      FETAFIX_ASSIGN_OR_RETURN(p.channels, parse_named(kChannelOrders, key, value));
    } else if (key == "scale") {
      FETAFIX_ASSIGN_OR_RETURN(p.scale, parse_float(key, value));
    } else if (key == "mean") {
      FETAFIX_ASSIGN_OR_RETURN(p.mean, parse_triple(key, value));
    } else if (key == "std") {
      FETAFIX_ASSIGN_OR_RETURN(p.std, parse_triple(key, value));
    } else if (key == "dtype") {
      FETAFIX_ASSIGN_OR_RETURN(p.dtype, parse_named(kDTypes, key, value));
    } else {
      return make_error("unknown preset key '{}'", key);
    }
  }
  FETAFIX_TRY_STATUS(validate(p));
  preset = std::move(p);
  return Status::Ok();
}

Result<Preset> load_preset_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return make_error("cannot open preset file '{}'", path.string());
  std::stringstream text;
  text << in.rdbuf();
  json config = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return make_error("preset file '{}' is not valid JSON", path.string());
  if (!config.is_object()) return make_error("preset file '{}' must hold a JSON object", path.string());

  Preset preset;
  preset.name = path.stem().string();
  if (auto base = config.find("base"); base != config.end()) {
    if (!base->is_string())
      return make_error("preset file '{}': 'base' must be a preset name, got {}", path.string(), base->dump());
    auto base_preset = preset_by_name(base->get<std::string>());
    if (!base_preset) return make_error("preset file '{}': {}", path.string(), base_preset.error().message);
    preset = std::move(base_preset).value();
    preset.name = path.stem().string();
    config.erase("base");
  }
  if (Status st = apply_overrides(preset, config); !st)
    return make_error("preset file '{}': {}", path.string(), st.error().message);
  return preset;
}

Result<Preset> resolve_preset(const std::string& spec) {
  const auto names = preset_names();
  if (std::find(names.begin(), names.end(), spec) != names.end()) return preset_by_name(spec);
  std::error_code ec;
  if (std::filesystem::is_regular_file(spec, ec)) return load_preset_file(spec);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return make_error("preset '{}' is neither a built-in preset ({}) nor an existing JSON preset file", spec, list);
}

Result<Preset> bind_preset_to_input(const Preset& preset, const std::vector<int64_t>& input_shape, DType input_dtype,
                                    const std::string& input_name) {
  const std::string shape = shape_to_string(input_shape);
  auto cannot_take_rgb = [&] {
    return make_error("input '{}' has shape {} which cannot take an RGB image", input_name, shape);
  };
  if (input_shape.size() != 4) return cannot_take_rgb();
  Layout layout;
  if (preset.layout) {
    layout = *preset.layout;
    const int64_t channels = input_shape[layout == Layout::kNCHW ? 1 : 3];
    if (channels != 3 && channels >= 0)
      return make_error("input '{}' has shape {} which cannot take an RGB image in the {} layout preset '{}' asks for",
                        input_name, shape, name_of(kLayouts, layout), preset.name);
  } else {
    const bool channels_first = input_shape[1] == 3, channels_last = input_shape[3] == 3;
    if (!channels_first && !channels_last) return cannot_take_rgb();
    layout = channels_first && channels_last ? preset.default_layout
                                             : (channels_first ? Layout::kNCHW : Layout::kNHWC);
  }
  const int64_t model_h = input_shape[layout == Layout::kNCHW ? 2 : 1];
  const int64_t model_w = input_shape[layout == Layout::kNCHW ? 3 : 2];

  auto pick = [&](int preset_size, int64_t model_size, const char* what) -> Result<int> {
    if (preset_size > 0) {
      if (model_size > 0 && model_size != preset_size)
        return make_error("preset '{}' asks for {} {} but input '{}' has shape {}", preset.name, what, preset_size,
                          input_name, shape);
      return preset_size;
    }
    if (model_size > 0) return static_cast<int>(model_size);
    return kDefaultInputSize;  // dynamic in the model and not given: the usual ImageNet size
  };
  Preset bound = preset;
  FETAFIX_ASSIGN_OR_RETURN(bound.width, pick(preset.width, model_w, "width"));
  FETAFIX_ASSIGN_OR_RETURN(bound.height, pick(preset.height, model_h, "height"));
  bound.layout = layout;
  // One preprocessed image is a tensor fetafix allocates: it stays under the tensor limit.
  const uint64_t image_bytes = uint64_t{3} * static_cast<uint64_t>(bound.width) * static_cast<uint64_t>(bound.height) *
                               std::max<size_t>(dtype_size(bound.dtype), 1);
  if (image_bytes > resource_limits().max_tensor_bytes)
    return make_error("input '{}': preset '{}' makes {}x{} images, {} each, over the tensor limit of {} "
                      "(--max-tensor-bytes or {})",
                      input_name, preset.name, bound.width, bound.height, bytes_text(image_bytes),
                      bytes_text(resource_limits().max_tensor_bytes), kMaxTensorBytesEnv);

  if (input_dtype == DType::kUInt8 && preset.dtype != DType::kUInt8)
    return make_error(
        "input '{}' takes uint8 but preset '{}' makes float32; use preset 'uint8' (or set \"dtype\": \"uint8\")",
        input_name, preset.name);
  if (input_dtype == DType::kFloat32 && preset.dtype != DType::kFloat32)
    return make_error(
        "input '{}' takes float32 but preset '{}' makes uint8; use a float preset: 'raw' (0..255), 'torch', 'tf' or "
        "'caffe'",
        input_name, preset.name);
  if (input_dtype != DType::kUInt8 && input_dtype != DType::kFloat32)
    return make_error("input '{}' takes {}, which no preset makes (presets make float32 or uint8)", input_name,
                      dtype_name(input_dtype));
  return bound;
}

void preprocess_into(const Image& image, const Preset& preset, void* dst) {
  const int out_w = preset.width > 0 ? preset.width : kDefaultInputSize;
  const int out_h = preset.height > 0 ? preset.height : kDefaultInputSize;
  const Layout layout = preset.layout.value_or(preset.default_layout);
  const size_t pixels = static_cast<size_t>(out_w) * out_h;

  thread_local std::vector<uint8_t> rgb;
  rgb.assign(pixels * 3, 0);
  if (image.width > 0 && image.height > 0) {
    const Geometry g = plan_geometry(image.width, image.height, out_w, out_h, preset);
    const std::array<float, 4> box{0.0f, 0.0f, static_cast<float>(g.source.width), static_cast<float>(g.source.height)};
    detail::resample_window(image, g.source, box, g.resize_w, g.resize_h, g.window, preset.filter, preset.antialias,
                            rgb.data());
  }

  // Output channel c reads source channel order[c].
  const std::array<int, 3> order = preset.channels == ChannelOrder::kBGR ? std::array<int, 3>{2, 1, 0}
                                                                           : std::array<int, 3>{0, 1, 2};
  if (preset.dtype == DType::kUInt8) {
    auto* out = static_cast<uint8_t*>(dst);
    for (size_t i = 0; i < pixels; ++i)
      for (int c = 0; c < 3; ++c) {
        const uint8_t v = rgb[i * 3 + order[c]];
        if (layout == Layout::kNHWC) out[i * 3 + c] = v;
        else out[c * pixels + i] = v;
      }
    return;
  }
  // Every pixel value maps to one float per channel: a 3x256 table does all the arithmetic,
  // in the frameworks' order ((x * scale - mean) / std, in float32).
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c][v] = (pixel_times_scale(v, preset.scale) - preset.mean[c]) / preset.std[c];
  auto* out = static_cast<float*>(dst);
  if (layout == Layout::kNHWC) {
    for (size_t i = 0; i < pixels; ++i)
      for (int c = 0; c < 3; ++c) out[i * 3 + c] = table[c][rgb[i * 3 + order[c]]];
  } else {
    for (int c = 0; c < 3; ++c) {
      float* plane = out + c * pixels;
      const float* lut = table[c];
      const uint8_t* in = rgb.data() + order[c];
      for (size_t i = 0; i < pixels; ++i) plane[i] = lut[in[i * 3]];
    }
  }
}

Tensor preprocess(const Image& image, const Preset& preset) {
  const int64_t w = preset.width > 0 ? preset.width : kDefaultInputSize;
  const int64_t h = preset.height > 0 ? preset.height : kDefaultInputSize;
  const Layout layout = preset.layout.value_or(preset.default_layout);
  std::vector<int64_t> shape = layout == Layout::kNCHW ? std::vector<int64_t>{1, 3, h, w}
                                                       : std::vector<int64_t>{1, h, w, 3};
  Tensor t(preset.dtype == DType::kUInt8 ? DType::kUInt8 : DType::kFloat32, std::move(shape));
  preprocess_into(image, preset, t.bytes.data());
  return t;
}

}  // namespace fetafix::data
