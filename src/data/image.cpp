// JPEG/PNG decoding to the 8-bit RGB that PIL's Image.open(p).convert("RGB") gives,
// and image-folder listing.
#include "data/image.h"

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "common/fs.h"
#include "common/limits.h"
#include "data/folder.h"

// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

namespace fetafix::data {
namespace {

namespace fs = std::filesystem;

using Bytes = std::span<const uint8_t>;

// libjpeg and libpng report the size before allocating anything for the pixels: checked there.
bool over_pixel_limit(uint64_t width, uint64_t height) { return width * height > resource_limits().max_image_pixels; }

std::string pixel_limit_message(const std::string& label, uint64_t width, uint64_t height) {
  return fmt::format("image '{}' is {}x{} ({}), over the limit of {} (--max-image-pixels or {})", label, width, height,
                     megapixels_text(width * height), megapixels_text(resource_limits().max_image_pixels),
                     kMaxImagePixelsEnv);
}

// ---------------------------------------------------------------- JPEG

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp
// back to the decode call so a bad file becomes an Error instead of exit().
struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool over_limit = false;  // message unused then: the caller words the pixel-limit error
};

// A progressive JPEG may hold any number of scans, each a pass over the whole image: a few KB
// of crafted scans keep a decoder busy for minutes. libjpeg-turbo's own fuzzers stop at 500;
// real photos have about 10.
constexpr int kMaxJpegScans = 500;

void jpeg_count_scans(j_common_ptr cinfo) {
  auto* dinfo = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (!cinfo->is_decompressor || dinfo->input_scan_number <= kMaxJpegScans) return;
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", kMaxJpegScans);
  std::longjmp(err->jump, 1);
}

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings: a premature end of data makes libjpeg pad the image with gray and carry on;
// PIL refuses such files ("image file is truncated"), so we do too. Other warnings
// (e.g. extraneous bytes before a marker) leave the pixels intact, and PIL accepts them.
void jpeg_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
  cinfo->err->num_warnings++;
}

