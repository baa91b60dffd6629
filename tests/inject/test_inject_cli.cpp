// `fetafix inject`: writes the model and its ground truth, refuses bad specs and overwriting.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "inject_helpers.h"
#include "match/cnn_fixture.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/photos.h"
#include "normalising_model.h"

namespace fetafix::inject {
namespace {

namespace fs = std::filesystem;

using fetafix::testing::slurp;

class InjectCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (fetafix::testing::fetafix_bin().empty()) GTEST_SKIP() << "FETAFIX_BIN is not set (run through ctest)";
    dir_ = fetafix::testing::temp_dir(std::string("inject_cli_") +
                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(model::save_model(fetafix::testing::build_cnn(), dir_ / "model.onnx").ok());
  }
  using Run = fetafix::testing::CliRun;
  Run run(const std::string& args) { return fetafix::testing::run_fetafix("inject " + args, dir_); }
  std::string path(const std::string& name) const { return fetafix::testing::shell_quoted(dir_ / name); }

  fs::path dir_;
};

TEST_F(InjectCli, WritesTheModelAndTheGroundTruthBesideIt) {
  const Run r = run(path("model.onnx") + " -o " + path("target.onnx") + " --fault wb:fp16:layers=conv1 --fault lh:drop-pads");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("lh:drop-pads: pads removed from 1 node(s)"), std::string::npos) << r.out;
  auto target = model::load_model(dir_ / "target.onnx");
  ASSERT_TRUE(target.ok()) << target.error().message;
  const auto truth = nlohmann::json::parse(slurp(dir_ / "target.truth.json"));
  EXPECT_EQ(truth["format"], "fetafix-injection");
  EXPECT_EQ(truth["injections"].size(), 2u);
  EXPECT_EQ(truth["injections"][1]["type"], "LH");
  onnx::ModelProto copy = fetafix::testing::build_cnn();
  ASSERT_TRUE(model::replay(truth["edits"], copy).ok());
  EXPECT_EQ(model::serialize_model(copy), model::serialize_model(target->proto));
  // --truth puts it elsewhere.
  ASSERT_EQ(run(path("model.onnx") + " -o " + path("t2.onnx") + " --fault cg:extra-output --truth " + path("gt.json")).exit_code, 0);
  EXPECT_TRUE(fs::exists(dir_ / "gt.json"));
}

TEST_F(InjectCli, BadSpecOrOverwritingTheInputExitsTwoWithOneLine) {
  const std::string before = slurp(dir_ / "model.onnx");
  for (const std::string& args :
       {path("model.onnx") + " -o " + path("t.onnx") + " --fault wb:fp99",
        path("model.onnx") + " -o " + path("t.onnx") + " --fault lh:strides=2:node=missing",
        path("model.onnx") + " -o " + path("model.onnx") + " --fault wb:fp16",
        path("model.onnx") + " -o " + path("t.onnx") + " --truth " + path("model.onnx") + " --fault wb:fp16",
        path("missing.onnx") + " -o " + path("t.onnx") + " --fault wb:fp16"}) {
    const Run r = run(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("fetafix: ", 0), 0u) << r.err;
  }
  EXPECT_EQ(slurp(dir_ / "model.onnx"), before);
  EXPECT_FALSE(fs::exists(dir_ / "t.onnx"));
}

// The injected gather-axis fault is what localize's TSS check reports and repair fixes.
TEST_F(InjectCli, GatherAxisIsLocalizedAndRepaired) {
  ASSERT_TRUE(model::save_model(testing::normalising_cnn(), dir_ / "source.onnx").ok());
  ASSERT_EQ(run(path("source.onnx") + " -o " + path("target.onnx") + " --fault tss:gather-axis").exit_code, 0);
  const auto photos = fetafix::testing::shell_quoted(fetafix::testing::synthetic_photos("inject_gather_photos", 16, 5));
  const std::string pair = path("source.onnx") + " " + path("target.onnx") + " --images " + photos + " -q --threads 1";
  const Run localized = fetafix::testing::run_fetafix("localize " + pair + " --json " + path("localize.json"), dir_);
  ASSERT_EQ(localized.exit_code, 1) << localized.err;
  const auto report = nlohmann::json::parse(slurp(dir_ / "localize.json"));
  const nlohmann::json* tss = nullptr;
  for (const auto& f : report["findings"])
    if (f["type"] == "TSS") tss = &f;
  ASSERT_NE(tss, nullptr) << report["findings"].dump(1);
  std::set<std::string> to_change;
  for (const auto& t : (*tss)["evidence"]["tied_nodes"])
    if (t.value("needs_change", false)) to_change.insert(t["node"].get<std::string>());
  EXPECT_EQ(to_change, (std::set<std::string>{"gather_0", "gather_1", "gather_2"})) << tss->dump(1);
  EXPECT_TRUE((*tss)["evidence"]["transpose"]["needs_change"].get<bool>()) << tss->dump(1);

  const Run repaired = fetafix::testing::run_fetafix(
      "repair " + pair + " -o " + path("repaired.onnx") + " --json " + path("repair.json"), dir_);
  EXPECT_LE(repaired.exit_code, 1) << repaired.out << repaired.err;
  const auto log = nlohmann::json::parse(slurp(dir_ / "repair.json"));
  EXPECT_GT(log["initial_disagreeing"].get<int>(), 0);
  EXPECT_EQ(log["counts"]["TSS"]["kept"], 1) << log["counts"].dump();
  // The repaired model itself, fed as the Source is, agrees with it on every photo (the repair
  // may also recommend a preset: a chance improvement kept before the TSS fix).
  const Run compared = fetafix::testing::run_fetafix(
      "compare " + path("source.onnx") + " " + path("repaired.onnx") + " --images " + photos + " -q --threads 1", dir_);
  EXPECT_EQ(compared.exit_code, 0) << compared.out << compared.err;
}

TEST(InjectAssets, Fp16IntoMobileNetV2) {
  FETAFIX_REQUIRE_ASSET(path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  auto loaded = model::load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const auto r = testing::must_inject(loaded->proto, {"wb:fp16"});
  const auto diff = diff_models(loaded->proto, r.model);
  ASSERT_FALSE(diff.empty());
  for (const auto& entry : diff) EXPECT_EQ(entry.rfind("weight-changed ", 0), 0u) << entry;
  EXPECT_EQ(diff.size(), r.ground_truth["injections"][0]["values"].size());
}

}  // namespace
}  // namespace fetafix::inject
