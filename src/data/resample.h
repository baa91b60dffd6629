// Internal to the data layer: Pillow's resampling on a region of an image, computing only
// a window of the output (what the presets' crops keep), so no pixel is computed twice.
#pragma once

#include <array>

#include "data/image.h"
#include "data/preprocess.h"

namespace fetafix::data::detail {

struct PixelRect {
  int x = 0, y = 0, width = 0, height = 0;
};

// Resizes the region `source` of `src`, seen as an image of its own (filters do not read
// outside it), from `box` (in region coordinates, Pillow's box argument) to a virtual
// out_w x out_h image, and writes its pixels [window.x, window.x + window.width) x
// [window.y, ...) into `dst` (window.width x window.height, RGB). Window pixels outside the
// virtual image are 0, like torchvision's zero padding in CenterCrop.
void resample_window(const Image& src, PixelRect source, std::array<float, 4> box, int out_w, int out_h,
                     PixelRect window, ResizeFilter filter, bool antialias, uint8_t* dst);

}  // namespace fetafix::data::detail
