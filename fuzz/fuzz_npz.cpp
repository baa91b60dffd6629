// libFuzzer target for .npz reading (libzip + the .npy reader): any input must give arrays or
// an error, never a crash or an allocation past the limits. Build and run: docs/fuzzing.md.
#include <cstddef>
#include <cstdint>

#include "data/npz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fetafix::data::ArrayLimits limits;
  limits.max_array_bytes = 1 << 20;
  limits.max_sample_bytes = 4 << 20;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)fetafix::data::parse_npz(bytes, "fuzz.npz", limits);
  return 0;
}
