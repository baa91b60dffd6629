// --report and --model-explorer through the real binary ($FETAFIX_BIN, set by ctest).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "report_fixture.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/models.h"
#include "support/photos.h"

namespace fetafix::report {
namespace {
namespace fs = std::filesystem;
using fetafix::testing::shell_quoted;
using fetafix::testing::slurp;

class ReportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fetafix::testing::fetafix_bin().empty()) GTEST_SKIP() << "FETAFIX_BIN is not set (run through ctest)";
    dir_ = fetafix::testing::temp_dir(std::string("report_cli_") +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  int run(const std::string& args) {
    auto r = fetafix::testing::run_fetafix(args, dir_);
    out_ = std::move(r.out);
    err_ = std::move(r.err);
    return r.exit_code;
  }
  std::string q(const fs::path& p) const { return shell_quoted(p); }

  fs::path dir_;
  std::string out_, err_;
};

TEST_F(ReportCli, CompareWritesAReportOfTheDisagreeingImages) {
  ASSERT_TRUE(model::save_model(fetafix::testing::dominant_channel_model(false), dir_ / "s.onnx").ok());
  ASSERT_TRUE(model::save_model(fetafix::testing::dominant_channel_model(true), dir_ / "t.onnx").ok());
  const auto photos = fetafix::testing::synthetic_photos("report_cli_compare_photos", 12, 3);
  ASSERT_EQ(run("compare " + q(dir_ / "s.onnx") + " " + q(dir_ / "t.onnx") + " --images " + q(photos) +
                " --source-preprocess raw --target-preprocess raw -q --report " + q(dir_ / "compare.html")),
            1)
      << err_;
  const std::string html = slurp(dir_ / "compare.html");
  ASSERT_FALSE(html.empty());
  EXPECT_NE(html.find("<section id=\"images\""), std::string::npos);
  EXPECT_NE(html.find("some images disagree"), std::string::npos);
  EXPECT_NE(out_.find("Report written to"), std::string::npos);
}

TEST_F(ReportCli, RepairWritesTheReportAndModelExplorerFiles) {
  ASSERT_TRUE(model::save_model(fetafix::testing::build_cnn(), dir_ / "s.onnx").ok());
  ASSERT_TRUE(model::save_model(fetafix::testing::build_cnn(testing::faulty_target_options()), dir_ / "t.onnx").ok());
  const auto photos = fetafix::testing::synthetic_photos("report_cli_repair_photos");
  const int rc = run("repair " + q(dir_ / "s.onnx") + " " + q(dir_ / "t.onnx") + " --images " + q(photos) +
                     " --source-preprocess raw --target-preprocess raw -q --threads 1 --similar 20 --dissimilar 20 -o " +
                     q(dir_ / "r.onnx") + " --report " + q(dir_ / "repair.html") + " --model-explorer " + q(dir_ / "me"));
  ASSERT_TRUE(rc == 0 || rc == 1) << rc << ": " << err_;
  const std::string html = slurp(dir_ / "repair.html");
  for (const char* id : {"summary", "history", "ranking", "findings", "images", "patch"})
    EXPECT_NE(html.find(std::string("<section id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_NE(html.find(rc == 0 ? "fully repaired" : "improved, not fully repaired"), std::string::npos);
  const auto mapping = nlohmann::json::parse(slurp(dir_ / "me" / "mapping.json"), nullptr, false);
  ASSERT_FALSE(mapping.is_discarded());
  EXPECT_GE(mapping["mappingEntries"].size(), 8u);
  for (const char* f : {"source.problematic.json", "target.findings.json"}) EXPECT_TRUE(fs::exists(dir_ / "me" / f)) << f;
}

TEST_F(ReportCli, AReportPathNamingAnInputIsRefusedBeforeAnyWork) {
  ASSERT_TRUE(model::save_model(fetafix::testing::build_cnn(), dir_ / "s.onnx").ok());
  const std::string before = slurp(dir_ / "s.onnx");
  const auto photos = fetafix::testing::synthetic_photos("report_cli_compare_photos", 12, 3);
  EXPECT_EQ(run("localize " + q(dir_ / "s.onnx") + " " + q(dir_ / "s.onnx") + " --images " + q(photos) + " -q --report " +
                q(dir_ / "s.onnx")),
            2);
  EXPECT_NE(err_.find("--report"), std::string::npos) << err_;
  EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1) << err_;
  EXPECT_EQ(slurp(dir_ / "s.onnx"), before);
  EXPECT_EQ(run("compare " + q(dir_ / "s.onnx") + " " + q(dir_ / "s.onnx") + " --images " + q(photos) +
                " -q --report " + q(dir_ / "no" / "such" / "folder" / "r.html")),
            2);
  EXPECT_FALSE(fs::exists(dir_ / "no"));
}

}  // namespace
}  // namespace fetafix::report