// PIL's MULDIV255: a*b/255 rounded, with integer arithmetic.
inline int muldiv255(int a, int b) {
  const int tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

// PIL opens every 4-channel JPEG as CMYK with rawmode "CMYK;I" (Adobe/Photoshop inverted
// storage), then Convert.c's cmyk2rgb: nk = 255 - k; r = nk - c*nk/255. With c = 255 - raw_c
// and k = 255 - raw_k, that is nk = raw_k.
inline void cmyk_row_to_rgb(const uint8_t* in, uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, in += 4, out += 3) {
    const int nk = in[3];
    for (int c = 0; c < 3; ++c) {
      const int v = nk - muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

struct JpegJob {
  Bytes bytes;
  Image* image;
  std::vector<uint8_t>* row;
  ImageSourceInfo* info;
};

// Returns false with err.message set on failure. Only plain C objects live in this frame,
// so the longjmp skips no destructor; the C++ objects belong to the caller.
bool run_jpeg_decode(const JpegJob& job, jpeg_decompress_struct& cinfo, JpegErrorManager& err) {
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_fail;
  err.pub.emit_message = jpeg_message;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_progress_mgr progress{};
  progress.progress_monitor = jpeg_count_scans;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, job.bytes.data(), static_cast<unsigned long>(job.bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (over_pixel_limit(cinfo.image_width, cinfo.image_height)) {
    job.image->width = static_cast<int>(cinfo.image_width);
    job.image->height = static_cast<int>(cinfo.image_height);
    err.over_limit = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }

  switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      cinfo.out_color_space = JCS_GRAYSCALE;
      job.info->color = "gray";
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      cinfo.out_color_space = JCS_CMYK;  // libjpeg turns YCCK into CMYK, as PIL asks it to
      job.info->color = cinfo.jpeg_color_space == JCS_CMYK ? "cmyk" : "ycck";
      break;
    default:
      cinfo.out_color_space = JCS_RGB;
      job.info->color = "rgb";
      break;
  }
  job.info->format = ImageSourceInfo::Format::kJpeg;
  job.info->bit_depth = cinfo.data_precision;
  jpeg_start_decompress(&cinfo);

  const int width = static_cast<int>(cinfo.output_width);
  const int height = static_cast<int>(cinfo.output_height);
  const int components = cinfo.output_components;
  job.image->width = width;
  job.image->height = height;
  job.image->rgb.resize(static_cast<size_t>(width) * height * 3);
  job.row->resize(static_cast<size_t>(width) * components);
  JSAMPROW row_pointer = job.row->data();
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    uint8_t* out = job.image->rgb.data() + static_cast<size_t>(y) * width * 3;
    if (components == 3) {
      // Decode straight into the image: no copy for the common case.
      JSAMPROW direct = out;
      jpeg_read_scanlines(&cinfo, &direct, 1);
      continue;
    }
    jpeg_read_scanlines(&cinfo, &row_pointer, 1);
    const uint8_t* in = job.row->data();
    if (components == 1) {
      for (int x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
    } else {
      cmyk_row_to_rgb(in, out, width);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

Result<Image> decode_jpeg(Bytes bytes, const std::string& label, ImageSourceInfo* info) {
  Image image;
  std::vector<uint8_t> row;
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  if (!run_jpeg_decode(JpegJob{bytes, &image, &row, info}, cinfo, err)) {
    if (err.over_limit) return make_error("{}", pixel_limit_message(label, image.width, image.height));
    return make_error("cannot decode JPEG '{}': {}", label, err.message);
  }
  return image;
}

// ---------------------------------------------------------------- PNG

struct PngReader {
  Bytes bytes;
  size_t offset = 0;
  char message[256] = {};
  bool over_limit = false;
  uint32_t width = 0, height = 0;
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (reader->bytes.size() - reader->offset < length) png_error(png, "unexpected end of file (truncated)");
  std::memcpy(out, reader->bytes.data() + reader->offset, length);
  reader->offset += length;
}

[[noreturn]] void png_fail(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}  // e.g. "known incorrect sRGB profile": harmless

struct PngJob {
  Image* image;
  std::vector<uint8_t>* pixels;
  std::vector<png_bytep>* rows;
  ImageSourceInfo* info;
};

bool run_png_decode(const PngJob& job, PngReader& reader) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_fail, png_warn);
  if (!png) {
    std::snprintf(reader.message, sizeof reader.message, "out of memory");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    std::snprintf(reader.message, sizeof reader.message, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &reader, png_read_from_memory);
  png_read_info(png, info);
  reader.width = png_get_image_width(png, info);
  reader.height = png_get_image_height(png, info);
  if (over_pixel_limit(reader.width, reader.height)) {
    reader.over_limit = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }

  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  job.info->format = ImageSourceInfo::Format::kPng;
  job.info->bit_depth = bit_depth;
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: job.info->color = "gray"; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: job.info->color = "gray+alpha"; break;
    case PNG_COLOR_TYPE_PALETTE: job.info->color = "palette"; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: job.info->color = "rgba"; break;
    default: job.info->color = "rgb"; break;
  }
  // PIL opens 16-bit grayscale as mode "I" (the full 16-bit value) and convert("RGB") clips
  // it to 0..255; every other 16-bit type it reads as 8-bit by keeping the high byte, which
  // is what png_set_strip_16 does.
  const bool gray16_clipped = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
  if (bit_depth == 16 && !gray16_clipped) png_set_strip_16(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const int width = static_cast<int>(png_get_image_width(png, info));
  const int height = static_cast<int>(png_get_image_height(png, info));
  const size_t rowbytes = png_get_rowbytes(png, info);
  const int channels = png_get_channels(png, info);
  job.pixels->resize(rowbytes * height);
  job.rows->resize(height);
  for (int y = 0; y < height; ++y) (*job.rows)[y] = job.pixels->data() + rowbytes * y;
  png_read_image(png, job.rows->data());
  png_destroy_read_struct(&png, &info, nullptr);

  job.image->width = width;
  job.image->height = height;
  job.image->rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    const uint8_t* in = (*job.rows)[y];
    uint8_t* out = job.image->rgb.data() + static_cast<size_t>(y) * width * 3;
    if (gray16_clipped) {
      for (int x = 0; x < width; ++x) {
        const int v = (in[2 * x] << 8) | in[2 * x + 1];
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = static_cast<uint8_t>(std::min(v, 255));
      }
    } else if (channels <= 2) {  // gray, gray+alpha: alpha dropped
      for (int x = 0; x < width; ++x)
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[channels * x];
    } else {  // rgb, rgba (also palette expanded with tRNS): alpha dropped
      for (int x = 0; x < width; ++x) std::memcpy(out + 3 * x, in + channels * x, 3);
    }
  }
  return true;
}

Result<Image> decode_png(Bytes bytes, const std::string& label, ImageSourceInfo* info) {
  Image image;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  PngReader reader{bytes};
  if (!run_png_decode(PngJob{&image, &pixels, &rows, info}, reader)) {
    if (reader.over_limit) return make_error("{}", pixel_limit_message(label, reader.width, reader.height));
    return make_error("cannot decode PNG '{}': {}", label, reader.message);
  }
  return image;
}

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace

Result<Image> decode_image_bytes(std::span<const uint8_t> bytes, const std::string& label,
                                 ImageSourceInfo* source_info) {
  ImageSourceInfo scratch;
  ImageSourceInfo* info = source_info ? source_info : &scratch;
  static constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return decode_jpeg(bytes, label, info);
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) return decode_png(bytes, label, info);
  if (bytes.empty()) return make_error("cannot decode image '{}': the file is empty", label);
  return make_error("cannot decode image '{}': neither a JPEG nor a PNG file", label);
}

Result<Image> decode_image(const fs::path& path, ImageSourceInfo* source_info) {
  FETAFIX_ASSIGN_OR_RETURN(const std::string bytes, read_regular_file(path, "image"));
  return decode_image_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, path.string(),
                            source_info);
}

Result<Image> decode_image(const fs::path& path) { return decode_image(path, nullptr); }

bool is_image_file_name(const fs::path& path) { return has_image_extension(path); }

Result<std::vector<fs::path>> list_images(const fs::path& dir) {
  FETAFIX_ASSIGN_OR_RETURN(auto found, list_folder(dir, "image folder", has_image_extension));
  if (found.empty()) return make_error("image folder '{}' holds no .jpg, .jpeg or .png image", dir.string());
  std::vector<fs::path> paths;
  paths.reserve(found.size());
  for (auto& f : found) paths.push_back(std::move(f.path));
  return paths;
}

}  // namespace fetafix::data
