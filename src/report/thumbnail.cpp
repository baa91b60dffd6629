#include "report/thumbnail.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>

#include <jpeglib.h>

#include "report/html.h"

namespace fetafix::report {

data::Image downscale(const data::Image& image, int max_side) {
  const int w = image.width, h = image.height;
  if (w <= 0 || h <= 0 || std::max(w, h) <= max_side) return image;
  const double f = static_cast<double>(max_side) / std::max(w, h);
  data::Image out;
  out.width = std::max(1, static_cast<int>(w * f + 0.5));
  out.height = std::max(1, static_cast<int>(h * f + 0.5));
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int oy = 0; oy < out.height; ++oy) {
    const int y0 = static_cast<int>(static_cast<int64_t>(oy) * h / out.height);
    const int y1 = std::max(y0 + 1, static_cast<int>(static_cast<int64_t>(oy + 1) * h / out.height));
    for (int ox = 0; ox < out.width; ++ox) {
      const int x0 = static_cast<int>(static_cast<int64_t>(ox) * w / out.width);
      const int x1 = std::max(x0 + 1, static_cast<int>(static_cast<int64_t>(ox + 1) * w / out.width));
      uint64_t sum[3] = {0, 0, 0};
      for (int y = y0; y < y1; ++y) {
        const uint8_t* p = &image.rgb[(static_cast<size_t>(y) * w + x0) * 3];
        for (int x = x0; x < x1; ++x, p += 3) {
          sum[0] += p[0];
          sum[1] += p[1];
          sum[2] += p[2];
        }
      }
      const uint64_t n = static_cast<uint64_t>(y1 - y0) * static_cast<uint64_t>(x1 - x0);
      uint8_t* q = &out.rgb[(static_cast<size_t>(oy) * out.width + ox) * 3];
      for (int c = 0; c < 3; ++c) q[c] = static_cast<uint8_t>((sum[c] + n / 2) / n);
    }
  }
  return out;
}

namespace {

// libjpeg's error_exit must not return: longjmp back to encode_jpeg, which turns it into an Error.
struct EncodeErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void encode_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<EncodeErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Only C objects live in this frame, so the longjmp skips no destructor.
bool run_encode(const data::Image& image, int quality, jpeg_compress_struct& cinfo, EncodeErrors& err,
                unsigned char** buffer, unsigned long* size) {
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = encode_fail;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buffer, size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&image.rgb[static_cast<size_t>(cinfo.next_scanline) * image.width * 3]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

Result<std::vector<unsigned char>> encode_jpeg(const data::Image& image, int quality) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    return make_error("cannot encode a {}x{} image with {} bytes", image.width, image.height, image.rgb.size());
  jpeg_compress_struct cinfo{};
  EncodeErrors err{};
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const bool ok = run_encode(image, std::clamp(quality, 1, 100), cinfo, err, &buffer, &size);
  std::vector<unsigned char> out;
  if (ok && buffer) out.assign(buffer, buffer + size);
  std::free(buffer);  // jpeg_mem_dest allocates with malloc
  if (!ok) return make_error("JPEG encoding failed: {}", err.message);
  return out;
}

Result<std::string> thumbnail_data_uri(const std::filesystem::path& path, int max_side, int quality) {
  FETAFIX_ASSIGN_OR_RETURN(auto image, data::decode_image(path));
  FETAFIX_ASSIGN_OR_RETURN(auto jpeg, encode_jpeg(downscale(image, max_side), quality));
  return "data:image/jpeg;base64," + base64(jpeg);
}

}  // namespace fetafix::report
