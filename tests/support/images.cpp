#include "support/images.h"

#include "data/png_write.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace fetafix::testing {

void write_png_rgb(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& rgb) {
  if (auto st = data::write_png_rgb(path, width, height, rgb); !st.ok()) throw std::runtime_error(st.error().message);
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

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

void put_png_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

// Encodes a 16x16 image with `setup` run after jpeg_set_defaults (scan scripts, ...).
template <class Setup>
std::string encode_jpeg(int components, Setup setup) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = 16;
  cinfo.image_height = 16;
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  setup(cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(16 * static_cast<size_t>(components));
  for (int y = 0; y < 16; ++y) {
    for (size_t x = 0; x < row.size(); ++x) row[x] = static_cast<uint8_t>((x * 37 + static_cast<size_t>(y) * 11) & 0xff);
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

}  // namespace

std::string png_declaring(uint32_t width, uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_u32(ihdr, width);
  put_u32(ihdr, height);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  put_png_chunk(png, "IHDR", ihdr);
  put_png_chunk(png, "IDAT", std::string("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9));  // zlib of one 0 byte
  put_png_chunk(png, "IEND", "");
  return png;
}

std::string jpeg_declaring(uint16_t width, uint16_t height) {
  std::string jpeg = encode_jpeg(3, [](jpeg_compress_struct&) {});
  const size_t sof = jpeg.find("\xff\xc0");
  if (sof == std::string::npos) throw std::runtime_error("no SOF0 marker in the encoded JPEG");
  // FF C0, length (2), precision (1), height (2), width (2).
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xff);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xff);
  return jpeg;
}

std::string jpeg_with_631_scans() {
  static std::vector<jpeg_scan_info> scans = [] {
    std::vector<jpeg_scan_info> s;
    s.push_back({1, {0, 0, 0, 0}, 0, 0, 0, 0});  // DC, full precision
    for (int k = 1; k < 64; ++k) {
      s.push_back({1, {0, 0, 0, 0}, k, k, 0, 9});  // first AC pass at bit 9
      for (int ah = 9; ah >= 1; --ah) s.push_back({1, {0, 0, 0, 0}, k, k, ah, ah - 1});  // refinements
    }
    return s;
  }();
  return encode_jpeg(1, [](jpeg_compress_struct& c) {
    c.scan_info = scans.data();
    c.num_scans = static_cast<int>(scans.size());
  });
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace fetafix::testing
