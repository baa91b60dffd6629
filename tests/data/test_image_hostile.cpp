// Images that would exhaust memory or time, and image folders with entries that are not
// regular files: each is refused with a message naming the file, before pixels are allocated.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "common/limits.h"
#include "data/image.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/special_files.h"

namespace fetafix::data {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

fs::path fresh_dir() {
  return testing::temp_dir(std::string("hostile_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

TEST(HostileImages, APngDeclaringFourHundredMegapixelsIsRefusedBeforeDecoding) {
  const fs::path file = fresh_dir() / "bomb.png";
  testing::write_file(file, testing::png_declaring(20000, 20000));
  const auto start = std::chrono::steady_clock::now();
  auto image = decode_image(file);
  ASSERT_FALSE(image.ok());
  EXPECT_TRUE(contains(image.error().message, file.string())) << image.error().message;
  EXPECT_TRUE(contains(image.error().message, "20000x20000")) << image.error().message;
  EXPECT_TRUE(contains(image.error().message, "over the limit of 100.0 MP")) << image.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));  // not a 1.2 GB allocation
}

TEST(HostileImages, AJpegDeclaringHugeDimensionsIsRefused) {
  const fs::path file = fresh_dir() / "bomb.jpg";
  testing::write_file(file, testing::jpeg_declaring(60000, 60000));
  auto image = decode_image(file);
  ASSERT_FALSE(image.ok());
  EXPECT_TRUE(contains(image.error().message, "60000x60000")) << image.error().message;
  EXPECT_TRUE(contains(image.error().message, "over the limit")) << image.error().message;
}

TEST(HostileImages, ThePixelLimitIsConfigurable) {
  const fs::path file = fresh_dir() / "small.jpg";
  testing::write_file(file, testing::jpeg_declaring(16, 16));
  ASSERT_TRUE(decode_image(file).ok());
  ResourceLimits limits;
  limits.max_image_pixels = 100;
  set_resource_limits(limits);
  auto refused = decode_image(file);
  set_resource_limits({});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(contains(refused.error().message, "16x16")) << refused.error().message;
  EXPECT_TRUE(contains(refused.error().message, kMaxImagePixelsEnv)) << refused.error().message;
}

TEST(HostileImages, AProgressiveJpegWithHundredsOfScansIsRefused) {
  const std::string bytes = testing::jpeg_with_631_scans();
  auto image = decode_image_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "scans.jpg");
  ASSERT_FALSE(image.ok());
  EXPECT_TRUE(contains(image.error().message, "scans.jpg")) << image.error().message;
  EXPECT_TRUE(contains(image.error().message, "500 progressive scans")) << image.error().message;
}

TEST(ImageFolders, EntriesThatAreNotRegularFilesAreListedAndFailToDecodeByName) {
  const fs::path dir = fresh_dir();
  testing::write_file(dir / "good.jpg", testing::jpeg_declaring(16, 16));
  fs::create_symlink(dir / "gone.jpg", dir / "dangling.jpg");
  fs::create_symlink(dir / "loop.jpg", dir / "loop.jpg");
  ASSERT_TRUE(testing::make_fifo(dir / "pipe.png"));
  fs::create_directories(dir / "real");
  fs::create_symlink(dir / "real", dir / "linked_folder.jpg");  // a folder by another name: not an image
  auto files = list_images(dir);
  ASSERT_TRUE(files.ok()) << files.error().message;
  std::vector<std::string> names;
  for (const auto& f : *files) names.push_back(f.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"dangling.jpg", "good.jpg", "loop.jpg", "pipe.png"}));
  for (const auto& [name, problem] : {std::pair{"dangling.jpg", "dangling symbolic link"},
                                      {"loop.jpg", "symbolic link loop"}, {"pipe.png", "FIFO"}}) {
    auto image = decode_image(dir / name);  // the FIFO must not block
    ASSERT_FALSE(image.ok()) << name;
    EXPECT_TRUE(contains(image.error().message, name)) << image.error().message;
    EXPECT_TRUE(contains(image.error().message, problem)) << image.error().message;
  }
}

TEST(ImageFolders, AnUnreadableSubfolderIsNamedItself) {
  const fs::path dir = fresh_dir();
  testing::write_file(dir / "a.jpg", testing::jpeg_declaring(16, 16));
  fs::create_directories(dir / "private" / "inner");
  testing::write_file(dir / "private" / "inner" / "b.jpg", testing::jpeg_declaring(16, 16));
  fs::permissions(dir / "private" / "inner", fs::perms::none);
  const int code = testing::run_unprivileged([&] {
    auto files = list_images(dir);
    if (files.ok()) return 1;
    const std::string& m = files.error().message;
    return contains(m, (dir / "private" / "inner").string()) && contains(m, "ermission denied") ? 0 : 2;
  });
  fs::permissions(dir / "private" / "inner", fs::perms::owner_all);
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace fetafix::data
