// Writes small synthetic photos for tests (the dataset layer reads only .jpg/.png).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace fetafix::testing {

// 8-bit RGB PNG; rgb is width*height*3 interleaved.
void write_png_rgb(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& rgb);

// A width x height image of one colour with a little deterministic texture (+-8 levels),
// so decoders and resizers have something to do.
std::vector<uint8_t> textured_solid(int width, int height, uint8_t r, uint8_t g, uint8_t b, uint32_t seed);

// Hostile images, small on disk. A PNG whose header declares width x height, with an image data
// chunk far too short for it (decoders that trust the header allocate width*height*3 first).
std::string png_declaring(uint32_t width, uint32_t height);
// A real 16x16 baseline JPEG whose frame header is rewritten to declare width x height.
std::string jpeg_declaring(uint16_t width, uint16_t height);
// A valid 16x16 grayscale progressive JPEG made of 1 + 63 * 10 = 631 scans (each AC coefficient
// sent alone at ten bit levels): within the format, yet far beyond any real photo (~10 scans).
std::string jpeg_with_631_scans();

void write_file(const std::filesystem::path& path, const std::string& bytes);

}  // namespace fetafix::testing
