// Runs the real binary: exit codes, one-line errors, and no output files on failure.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "match/cnn_fixture.h"
#include "model/builder.h"
#include "model/model.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/images.h"
#include "support/models.h"

namespace fetafix {
namespace fs = std::filesystem;

using RunResult = testing::CliRun;
using testing::slurp;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::fetafix_bin().empty()) << "FETAFIX_BIN is not set (run through ctest)";
    dir_ = testing::temp_dir(std::string("cli_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    images_ = dir_ / "images";
    fs::create_directories(images_);
    const uint8_t colours[][3] = {{200, 50, 50}, {50, 200, 50}, {50, 50, 200}, {190, 40, 60}};
    for (int i = 0; i < 4; ++i)
      testing::write_png_rgb(images_ / ("img" + std::to_string(i) + ".png"), 24, 24,
                             testing::textured_solid(24, 24, colours[i][0], colours[i][1], colours[i][2], i + 1));
    ASSERT_TRUE(model::save_model(testing::dominant_channel_model(false), dir_ / "source.onnx").ok());
    ASSERT_TRUE(model::save_model(testing::dominant_channel_model(true), dir_ / "target.onnx").ok());
  }

  RunResult run(const std::string& args) { return testing::run_fetafix(args, dir_); }

  // `fetafix localize` of cnn.onnx against `target` (files in dir_) on the test images.
  RunResult localize_cnn(const std::string& target, const std::string& extra = "") {
    return run("localize '" + (dir_ / "cnn.onnx").string() + "' '" + (dir_ / target).string() + "' --images '" +
               images_.string() + "' --source-preprocess raw --target-preprocess raw --quiet" + extra);
  }

  std::string models(const std::string& target = "target.onnx") {
    return "compare '" + (dir_ / "source.onnx").string() + "' '" + (dir_ / target).string() + "' --images '" +
           images_.string() + "' --source-preprocess raw --target-preprocess raw";
  }

  static int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

  fs::path dir_, images_;
};

