// Image files -> 8-bit RGB, and image folders -> a sorted list of files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace fetafix::data {

// Interleaved 8-bit RGB, row-major, no padding: pixel (x,y) channel c is rgb[(y*width+x)*3+c].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes JPEG (libjpeg-turbo) or PNG (libpng), chosen by content, not extension.
// Grayscale, CMYK/YCCK, RGBA/gray+alpha (alpha dropped, as PIL's convert("RGB") does),
// palette and 16-bit images all become 8-bit RGB. The error names the file.
Result<Image> decode_image(const std::filesystem::path& path);

// What the file held before it became 8-bit RGB; for reports and checks (e.g. counting
// grayscale photos in a dataset).
struct ImageSourceInfo {
  enum class Format { kJpeg, kPng };
  Format format = Format::kJpeg;
  // "gray", "rgb", "cmyk", "ycck" (JPEG); "gray", "gray+alpha", "rgb", "rgba", "palette" (PNG).
  std::string color;
  int bit_depth = 8;
};
// decode_image that also reports the source's format and color model.
Result<Image> decode_image(const std::filesystem::path& path, ImageSourceInfo* source_info);

// Every .jpg/.jpeg/.png (any letter case) under `dir`, recursively, sorted by their path
// relative to `dir` (byte order), so every run sees the same order.
// Errors: `dir` missing or not a folder; no image in it.
Result<std::vector<std::filesystem::path>> list_images(const std::filesystem::path& dir);

}  // namespace fetafix::data
