// NumPy's .npz format: a zip archive (stored or deflated) of .npy files, one per array, as
// numpy.savez and numpy.savez_compressed write it. The zip is read with libzip; each entry
// with data/npy.h. Limits (data/npy.h ArrayLimits) are checked against the sizes the zip's
// central directory declares before anything is inflated, so a zip bomb is refused up front.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/tensor.h"
#include "data/npy.h"

namespace fetafix::data {

inline constexpr size_t kMaxNpzEntries = 4096;

struct NamedArray {
  std::string name;  // the entry's name without ".npy"
  Tensor value;
};

// The arrays of an .npz image, in archive order. Every entry must be a well-formed .npy;
// names must be unique. `what` names the file in errors.
Result<std::vector<NamedArray>> parse_npz(std::span<const std::byte> bytes, const std::string& what,
                                          const ArrayLimits& limits = {});
Result<std::vector<NamedArray>> read_npz(const std::filesystem::path& path, const ArrayLimits& limits = {});

// Writes `arrays` as an .npz (deflated when `compress`, like savez_compressed); libzip writes a
// temporary file and renames it, so a reader never sees half a file.
Status write_npz(const std::filesystem::path& path, const std::vector<NamedArray>& arrays, bool compress = false);

}  // namespace fetafix::data
