#include "common/limits.h"

#include <cstdlib>

namespace fetafix {
namespace {

ResourceLimits& current_limits() {
  static ResourceLimits limits;
  return limits;
}

Result<uint64_t> positive_integer(const char* name, const char* text) {
  const std::string s = text;
  if (s.empty() || s.size() > 19) return make_error("{}='{}': not a positive integer", name, s);
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return make_error("{}='{}': not a positive integer", name, s);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return make_error("{}='{}': not a positive integer", name, s);
  return v;
}

}  // namespace

const ResourceLimits& resource_limits() { return current_limits(); }

void set_resource_limits(const ResourceLimits& limits) { current_limits() = limits; }

Result<ResourceLimits> limits_from_environment(ResourceLimits base) {
  if (const char* v = std::getenv(kMaxImagePixelsEnv)) {
    FETAFIX_ASSIGN_OR_RETURN(base.max_image_pixels, positive_integer(kMaxImagePixelsEnv, v));
  }
  if (const char* v = std::getenv(kMaxTensorBytesEnv)) {
    FETAFIX_ASSIGN_OR_RETURN(base.max_tensor_bytes, positive_integer(kMaxTensorBytesEnv, v));
  }
  return base;
}

std::string megapixels_text(uint64_t pixels) {
  if (pixels < 100'000) return fmt::format("{} pixels", pixels);
  return fmt::format("{:.1f} MP", static_cast<double>(pixels) / 1e6);
}

std::string bytes_text(uint64_t bytes) {
  static const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} bytes", bytes) : fmt::format("{:.1f} {}", v, kUnits[unit]);
}

}  // namespace fetafix
