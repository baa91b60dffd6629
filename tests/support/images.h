// Writes small synthetic photos for tests (the dataset layer reads only .jpg/.png).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace fetafix::testing {

// 8-bit RGB PNG; rgb is width*height*3 interleaved.
void write_png_rgb(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& rgb);

// A width x height image of one colour with a little deterministic texture (+-8 levels),
// so decoders and resizers have something to do.
std::vector<uint8_t> textured_solid(int width, int height, uint8_t r, uint8_t g, uint8_t b, uint32_t seed);

}  // namespace fetafix::testing