TEST_F(Cli, IdenticalModelsExitZero) {
  RunResult r = run(models("source.onnx"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Label discrepancy (top-1 differs): 0.00%"), std::string::npos) << r.out;
}

TEST_F(Cli, PlantedFaultExitsOneAndWritesJson) {
  RunResult r = run(models() + " --quiet --json '" + (dir_ / "report.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // --quiet: no progress lines
  EXPECT_NE(r.out.find("75.00%  (3 of 4)"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(slurp(dir_ / "report.json"));
  EXPECT_EQ(j["summary"]["disagreeing"], 3);
  EXPECT_EQ(j["samples"].size(), 4u);
}

TEST_F(Cli, ProgressGoesToStderrAsPlainLinesWhenNotATerminal) {
  RunResult r = run(models());
  EXPECT_NE(r.err.find("compare: 4/4 img"), std::string::npos) << r.err;
}

TEST_F(Cli, MissingModelIsOneLineExitTwo) {
  RunResult r = run("compare '" + (dir_ / "nope.onnx").string() + "' '" + (dir_ / "target.onnx").string() +
                    "' --images '" + images_.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("nope.onnx"), std::string::npos) << r.err;
}

TEST_F(Cli, CorruptModelIsOneLineExitTwo) {
  { std::ofstream(dir_ / "corrupt.onnx") << "\x08\x07garbage that is not a model"; }
  RunResult r = run(models("corrupt.onnx"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("corrupt.onnx"), std::string::npos) << r.err;
}

TEST_F(Cli, EmptyImageFolderIsExitTwo) {
  fs::create_directories(dir_ / "empty");
  RunResult r = run("compare '" + (dir_ / "source.onnx").string() + "' '" + (dir_ / "target.onnx").string() +
                    "' --images '" + (dir_ / "empty").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
}

TEST_F(Cli, UnwritableJsonPathFailsBeforeRunningAndWritesNothing) {
  const fs::path json = dir_ / "no_such_folder" / "report.json";
  RunResult r = run(models() + " --json '" + json.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("report.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(json));
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, JsonOverAnInputModelIsRefused) {
  const std::string before = slurp(dir_ / "target.onnx");
  RunResult r = run(models() + " --json '" + (dir_ / "target.onnx").string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(slurp(dir_ / "target.onnx"), before);
}

TEST_F(Cli, ModelThatCannotTakeAnImageIsExitTwo) {
  GraphBuilder g("vector", 13);
  g.input("features", DType::kFloat32, {-1, 10});
  g.node("Relu", "relu", {"features"}, {}, "out");
  g.output("out", DType::kFloat32, {-1, 10});
  ASSERT_TRUE(model::save_model(g.build(), dir_ / "vector.onnx").ok());
  RunResult r = run(models("vector.onnx"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("vector.onnx"), std::string::npos) << r.err;
}

TEST_F(Cli, UnknownPresetAndBadOptionsAreExitTwo) {
  EXPECT_EQ(run(models() + " --source-preprocess nonsense").exit_code, 2);
  EXPECT_EQ(run(models() + " --top-k 0").exit_code, 2);
  EXPECT_EQ(run("compare").exit_code, 2);
  EXPECT_EQ(run("frobnicate").exit_code, 2);
}

TEST_F(Cli, HelpAndVersionExitZero) {
  EXPECT_EQ(run("--help").exit_code, 0);
  RunResult r = run("compare --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--label-offset"), std::string::npos);
  EXPECT_EQ(run("--version").exit_code, 0);
}

TEST_F(Cli, LocalizeExitCodes) {
  ASSERT_TRUE(model::save_model(testing::build_cnn(), dir_ / "cnn.onnx").ok());
  // Every weight zeroed: images disagree (a fault no image shows is harmless: exit 0, below).
  ASSERT_TRUE(model::save_model(testing::with_weights_changed(testing::build_cnn(), {}, true), dir_ / "cnn_fault.onnx").ok());
  RunResult same = localize_cnn("cnn.onnx");
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_NE(same.out.find("No faults found."), std::string::npos) << same.out;

  const fs::path json = dir_ / "localize.json";
  RunResult fault = localize_cnn("cnn_fault.onnx", " --json '" + json.string() + "'");
  EXPECT_EQ(fault.exit_code, 1) << fault.out << fault.err;
  EXPECT_NE(fault.out.find("conv1 <-> conv1"), std::string::npos) << fault.out;
  auto j = nlohmann::json::parse(slurp(json));
  EXPECT_EQ(j["schema"], "fetafix.localize/1");
  EXPECT_EQ(j["findings"][0]["verdict"], "fault");

  RunResult bad = localize_cnn("missing.onnx");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(lines(bad.err), 1) << bad.err;
  EXPECT_EQ(localize_cnn("cnn.onnx", " --alpha 2").exit_code, 2);
}

// Differences that change no outcome do not fail a correct conversion: weights rounded to
// float16 differ on every layer, no image disagrees, so localize lists them as harmless on these
// samples (verdict and impact per finding in the JSON) and exits 0.
TEST_F(Cli, LocalizeExitsZeroWhenNoSampleDisagrees) {
  ASSERT_TRUE(model::save_model(testing::build_cnn(), dir_ / "cnn.onnx").ok());
  ASSERT_TRUE(model::save_model(testing::build_cnn([] { testing::CnnOptions o; o.fp16_rounded_weights = true; return o; }()),
                                dir_ / "cnn_fp16.onnx").ok());
  const fs::path json = dir_ / "harmless.json";
  RunResult r = localize_cnn("cnn_fp16.onnx", " --json '" + json.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("No faults found."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("harmless on these samples"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(json));
  EXPECT_EQ(j["detection"]["disagreeing"], 0);
  EXPECT_EQ(j["summary"]["faults"], 0);
  ASSERT_FALSE(j["findings"].empty());
  for (const auto& f : j["findings"]) {
    EXPECT_NE(f["verdict"], "fault") << f.dump();
    EXPECT_EQ(f["impact"]["outcome_changes"], 0) << f.dump();
  }
}

// Never "No faults found" with exit 0 while images disagree: a Target with every weight zeroed
// gets findings; one layer's weights replaced (left unmatched, so no check compares it) gets
// "not explained by any check" naming the layers local replay blames; both exit 1.
TEST_F(Cli, LocalizeExitsOneWhileImagesDisagree) {
  const auto source = testing::build_cnn();
  ASSERT_TRUE(model::save_model(source, dir_ / "cnn.onnx").ok());
  ASSERT_TRUE(model::save_model(testing::with_weights_changed(source, {}, true), dir_ / "zeroed.onnx").ok());
  ASSERT_TRUE(model::save_model(testing::with_weights_changed(source, {"conv3_w"}), dir_ / "conv3_replaced.onnx").ok());
  RunResult zeroed = localize_cnn("zeroed.onnx");
  EXPECT_EQ(zeroed.exit_code, 1) << zeroed.out << zeroed.err;
  EXPECT_EQ(zeroed.out.find("No faults found."), std::string::npos) << zeroed.out;

  const fs::path json = dir_ / "unexplained.json";
  RunResult replaced = localize_cnn("conv3_replaced.onnx", " --json '" + json.string() + "'");
  EXPECT_EQ(replaced.exit_code, 1) << replaced.out << replaced.err;
  EXPECT_NE(replaced.out.find("Disagreement not explained by any check"), std::string::npos) << replaced.out;
  EXPECT_NE(replaced.out.find("Layers with the largest local replay error"), std::string::npos) << replaced.out;
  const auto j = nlohmann::json::parse(slurp(json));
  EXPECT_EQ(j["summary"]["faults"], 0);
  EXPECT_EQ(j["summary"]["unexplained_disagreement"], true);
  EXPECT_FALSE(j["summary"]["largest_replay_errors"].empty());
}

// While samples disagree, each fault's impact is measured by reverting it on a copy of the
// Target: the weights rounded to float16 everywhere and tripled in conv7 (WB) reverted together as
// one group bring every disagreeing image back; the depthwise conv's dropped pads (LH) reverted
// alone, with the weights still wrong, change no outcome — and stay a fault (faults can matter
// only together: docs/localize-json.md, "Impact"). Progress goes to stderr; --impact-limit 0
// measures nothing.
TEST_F(Cli, LocalizeMeasuresEachFaultsImpactWhileSamplesDisagree) {
  ASSERT_TRUE(model::save_model(testing::build_cnn(), dir_ / "cnn.onnx").ok());
  const auto faulty = testing::build_cnn(testing::cnn_options([](testing::CnnOptions& o) {
    o.fp16_rounded_weights = true;
    o.scaled_layer = 6;
    o.drop_dw_pads = true;
  }));
  ASSERT_TRUE(model::save_model(faulty, dir_ / "faulty.onnx").ok());
  const fs::path json = dir_ / "impact.json";
  RunResult r = run("localize '" + (dir_ / "cnn.onnx").string() + "' '" + (dir_ / "faulty.onnx").string() +
                    "' --images '" + images_.string() + "' --source-preprocess raw --target-preprocess raw --json '" +
                    json.string() + "'");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("localize: impact 1/"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("reverting it alone changes 0 of 4 outcomes"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(json));
  const int disagreeing = j["detection"]["disagreeing"];
  ASSERT_GT(disagreeing, 0);
  size_t weights = 0, pads = 0;
  for (const auto& f : j["findings"]) {
    if (f["verdict"] != "fault") continue;
    const auto& impact = f["impact"];
    EXPECT_EQ(impact["samples"], 4) << f.dump();
    if (f["type"] == "WB") {
      ++weights;
      EXPECT_EQ(impact["basis"], "reverted_with_group") << f.dump();
      EXPECT_EQ(impact["outcome_changes"], disagreeing) << f.dump();
      EXPECT_LT(impact["distance_change"].get<double>(), 0.0) << f.dump();
    } else if (f["type"] == "LH") {
      ++pads;
      EXPECT_EQ(impact["basis"], "reverted_alone") << f.dump();
      EXPECT_EQ(impact["outcome_changes"], 0) << f.dump();
      EXPECT_TRUE(impact["reverted_with"].empty()) << f.dump();
    }
  }
  EXPECT_EQ(pads, 1u) << j["findings"].dump();
  ASSERT_GE(weights, 2u) << j["findings"].dump();
  for (const auto& f : j["findings"])
    if (f["type"] == "WB" && f["verdict"] == "fault") EXPECT_EQ(f["impact"]["reverted_with"].size(), weights - 1);

  RunResult off = localize_cnn("faulty.onnx", " --impact-limit 0 --json '" + json.string() + "'");
  EXPECT_EQ(off.exit_code, 1) << off.out << off.err;
  for (const auto& f : nlohmann::json::parse(slurp(json))["findings"])
    if (f["verdict"] == "fault") EXPECT_EQ(f["impact"]["basis"], "not_measured") << f.dump();
}

TEST_F(Cli, RepairWritesModelPatchAndLogAndRefusesToOverwriteInputs) {
  ASSERT_TRUE(model::save_model(testing::build_cnn(), dir_ / "cnn.onnx").ok());
  ASSERT_TRUE(model::save_model(testing::build_cnn([] { testing::CnnOptions o; o.scaled_layer = 1; return o; }()),
                                dir_ / "cnn_fault.onnx").ok());
  const std::string base = "repair '" + (dir_ / "cnn.onnx").string() + "' '" + (dir_ / "cnn_fault.onnx").string() +
                           "' --images '" + images_.string() + "' --source-preprocess raw --target-preprocess raw --quiet";
  const fs::path out = dir_ / "repaired.onnx", patch = dir_ / "patch.json", log = dir_ / "log.json";
  RunResult r = run(base + " -o '" + out.string() + "' --patch '" + patch.string() + "' --json '" + log.string() + "'");
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 3) << r.out << r.err;
  ASSERT_TRUE(fs::exists(out)) << r.err;
  auto j = nlohmann::json::parse(slurp(log));
  EXPECT_EQ(j["schema"], "fetafix.repair/1");
  EXPECT_EQ(r.exit_code, j["final_disagreeing"] == 0 ? 0 : (j["final_disagreeing"] < j["initial_disagreeing"] ? 1 : 3));
  // The patch replays on the Target to the same bytes.
  RunResult a = run("apply '" + patch.string() + "' '" + (dir_ / "cnn_fault.onnx").string() + "' -o '" +
                    (dir_ / "applied.onnx").string() + "'");
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(slurp(dir_ / "applied.onnx"), slurp(out));

  const std::string before = slurp(dir_ / "cnn_fault.onnx");
  RunResult over = run(base + " -o '" + (dir_ / "cnn_fault.onnx").string() + "'");
  EXPECT_EQ(over.exit_code, 2);
  EXPECT_EQ(lines(over.err), 1) << over.err;
  EXPECT_EQ(slurp(dir_ / "cnn_fault.onnx"), before);
  EXPECT_EQ(run(base).exit_code, 2);  // -o is required
}

}  // namespace fetafix
