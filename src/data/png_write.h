// Writes PNGs (libpng), for corpus samples and test fixtures; decoding is data/image.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "common/result.h"

namespace fetafix::data {

// Writes 8-bit RGB pixels (row-major, `width * height * 3` bytes) as a PNG with no time or text
// chunks, so the same pixels give the same bytes.
Status write_png_rgb(const std::filesystem::path& path, int width, int height, std::span<const uint8_t> rgb);

}  // namespace fetafix::data
