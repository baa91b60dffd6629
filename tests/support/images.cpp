#include "support/images.h"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace fetafix::testing {

void write_png_rgb(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& rgb) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path.string());
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    throw std::runtime_error("libpng failed writing " + path.string());
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb.data() + static_cast<size_t>(y) * width * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

std::vector<uint8_t> textured_solid(int width, int height, uint8_t r, uint8_t g, uint8_t b, uint32_t seed) {
  std::vector<uint8_t> out(static_cast<size_t>(width) * height * 3);
  uint32_t s = seed * 2654435761u + 1;
  const uint8_t base[3] = {r, g, b};
  for (size_t i = 0; i < out.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    int v = base[i % 3] + static_cast<int>((s >> 24) % 17) - 8;
    out[i] = static_cast<uint8_t>(std::clamp(v, 0, 255));
  }
  return out;
}

}  // namespace fetafix::testing
