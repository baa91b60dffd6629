// Files in and out: special files are refused (never opened for writing, never blocked on),
// outputs appear only on commit and never half-written, JSON text survives any file-name bytes.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/json_text.h"
#include "common/limits.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/special_files.h"

namespace fetafix {
namespace {
namespace fs = std::filesystem;
using testing::slurp;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

fs::path fresh_dir() {
  return testing::temp_dir(std::string("fs_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
}

// Temporary files a failed or uncommitted write might leave behind.
int leftovers(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += contains(e.path().filename().string(), ".tmp-");
  return n;
}

TEST(ReadRegularFile, ReadsFilesAndRefusesEverythingElseWithoutBlocking) {
  const fs::path dir = fresh_dir();
  std::ofstream(dir / "a.json") << "{}";
  auto ok = read_regular_file(dir / "a.json", "patch");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, "{}");

  ASSERT_TRUE(testing::make_fifo(dir / "fifo.json"));
  auto fifo = read_regular_file(dir / "fifo.json", "patch");  // would hang forever if opened blocking
  ASSERT_FALSE(fifo.ok());
  EXPECT_TRUE(contains(fifo.error().message, "patch '")) << fifo.error().message;
  EXPECT_TRUE(contains(fifo.error().message, "a FIFO")) << fifo.error().message;

  auto folder = read_regular_file(dir, "patch");
  ASSERT_FALSE(folder.ok());
  EXPECT_TRUE(contains(folder.error().message, "is a folder")) << folder.error().message;

  fs::create_symlink(dir / "nowhere.json", dir / "dangling.json");
  auto dangling = read_regular_file(dir / "dangling.json", "image");
  ASSERT_FALSE(dangling.ok());
  EXPECT_TRUE(contains(dangling.error().message, "dangling symbolic link")) << dangling.error().message;

  fs::create_symlink(dir / "loop.json", dir / "loop.json");
  auto loop = read_regular_file(dir / "loop.json", "image");
  ASSERT_FALSE(loop.ok());
  EXPECT_TRUE(contains(loop.error().message, "loop")) << loop.error().message;

  auto big = read_regular_file(dir / "a.json", "patch", 1);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(contains(big.error().message, "over the limit")) << big.error().message;
}

TEST(CheckWritable, RefusesSpecialFilesFoldersAndVirtualFileSystems) {
  const fs::path dir = fresh_dir();
  EXPECT_TRUE(check_writable(dir / "new.json").ok());
  std::ofstream(dir / "old.json") << "x";
  EXPECT_TRUE(check_writable(dir / "old.json").ok());

  ASSERT_TRUE(testing::make_fifo(dir / "fifo"));
  ASSERT_TRUE(testing::make_socket(dir / "socket"));
  fs::create_symlink(dir / "fifo", dir / "to_fifo");
  for (const auto& [name, kind] : {std::pair{"fifo", "FIFO"}, {"socket", "socket"}, {"to_fifo", "link to a FIFO"}}) {
    auto st = check_writable(dir / name);
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_TRUE(contains(st.error().message, kind)) << st.error().message;
    EXPECT_TRUE(contains(st.error().message, (dir / name).string())) << st.error().message;
  }
  if (testing::make_char_device(dir / "null")) {
    auto st = check_writable(dir / "null");
    ASSERT_FALSE(st.ok());
    EXPECT_TRUE(contains(st.error().message, "character device")) << st.error().message;
  }
  EXPECT_FALSE(check_writable(dir).ok());
  auto proc = check_writable("/proc/x.json");
  ASSERT_FALSE(proc.ok());
  EXPECT_TRUE(contains(proc.error().message, "/proc/x.json")) << proc.error().message;
  auto empty = check_writable("");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(contains(empty.error().message, "empty")) << empty.error().message;
  EXPECT_FALSE(check_writable(dir / "missing" / "x.json").ok());
  EXPECT_EQ(leftovers(dir), 0);
}

TEST(CheckWritable, ProbesTheFolderEvenWhereRootIgnoresPermissions) {
  const fs::path dir = fresh_dir() / "locked";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                           fs::perms::others_exec);
  const int code = testing::run_unprivileged([&] { return check_writable(dir / "x.json").ok() ? 0 : 1; });
  EXPECT_EQ(code, 1);
  fs::permissions(dir, fs::perms::owner_all);
}

TEST(PendingOutputs, NothingAppearsUntilCommitAndNothingStaysWithoutIt) {
  const fs::path dir = fresh_dir();
  std::ofstream(dir / "b.json") << "old";
  {
    PendingOutputs out;
    ASSERT_TRUE(out.add(dir / "a.onnx", "model").ok());
    ASSERT_TRUE(out.add(dir / "b.json", "new").ok());
    ASSERT_TRUE(out.add_folder(dir / "explorer" / "deep").ok());
    ASSERT_TRUE(out.add(dir / "explorer" / "deep" / "m.json", "{}").ok());
    EXPECT_FALSE(fs::exists(dir / "a.onnx"));
    EXPECT_EQ(slurp(dir / "b.json"), "old");
    // a run that fails now (the object goes away uncommitted) leaves the folder as it was
  }
  EXPECT_FALSE(fs::exists(dir / "a.onnx"));
  EXPECT_FALSE(fs::exists(dir / "explorer"));
  EXPECT_EQ(slurp(dir / "b.json"), "old");
  EXPECT_EQ(leftovers(dir), 0);

  PendingOutputs out;
  ASSERT_TRUE(out.add(dir / "a.onnx", "model").ok());
  auto twice = out.add(dir / "." / "a.onnx", "patch");
  ASSERT_FALSE(twice.ok());
  EXPECT_TRUE(contains(twice.error().message, "same file")) << twice.error().message;
  ASSERT_TRUE(out.add(dir / "b.json", "new").ok());
  ASSERT_TRUE(out.commit().ok());
  EXPECT_EQ(slurp(dir / "a.onnx"), "model");
  EXPECT_EQ(slurp(dir / "b.json"), "new");
  EXPECT_EQ(leftovers(dir), 0);
}

// A full disk and a file-size limit fail the same way (ENOSPC, EFBIG): an error naming the file
// and no partial file. The limit can be set without root.
TEST(WriteFileAtomic, AFileSizeLimitIsAnErrorNamingTheFileAndLeavesNothing) {
  const fs::path dir = fresh_dir();
  std::ofstream(dir / "out.json") << "previous";
  const int code = testing::run_in_child([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 3;
    auto st = write_file_atomic(dir / "out.json", std::string(100000, 'x'));
    if (st.ok()) return 1;
    return contains(st.error().message, (dir / "out.json").string()) && contains(st.error().message, "large") ? 0 : 2;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(slurp(dir / "out.json"), "previous");
  EXPECT_EQ(leftovers(dir), 0);
}

TEST(JsonText, EscapesBytesThatAreNotUtf8AndKeepsTheRest) {
  EXPECT_EQ(utf8_or_escaped("caf\xc3\xa9.jpg"), "caf\xc3\xa9.jpg");  // valid UTF-8 stays
  EXPECT_EQ(utf8_or_escaped("caf\xe9.jpg"), "caf\\xE9.jpg");          // Latin-1 byte
  EXPECT_EQ(utf8_or_escaped("\xed\xa0\x80"), "\\xED\\xA0\\x80");      // an encoded surrogate
  EXPECT_EQ(utf8_or_escaped("\xc0\xaf"), "\\xC0\\xAF");               // overlong '/'
  EXPECT_EQ(utf8_or_escaped("\xf0\x9f\x98\x80 ok"), "\xf0\x9f\x98\x80 ok");
  nlohmann::json j{{"file", "img\xff.png"}, {"list", {"a", "\x80"}}, {"k\xfe", 1}};
  const std::string text = json_text(j);
  const auto back = nlohmann::json::parse(text);  // throws if json_text let a bad byte through
  EXPECT_EQ(back["file"], "img\\xFF.png");
  EXPECT_EQ(back["list"][1], "\\x80");
  EXPECT_EQ(back["k\\xFE"], 1);
  const nlohmann::json plain{{"a", 1}};
  EXPECT_EQ(json_text(plain), plain.dump(2) + "\n");
}

TEST(ResourceLimits, EnvironmentOverridesAndRefusesNonsense) {
  ::setenv(kMaxImagePixelsEnv, "1234", 1);
  ::unsetenv(kMaxTensorBytesEnv);
  auto limits = limits_from_environment();
  ASSERT_TRUE(limits.ok()) << limits.error().message;
  EXPECT_EQ(limits->max_image_pixels, 1234u);
  EXPECT_EQ(limits->max_tensor_bytes, ResourceLimits{}.max_tensor_bytes);
  for (const char* bad : {"", "0", "12abc", "-5", "99999999999999999999"}) {
    ::setenv(kMaxTensorBytesEnv, bad, 1);
    auto refused = limits_from_environment();
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_TRUE(contains(refused.error().message, kMaxTensorBytesEnv)) << refused.error().message;
  }
  ::unsetenv(kMaxImagePixelsEnv);
  ::unsetenv(kMaxTensorBytesEnv);
}

}  // namespace
}  // namespace fetafix
