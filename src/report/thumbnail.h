// Small JPEG thumbnails as data: URIs, so the report shows the images that disagreed
// without linking to files the reader may not have (and without any network access).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "data/image.h"

namespace fetafix::report {

// Area-average downscale so the longer side is at most `max_side` (never upscales).
data::Image downscale(const data::Image& image, int max_side);

// Baseline JPEG (libjpeg-turbo), 4:2:0, `quality` 1..100.
Result<std::vector<unsigned char>> encode_jpeg(const data::Image& image, int quality = 80);

// decode_image -> downscale -> encode_jpeg -> "data:image/jpeg;base64,...". The error names the file.
Result<std::string> thumbnail_data_uri(const std::filesystem::path& path, int max_side = 96, int quality = 80);

}  // namespace fetafix::report
