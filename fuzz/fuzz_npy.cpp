// libFuzzer target for the hand-written .npy reader (src/data/npy.cpp): any input must give a
// tensor or an error, never a crash, a hang or an allocation past the limits; a tensor that
// parses must survive encode -> parse unchanged. Build and run: docs/fuzzing.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fetafix::data::ArrayLimits limits;
  limits.max_array_bytes = 1 << 20;  // the fuzzer's memory stays small; the checks are the same
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  auto t = fetafix::data::parse_npy(bytes, "fuzz.npy", limits);
  if (!t.ok()) return 0;
  const std::string again = fetafix::data::encode_npy(*t);
  auto back = fetafix::data::parse_npy(std::span<const std::byte>(reinterpret_cast<const std::byte*>(again.data()), again.size()),
                                       "fuzz.npy", limits);
  if (!back.ok() || back->dtype != t->dtype || back->shape != t->shape || back->bytes != t->bytes) std::abort();
  return 0;
}
