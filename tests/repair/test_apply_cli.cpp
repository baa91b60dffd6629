// `fetafix apply` through the real binary ($FETAFIX_BIN, set by ctest).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "match/cnn_fixture.h"
#include "model/cleanup.h"
#include "model/weights.h"
#include "repair_helpers.h"
#include "support/assets.h"
#include "support/cli.h"

namespace fetafix::repair {
namespace {
namespace fs = std::filesystem;

using fetafix::testing::slurp;

class ApplyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fetafix::testing::fetafix_bin().empty()) GTEST_SKIP() << "FETAFIX_BIN is not set (run through ctest)";
    dir_ = fetafix::testing::temp_dir(std::string("repair_apply_") +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fetafix::testing::CnnOptions rounded;
    rounded.fp16_rounded_weights = true;
    const auto source = fetafix::testing::build_cnn({});
    target_ = fetafix::testing::build_cnn(rounded);
    ASSERT_TRUE(model::save_model(target_, dir_ / "target.onnx").ok());
    // A patch from real WB findings, and the model it should give.
    auto findings = localize::check_weights(source, target_, testing::same_name_pairs({"conv1", "conv5", "fc"}));
    ASSERT_TRUE(findings.ok());
    expected_ = target_;
    model::EditLog log(expected_);
    for (const auto& f : *findings) {
      auto c = plan_repair(source, expected_, f);
      ASSERT_TRUE(c.ok()) << c.error().message;
      ASSERT_TRUE(log.apply_all(c->edits).ok());
    }
    Patch patch;
    patch.edits = log.edits();
    patch.preprocess = data::preset_by_name("caffe").value();
    ASSERT_FALSE(patch.edits.empty());
    ASSERT_TRUE(save_patch(patch, dir_ / "patch.json").ok());
  }

  int run(const std::string& args) {
    auto r = fetafix::testing::run_fetafix("apply " + args, dir_);
    out_ = std::move(r.out);
    err_ = std::move(r.err);
    return r.exit_code;
  }
  static std::string q(const fs::path& p) { return fetafix::testing::shell_quoted(p); }

  std::string out_, err_;
  fs::path dir_;
  onnx::ModelProto target_, expected_;
};

TEST_F(ApplyCli, ReproducesTheRepairedModelByteForByte) {
  ASSERT_EQ(run(q(dir_ / "patch.json") + " " + q(dir_ / "target.onnx") + " -o " + q(dir_ / "repaired.onnx")), 0) << err_;
  model::cleanup_model(expected_);  // `fetafix repair` writes the model cleaned, and apply cleans the same way
  EXPECT_EQ(slurp(dir_ / "repaired.onnx"), model::serialize_model(expected_));
  EXPECT_NE(out_.find("preprocess"), std::string::npos) << out_;
  EXPECT_NE(out_.find("caffe"), std::string::npos) << out_;
}

TEST_F(ApplyCli, BadPatchAndOverwritingAnInputExitWith2) {
  std::ofstream(dir_ / "bad.json") << "{\"schema\": \"fetafix.patch/1\", \"edits\": 3}";
  EXPECT_EQ(run(q(dir_ / "bad.json") + " " + q(dir_ / "target.onnx") + " -o " + q(dir_ / "x.onnx")), 2);
  EXPECT_NE(err_.find("edits"), std::string::npos) << err_;
  EXPECT_EQ(std::count(err_.begin(), err_.end(), '\n'), 1) << err_;
  EXPECT_FALSE(fs::exists(dir_ / "x.onnx"));

  const std::string before = slurp(dir_ / "target.onnx");
  EXPECT_EQ(run(q(dir_ / "patch.json") + " " + q(dir_ / "target.onnx") + " -o " + q(dir_ / "target.onnx")), 2);
  EXPECT_EQ(slurp(dir_ / "target.onnx"), before);
  EXPECT_NE(err_.find("overwrite"), std::string::npos) << err_;

  // A patch for another model: the tensor it names is not there.
  GraphBuilder g("other", 13);
  g.input("x", DType::kFloat32, {1, 3});
  g.node("Relu", "relu", {"x"}, {}, "y");
  g.output("y", DType::kFloat32, {1, 3});
  ASSERT_TRUE(model::save_model(g.build(), dir_ / "other.onnx").ok());
  EXPECT_EQ(run(q(dir_ / "patch.json") + " " + q(dir_ / "other.onnx") + " -o " + q(dir_ / "x.onnx")), 2);
  EXPECT_NE(err_.find("does not apply"), std::string::npos) << err_;
  EXPECT_FALSE(fs::exists(dir_ / "x.onnx"));
}

}  // namespace
}  // namespace fetafix::repair
