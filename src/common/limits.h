// Resource limits that keep a hostile or mistaken input from exhausting memory: an image
// whose header declares 400 megapixels, a model input of [N,3,1000000,1000000]. Inputs over a
// limit are refused up front with an error naming the file (exit 2), never a bad_alloc later.
// Like PIL's Image.MAX_IMAGE_PIXELS this is process-wide: the CLI sets it once, from
// FETAFIX_MAX_IMAGE_PIXELS / FETAFIX_MAX_TENSOR_BYTES and --max-image-pixels / --max-tensor-bytes,
// before any work starts; library callers that never set it get the defaults.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace fetafix {

struct ResourceLimits {
  // Width x height of one decoded image. PIL warns at 89 MP; 100 MP is a 10000x10000 photo.
  uint64_t max_image_pixels = 100'000'000;
  // One tensor fetafix allocates for a model input (a batch of preprocessed images), from the
  // shape the model declares. 4 GiB is ~5000 ImageNet images in float32.
  uint64_t max_tensor_bytes = uint64_t{4} << 30;
};

inline constexpr const char* kMaxImagePixelsEnv = "FETAFIX_MAX_IMAGE_PIXELS";
inline constexpr const char* kMaxTensorBytesEnv = "FETAFIX_MAX_TENSOR_BYTES";

// The limits in force. Read-only once work has started (set_resource_limits is not thread-safe).
const ResourceLimits& resource_limits();
void set_resource_limits(const ResourceLimits& limits);

// `base` with the environment variables above applied. Error: a variable that is set but is not
// a positive integer.
Result<ResourceLimits> limits_from_environment(ResourceLimits base = {});

// "123.4 MP" (or "576 pixels" below 0.1 MP), "4.0 GiB": for the messages of refused inputs.
std::string megapixels_text(uint64_t pixels);
std::string bytes_text(uint64_t bytes);

}  // namespace fetafix
