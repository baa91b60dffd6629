// libFuzzer target: image bytes -> decode_image_bytes (libjpeg-turbo / libpng behind fetafix's
// error handling, pixel limit and progressive-scan limit).
#include <cstddef>
#include <cstdint>

#include "common/limits.h"
#include "data/image.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Small enough that a fuzzed header cannot make one input take seconds; the limit itself is
  // what is being exercised above it.
  fetafix::ResourceLimits limits;
  limits.max_image_pixels = 4'000'000;
  fetafix::set_resource_limits(limits);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fetafix::data::ImageSourceInfo info;
  auto image = fetafix::data::decode_image_bytes({data, size}, "fuzz", &info);
  if (image.ok() && image->rgb.size() != static_cast<size_t>(image->width) * image->height * 3) __builtin_trap();
  return 0;
}
