// Image files -> 8-bit RGB, and image folders -> a sorted list of files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
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
// palette and 16-bit images all become 8-bit RGB. The error names the file. Refused before any
// pixel memory is allocated: an image over resource_limits().max_image_pixels (common/limits.h)
// and a JPEG with more than 500 progressive scans. Only regular files are read (a FIFO named
// x.jpg is an error, never a hang).
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

// The same from bytes in memory (the fuzz target's entry point); `label` names it in errors.
Result<Image> decode_image_bytes(std::span<const uint8_t> bytes, const std::string& label,
                                 ImageSourceInfo* source_info = nullptr);

// Whether list_images would list a file of this name: .jpg, .jpeg or .png in any letter case.
bool is_image_file_name(const std::filesystem::path& path);

// Every .jpg/.jpeg/.png (any letter case) under `dir`, recursively, sorted by their path
// relative to `dir` (byte order), so every run sees the same order. Symlinked subfolders are not
// followed. An image-named entry that is not a readable regular file (a dangling or looping
// symlink, a FIFO) is listed too, so decoding it fails visibly: an error under --strict,
// counted as skipped otherwise.
// Errors: `dir` missing or not a folder; a subfolder that cannot be read (named); no image.
Result<std::vector<std::filesystem::path>> list_images(const std::filesystem::path& dir);

}  // namespace fetafix::data
