// Pillow's resampling (src/libImaging/Resample.c and the NEAREST path of _imaging.c's
// _resize), reproduced operation by operation so the 8-bit output matches to the byte:
// the same double-precision filter weights, the same float box, the same fixed-point
// rounding. Deviating in any of these changes some pixels by one.
#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <vector>

namespace fetafix::data {
namespace detail {
namespace {

// 8 bits of result, 2 for the overshoot of negative-lobed filters, the rest fraction.
constexpr int kPrecisionBits = 32 - 8 - 2;

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * std::numbers::pi;
  // Pillow's constants are floats; keep them so the weights round the same way.
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct FilterSpec {
  double (*function)(double);
  double support;
};

FilterSpec filter_spec(ResizeFilter filter) {
  switch (filter) {
    case ResizeFilter::kBox: return {box_filter, 0.5};
    case ResizeFilter::kHamming: return {hamming_filter, 1.0};
    case ResizeFilter::kBicubic: return {bicubic_filter, 2.0};
    case ResizeFilter::kLanczos: return {lanczos_filter, 3.0};
    case ResizeFilter::kBilinear:
    case ResizeFilter::kNearest: break;
  }
  return {bilinear_filter, 1.0};
}

// Per output pixel: the first input pixel, how many follow, and their fixed-point weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;  // out_size * ksize
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc. Without antialias the filter keeps
// its unit width when downscaling (filterscale 1), i.e. plain half-pixel interpolation.
Coefficients precompute_coefficients(int in_size, float in0, float in1, int out_size, ResizeFilter filter,
                                     bool antialias) {
  const FilterSpec spec = filter_spec(filter);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale;
  if (filterscale < 1.0 || !antialias) filterscale = 1.0;
  const double support = spec.support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = spec.function((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t* out = &c.weights[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      out[x] = w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits))
                     : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = std::max(xmax, 0);
  }
  return c;
}

// Datasets repeat a few image sizes, so each thread keeps its last few coefficient sets.
std::shared_ptr<const Coefficients> cached_coefficients(int in_size, float in0, float in1, int out_size,
                                                        ResizeFilter filter, bool antialias) {
  struct Entry {
    int in_size;
    float in0, in1;
    int out_size;
    ResizeFilter filter;
    bool antialias;
    std::shared_ptr<const Coefficients> value;
  };
  constexpr size_t kCapacity = 16;
  thread_local std::vector<Entry> cache;
  thread_local size_t next_victim = 0;
  for (const Entry& e : cache) {
    if (e.in_size == in_size && e.in0 == in0 && e.in1 == in1 && e.out_size == out_size && e.filter == filter &&
        e.antialias == antialias)
      return e.value;
  }
  auto value = std::make_shared<const Coefficients>(
      precompute_coefficients(in_size, in0, in1, out_size, filter, antialias));
  Entry entry{in_size, in0, in1, out_size, filter, antialias, value};
  if (cache.size() < kCapacity) {
    cache.push_back(std::move(entry));
  } else {
    cache[next_victim] = std::move(entry);
    next_victim = (next_victim + 1) % kCapacity;
  }
  return value;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

void resample_window(const Image& src, PixelRect source, std::array<float, 4> box, int out_w, int out_h,
                     PixelRect window, ResizeFilter filter, bool antialias, uint8_t* dst) {
  const int wx0 = std::max(window.x, 0), wx1 = std::min(window.x + window.width, out_w);
  const int wy0 = std::max(window.y, 0), wy1 = std::min(window.y + window.height, out_h);
  const size_t dst_stride = static_cast<size_t>(window.width) * 3;
  if (wx0 > window.x || wy0 > window.y || wx1 < window.x + window.width || wy1 < window.y + window.height)
    std::memset(dst, 0, dst_stride * window.height);
  if (wx0 >= wx1 || wy0 >= wy1) return;
  const int span = wx1 - wx0;  // output columns computed
  auto dst_row = [&](int yy) { return dst + static_cast<size_t>(yy - window.y) * dst_stride + (wx0 - window.x) * 3; };
  const size_t src_stride = static_cast<size_t>(src.width) * 3;
  auto src_pixel = [&](int ry, int rx) {
    return src.rgb.data() + static_cast<size_t>(source.y + ry) * src_stride + static_cast<size_t>(source.x + rx) * 3;
  };

  // Pillow's _resize turns an integral box of exactly the output size into a crop.
  if (box[0] == static_cast<float>(static_cast<int>(box[0])) && box[2] - box[0] == out_w &&
      box[1] == static_cast<float>(static_cast<int>(box[1])) && box[3] - box[1] == out_h) {
    const int bx = static_cast<int>(box[0]), by = static_cast<int>(box[1]);
    for (int yy = wy0; yy < wy1; ++yy) std::memcpy(dst_row(yy), src_pixel(by + yy, bx + wx0), span * 3);
    return;
  }

  if (filter == ResizeFilter::kNearest) {
    // ImagingScaleAffine: positions accumulate by repeated addition in double, as Pillow does.
    const double step_x = static_cast<double>(box[2] - box[0]) / out_w;
    const double step_y = static_cast<double>(box[3] - box[1]) / out_h;
    auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
    std::vector<int> x_in(out_w, -1);
    double xo = box[0] + step_x * 0.5;
    for (int x = 0; x < out_w; ++x, xo += step_x) {
      const int xin = coord(xo);
      if (xin >= 0 && xin < source.width) x_in[x] = xin;
    }
    double yo = box[1] + step_y * 0.5;
    for (int y = 0; y < wy1; ++y, yo += step_y) {
      if (y < wy0) continue;
      const int yin = coord(yo);
      uint8_t* out = dst_row(y);
      const bool row_inside = yin >= 0 && yin < source.height;
      for (int x = wx0; x < wx1; ++x, out += 3) {
        if (row_inside && x_in[x] >= 0) std::memcpy(out, src_pixel(yin, x_in[x]), 3);
        else out[0] = out[1] = out[2] = 0;  // Pillow's fill
      }
    }
    return;
  }

  const bool need_horizontal = out_w != source.width || box[0] != 0 || box[2] != out_w;
  const bool need_vertical = out_h != source.height || box[1] != 0 || box[3] != out_h;
  std::shared_ptr<const Coefficients> vertical;
  int row_first = wy0, row_last = wy1;  // source rows the window needs
  if (need_vertical) {
    vertical = cached_coefficients(source.height, box[1], box[3], out_h, filter, antialias);
    row_first = vertical->first[wy0];
    row_last = vertical->first[wy1 - 1] + vertical->count[wy1 - 1];
  }

  // Horizontal pass over the needed rows only, into `temp`; without one, temp is the source.
  thread_local std::vector<uint8_t> temp;
  const uint8_t* temp_base;
  size_t temp_stride;
  if (need_horizontal) {
    const auto horizontal = cached_coefficients(source.width, box[0], box[2], out_w, filter, antialias);
    const int rows = row_last - row_first;
    temp_stride = static_cast<size_t>(span) * 3;
    temp.resize(temp_stride * std::max(rows, 0));
    const int ksize = horizontal->ksize;
    for (int r = 0; r < rows; ++r) {
      const uint8_t* in = src_pixel(row_first + r, 0);
      uint8_t* out = temp.data() + r * temp_stride;
      for (int xx = wx0; xx < wx1; ++xx, out += 3) {
        const int32_t* k = &horizontal->weights[static_cast<size_t>(xx) * ksize];
        const uint8_t* p = in + static_cast<size_t>(horizontal->first[xx]) * 3;
        const int n = horizontal->count[xx];
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < n; ++x, p += 3) {
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        out[0] = clip8(s0);
        out[1] = clip8(s1);
        out[2] = clip8(s2);
      }
    }
    temp_base = temp.data();
  } else {
    temp_stride = src_stride;
    temp_base = src_pixel(row_first, wx0);
  }

  if (!need_vertical) {
    for (int yy = wy0; yy < wy1; ++yy) std::memcpy(dst_row(yy), temp_base + (yy - row_first) * temp_stride, span * 3);
    return;
  }
  // Vertical pass: accumulate whole rows so the inner loop runs over contiguous bytes.
  thread_local std::vector<int32_t> accumulator;
  const int values = span * 3;
  accumulator.resize(values);
  const int ksize = vertical->ksize;
  for (int yy = wy0; yy < wy1; ++yy) {
    const int32_t* k = &vertical->weights[static_cast<size_t>(yy) * ksize];
    const int first = vertical->first[yy] - row_first;
    const int n = vertical->count[yy];
    std::fill(accumulator.begin(), accumulator.end(), 1 << (kPrecisionBits - 1));
    int32_t* acc = accumulator.data();
    for (int y = 0; y < n; ++y) {
      const uint8_t* in = temp_base + (first + y) * temp_stride;
      const int32_t weight = k[y];
      for (int i = 0; i < values; ++i) acc[i] += in[i] * weight;
    }
    uint8_t* out = dst_row(yy);
    for (int i = 0; i < values; ++i) out[i] = clip8(acc[i]);
  }
}

}  // namespace detail

Image resize(const Image& src, int out_w, int out_h, ResizeFilter filter, bool antialias,
             std::optional<std::array<double, 4>> box) {
  Image out;
  if (out_w <= 0 || out_h <= 0 || src.width <= 0 || src.height <= 0) return out;
  // Pillow takes the box as C floats; so do we, for the same rounding.
  std::array<float, 4> fbox{0.0f, 0.0f, static_cast<float>(src.width), static_cast<float>(src.height)};
  if (box) {
    for (int i = 0; i < 4; ++i) fbox[i] = static_cast<float>((*box)[i]);
    fbox[0] = std::clamp(fbox[0], 0.0f, static_cast<float>(src.width));
    fbox[2] = std::clamp(fbox[2], fbox[0], static_cast<float>(src.width));
    fbox[1] = std::clamp(fbox[1], 0.0f, static_cast<float>(src.height));
    fbox[3] = std::clamp(fbox[3], fbox[1], static_cast<float>(src.height));
  }
  out.width = out_w;
  out.height = out_h;
  out.rgb.resize(static_cast<size_t>(out_w) * out_h * 3);
  detail::resample_window(src, {0, 0, src.width, src.height}, fbox, out_w, out_h, {0, 0, out_w, out_h}, filter,
                          antialias, out.rgb.data());
  return out;
}

}  // namespace fetafix::data
