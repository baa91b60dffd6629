#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "data/fixture_files.h"
#include "data/image.h"
#include "support/assets.h"

namespace fetafix::data {
namespace {

namespace fs = std::filesystem;
using testing::first_difference;
using testing::fixtures_dir;
using testing::read_bytes;
using testing::write_bytes;

// Every fixture kind (gray/CMYK/RGB JPEG, RGBA/palette/gray+alpha/16-bit/1-bit PNG) decodes
// to exactly the bytes PIL's Image.open(p).convert("RGB") gave.
TEST(DecodeImage, MatchesPilConvertRgbOnEveryFixtureKind) {
  const auto manifest = testing::read_json(fixtures_dir() / "decode" / "manifest.json");
  ASSERT_GE(manifest.size(), 15u);
  for (const auto& entry : manifest) {
    const std::string file = entry["file"];
    SCOPED_TRACE(file);
    ImageSourceInfo info;
    auto image = decode_image(fixtures_dir() / "decode" / file, &info);
    ASSERT_TRUE(image.ok()) << image.error().message;
    EXPECT_EQ(image->width, entry["width"].get<int>());
    EXPECT_EQ(image->height, entry["height"].get<int>());
    const auto expected = read_bytes(fixtures_dir() / "decode" / (file + ".rgb"));
    ASSERT_EQ(image->rgb.size(), expected.size());
    EXPECT_EQ(first_difference(image->rgb, expected), -1);
    EXPECT_EQ(info.color, entry["color"].get<std::string>());
    EXPECT_EQ(info.bit_depth, entry["bit_depth"].get<int>());
    const bool is_png = file.ends_with(".png");
    EXPECT_EQ(info.format, is_png ? ImageSourceInfo::Format::kPng : ImageSourceInfo::Format::kJpeg);
  }
}

TEST(DecodeImage, ChoosesDecoderByContentNotExtension) {
  const fs::path dir = fetafix::testing::temp_dir("decode_by_content");
  fs::copy_file(fixtures_dir() / "decode" / "rgba.png", dir / "actually_png.jpg");
  auto image = decode_image(dir / "actually_png.jpg");
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_EQ(image->rgb, read_bytes(fixtures_dir() / "decode" / "rgba.png.rgb"));
}

// A truncated or corrupt file is an Error naming the file: never a crash, an exit() from
// libjpeg, or a half-gray image.
TEST(DecodeImage, TruncatedAndCorruptFilesAreErrorsNamingTheFile) {
  const fs::path dir = fetafix::testing::temp_dir("decode_corrupt");
  const auto jpeg = read_bytes(fixtures_dir() / "decode" / "rgb.jpg");
  const auto progressive = read_bytes(fixtures_dir() / "decode" / "rgb_444_progressive.JPEG");
  const auto png = read_bytes(fixtures_dir() / "decode" / "rgb.png");
  struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
  };
  std::vector<Case> cases = {
      {"jpeg_truncated_half.jpg", {jpeg.begin(), jpeg.begin() + jpeg.size() / 2}},
      {"jpeg_truncated_last_bytes.jpg", {jpeg.begin(), jpeg.end() - 20}},
      {"jpeg_progressive_truncated.jpg", {progressive.begin(), progressive.begin() + progressive.size() * 2 / 3}},
      {"jpeg_header_only.jpg", {jpeg.begin(), jpeg.begin() + 40}},
      {"jpeg_garbage_after_soi.jpg", {0xFF, 0xD8, 0xFF, 0x00, 0x13, 0x37, 0x42, 0x42, 0x42, 0x42}},
      {"png_truncated.png", {png.begin(), png.begin() + png.size() / 2}},
      {"png_header_only.png", {png.begin(), png.begin() + 8}},
      {"not_an_image.png", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'}},
      {"empty.jpg", {}},
  };
  // A PNG whose IHDR is damaged: the CRC no longer matches.
  std::vector<uint8_t> bad_crc = png;
  bad_crc[16] ^= 0x55;
  cases.push_back({"png_bad_ihdr.png", bad_crc});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(dir / c.name, c.bytes);
    auto image = decode_image(dir / c.name);
    ASSERT_FALSE(image.ok());
    EXPECT_NE(image.error().message.find(c.name), std::string::npos) << image.error().message;
    EXPECT_EQ(image.error().message.find('\n'), std::string::npos) << "one-line message expected";
  }
  auto missing = decode_image(dir / "no_such_file.jpg");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no_such_file.jpg"), std::string::npos);
}

void touch(const fs::path& p) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

TEST(ListImages, RecursiveSortedAnyCaseOnlyImages) {
  const fs::path dir = fetafix::testing::temp_dir("list_images");
  for (const char* name : {"b.jpg", "a.PNG", "B.JPEG", "c.txt", "sub/z.jpeg", "sub/deeper/a.Jpg", "sub/notes.md",
                           "a.jpg.bak", "aa/x.png", "noext"})
    touch(dir / name);
  fs::create_directories(dir / "empty_sub");
  fs::create_directories(dir / "folder.jpg");  // a folder with an image-like name is not an image
  auto listed = list_images(dir);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  std::vector<std::string> relative;
  for (const auto& p : *listed) relative.push_back(p.lexically_relative(dir).generic_string());
  // Byte order of the relative path: upper case before lower case, '/' (0x2f) before letters.
  const std::vector<std::string> expected = {"B.JPEG", "a.PNG", "aa/x.png", "b.jpg", "sub/deeper/a.Jpg", "sub/z.jpeg"};
  EXPECT_EQ(relative, expected);
  for (const auto& p : *listed) EXPECT_TRUE(fs::exists(p)) << p;
}

TEST(ListImages, ErrorsForMissingFolderFileAndNoImages) {
  const fs::path dir = fetafix::testing::temp_dir("list_images_errors");
  auto missing = list_images(dir / "absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent"), std::string::npos);
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);

  touch(dir / "file.jpg");
  auto not_folder = list_images(dir / "file.jpg");
  ASSERT_FALSE(not_folder.ok());
  EXPECT_NE(not_folder.error().message.find("not a folder"), std::string::npos);

  fs::create_directories(dir / "empty" / "sub");
  touch(dir / "empty" / "sub" / "readme.txt");
  auto empty = list_images(dir / "empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("no .jpg, .jpeg or .png"), std::string::npos);
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos);
}

// The real dataset: every one of the 1000 photos decodes, and exactly the 23 the assets
// README names are grayscale at the source (JPEG color space).
TEST(ImageNetSamples, AllDecodeAndTwentyThreeAreGrayscale) {
  FETAFIX_REQUIRE_ASSET(folder, "images/imagenet-samples");
  const auto start = std::chrono::steady_clock::now();
  auto files = list_images(folder);
  ASSERT_TRUE(files.ok()) << files.error().message;
  ASSERT_EQ(files->size(), 1000u);
  int gray = 0, failures = 0;
  for (const auto& path : *files) {
    ImageSourceInfo info;
    auto image = decode_image(path, &info);
    if (!image.ok()) {
      ADD_FAILURE() << image.error().message;
      if (++failures > 5) break;
      continue;
    }
    EXPECT_EQ(image->rgb.size(), static_cast<size_t>(image->width) * image->height * 3);
    if (info.color == "gray") ++gray;
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(gray, 23);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("decode_seconds", std::to_string(seconds));
}

}  // namespace
}  // namespace fetafix::data
