#include "data/png_write.h"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>

namespace fetafix::data {
namespace {

// setjmp in a function of its own: no object with a destructor lives in its frame.
bool write_png_rows(FILE* f, int width, int height, const uint8_t* rgb) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; ++y)
    png_write_row(png, const_cast<png_bytep>(rgb + static_cast<size_t>(y) * static_cast<size_t>(width) * 3));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

Status write_png_rgb(const std::filesystem::path& path, int width, int height, std::span<const uint8_t> rgb) {
  if (width <= 0 || height <= 0 || rgb.size() != static_cast<size_t>(width) * static_cast<size_t>(height) * 3)
    return make_error("{}: {} bytes for a {}x{} RGB image", path.string(), rgb.size(), width, height);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return make_error("{}: cannot create: {}", path.string(), std::strerror(errno));
  const bool written = write_png_rows(f, width, height, rgb.data());
  if (std::fclose(f) != 0 || !written) return make_error("{}: cannot write the PNG", path.string());
  return {};
}

}  // namespace fetafix::data
