// The greedy loop end to end on the small CNN (tests/match/cnn_fixture.h) and synthetic photos:
// planted faults repaired to 0 %, every kept step lowers disagreement, the patch replays to the
// same bytes, and the stop rules hold.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "match/cnn_fixture.h"
#include "model/model.h"
#include "repair/driver.h"
#include "repair/patch.h"
#include "support/photos.h"
#include "support/repair_options.h"

namespace fetafix::repair {
namespace fs = std::filesystem;
using testing::CnnOptions;


static RepairOptions quiet_options() { return testing::quiet_repair_options(); }

static Result<RepairResult> run(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                RepairOptions options = quiet_options()) {
  const auto raw = data::preset_by_name("raw").value();
  return repair_target({&source, "source.onnx", raw}, {&target, "target.onnx", raw},
                       testing::synthetic_photos("repair_photos"), options);
}

static std::string steps_of(const RepairResult& r) {
  std::string out = format_report(r);
  for (const auto& s : r.steps)
    out += "  step: " + s.type_label() + " " + s.description + " -> " + s.reason + "\n";
  return out;
}

static void expect_monotone_history(const RepairResult& r) {
  for (size_t i = 1; i < r.history.size(); ++i) EXPECT_LT(r.history[i], r.history[i - 1]) << steps_of(r);
  for (const auto& s : r.steps) {
    if (s.kept) {
      EXPECT_LT(s.disagreeing_after, s.disagreeing_before) << steps_of(r);
    }
  }
}

TEST(RepairDriver, IdenticalModelsNeedNothing) {
  auto m = testing::build_cnn();
  auto r = run(m, m);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->initial_disagreeing, 0u);
  EXPECT_TRUE(r->steps.empty());
  EXPECT_TRUE(r->patch.edits.empty());
  EXPECT_EQ(model::serialize_model(r->repaired), model::serialize_model(m));
}

TEST(RepairDriver, ScaledLayerAndDroppedPadsAreRepairedToZero) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.scaled_layer = 1;
    o.drop_dw_pads = true;
  }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  expect_monotone_history(*r);
  EXPECT_GE(r->counts["WB"].kept + r->counts["LH"].kept, 1u) << steps_of(*r);

  // The patch replays on the Target to the very same model.
  onnx::ModelProto replayed = target;
  ASSERT_TRUE(apply_patch(r->patch, replayed).ok());
  EXPECT_EQ(model::serialize_model(replayed), model::serialize_model(r->repaired));
}

// When no finding alone is kept (here: none is tried alone, --max-rejections 0), the round's
// findings are applied together, each planned on the Target with the ones before it applied,
// and one score decides. The joint step's edits replay like any others.
TEST(RepairDriver, FindingsNoneOfWhichHelpsAloneAreAppliedJointly) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.scaled_layer = 1;
    o.drop_dw_pads = true;
  }));
  RepairOptions o = quiet_options();
  o.max_rejections = 0;
  auto r = run(source, target, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  const RepairStep* joint = nullptr;
  for (const auto& s : r->steps)
    if (s.kept && s.kind == StepKind::kJoint) joint = &s;
  ASSERT_NE(joint, nullptr) << steps_of(*r);
  EXPECT_GE(joint->finding_summaries.size(), 2u) << steps_of(*r);
  EXPECT_EQ(joint->finding_ids.size(), joint->finding_summaries.size()) << steps_of(*r);
  EXPECT_GE(r->counts["WB"].kept, 1u) << steps_of(*r);
  EXPECT_GE(r->counts["LH"].kept, 1u) << steps_of(*r);
  onnx::ModelProto replayed = target;
  ASSERT_TRUE(apply_patch(r->patch, replayed).ok());
  EXPECT_EQ(model::serialize_model(replayed), model::serialize_model(r->repaired));

  o.joint_step = false;  // the same loop without it keeps nothing
  auto without = run(source, target, o);
  ASSERT_TRUE(without.ok()) << without.error().message;
  EXPECT_EQ(without->final_disagreeing, without->initial_disagreeing) << steps_of(*without);
}

TEST(RepairDriver, HalfPrecisionWeightsAreRepairedAsAGroup) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.fp16_rounded_weights = true;
    o.scaled_layer = 6;
  }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  expect_monotone_history(*r);
  EXPECT_GE(r->counts["WB"].localized, 9u) << steps_of(*r);
  // Counts are per finding: a kept group counts each tensor it fixed.
  size_t group_tensors = 0;
  for (const auto& s : r->steps)
    if (s.kept && s.kind == StepKind::kGroup && s.type == localize::FaultType::kWB) group_tensors += s.edits;
  EXPECT_GE(r->counts["WB"].kept, std::min<size_t>(group_tensors, 2)) << steps_of(*r);
  EXPECT_LE(r->counts["WB"].kept, r->counts["WB"].localized);
  EXPECT_LE(r->counts["WB"].kept, r->counts["WB"].tried);
}

// Every hard-swish Clip lost its max: one fault made on every layer. The findings share op,
// attribute and values, so they are tried as one LH* group and counted one by one. The
// unbounded Target also agrees more with inputs scaled to [-1, 1], so a PP preset is kept
// first; once the Clips are fixed the Target's own preprocessing is restored.
TEST(RepairDriver, SameHyperparameterFaultOnManyNodesIsRepairedAsAGroup) {
  auto source = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.hard_swish = true; }));
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.hard_swish = true;
    o.unbounded_hard_swish = true;
  }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  expect_monotone_history(*r);
  const RepairStep* group = nullptr;
  for (const auto& s : r->steps)
    if (s.kept && s.kind == StepKind::kGroup && s.type == localize::FaultType::kLH) group = &s;
  ASSERT_NE(group, nullptr) << steps_of(*r);
  EXPECT_GE(group->target_nodes.size(), 2u);
  EXPECT_EQ(group->finding_summaries.size(), group->target_nodes.size());
  EXPECT_EQ(group->finding_ids.size(), group->target_nodes.size());
  EXPECT_EQ(r->counts["LH"].kept, group->target_nodes.size()) << steps_of(*r);
  EXPECT_FALSE(r->patch.preprocess.has_value()) << steps_of(*r);
  bool reverted = false;
  for (const auto& s : r->steps)
    reverted = reverted || (s.kept && s.reverts && s.kind == StepKind::kFinding && s.type == localize::FaultType::kPP);
  EXPECT_TRUE(reverted) << steps_of(*r);
  EXPECT_EQ(r->counts["PP"].kept, 0u) << steps_of(*r);
  // The repaired model's Clips are bounded again, as the Source's are.
  for (const auto& n : r->repaired.graph().node())
    if (n.op_type() == "Clip") {
      EXPECT_EQ(n.input_size(), 3) << n.name();
    }
}

// The weight group is tried before the LH groups. While every hard-swish Clip lacks its max, the
// weights put back (rounded to float16 everywhere, tripled in conv2) lower nothing on the images;
// once the LH* group is kept, the weight group is tried again whole and kept in the same round.
// Without the retry the weight findings went one by one and one of 34 was kept (the real
// paddleocr-multi case: WB 54/2 without the retry, 54/54 with it).
TEST(RepairDriver, WeightGroupThatLoweredNothingIsRetriedAfterAnLhGroupIsKept) {
  auto source = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.hard_swish = true; }));
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.hard_swish = true;
    o.unbounded_hard_swish = true;
    o.fp16_rounded_weights = true;
    o.scaled_layer = 1;
  }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  expect_monotone_history(*r);
  int lh_group = -1, wb_group = -1;
  for (size_t i = 0; i < r->steps.size(); ++i) {
    const auto& s = r->steps[i];
    if (!s.kept || s.kind != StepKind::kGroup || s.round != 1) continue;
    if (s.type == localize::FaultType::kLH && lh_group < 0) lh_group = static_cast<int>(i);
    if (s.type == localize::FaultType::kWB && wb_group < 0) wb_group = static_cast<int>(i);
  }
  ASSERT_GE(lh_group, 0) << steps_of(*r);
  ASSERT_GE(wb_group, 0) << steps_of(*r);
  EXPECT_GT(wb_group, lh_group) << steps_of(*r);  // kept on the retry, after the LH group
  EXPECT_EQ(r->counts["WB"].kept, r->counts["WB"].localized) << steps_of(*r);
}

TEST(RepairDriver, LateLayerFaultIsScreenedThenRunPartially) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 7; }));
  RepairOptions o = quiet_options();
  o.screen_agreeing = 4;  // 40 photos: keep the screening subset under half of them
  auto r = run(source, target, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);
  EXPECT_GT(r->partial_runs, 0u) << steps_of(*r);
  // The round's localization is kept for reports, and the kept step names its finding.
  ASSERT_FALSE(r->localizations.empty());
  EXPECT_FALSE(r->localizations[0].findings.empty());
  bool named = false;
  for (const auto& s : r->steps)
    if (s.kept && s.target_nodes == std::vector<std::string>{"conv8"} && s.finding_ids.size() == 1)
      for (const auto& f : r->localizations[0].findings) named = named || f.id == s.finding_ids[0];
  EXPECT_TRUE(named) << steps_of(*r);
  EXPECT_EQ(r->image_files.size(), r->images);
  EXPECT_EQ(r->final_agree.size(), r->images);
}

TEST(RepairDriver, TimeLimitStopsTheLoop) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 1; }));
  RepairOptions o = quiet_options();
  o.time_limit_seconds = 1e-9;
  auto r = run(source, target, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->time_limit_reached);
  EXPECT_TRUE(r->patch.edits.empty());
  EXPECT_NE(r->stop_reason.find("time limit"), std::string::npos);
}

TEST(RepairDriver, ValidationReportsBeforeAndAfterOnOtherImages) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 3; }));
  RepairOptions o = quiet_options();
  auto validation = data::SampleSet::open(testing::synthetic_photos("repair_validation", 30, 7), {});
  ASSERT_TRUE(validation.ok()) << validation.error().message;
  o.validation = std::move(validation).value();
  auto r = run(source, target, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->validation.has_value());
  EXPECT_EQ(r->validation->images, 30u);
  EXPECT_LE(r->validation->final_disagreeing, r->validation->initial_disagreeing);
  EXPECT_TRUE(r->validation->newly_disagreeing.empty());
  auto j = to_json(*r);
  EXPECT_EQ(j["schema"], "fetafix.repair/1");
  EXPECT_EQ(j["validation"]["images"], 30);
}

// The samples held in memory (what the Python module passes: its own preprocessing) repair as
// the folder they came from: the library reads a data::SampleSet either way.
TEST(RepairDriver, HeldSamplesRepairAsTheirFolder) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 1; }));
  const auto raw = data::preset_by_name("raw").value();
  const fs::path dir = testing::synthetic_photos("repair_photos");
  auto folder = data::SampleSet::open(dir, {});
  auto bound = data::bind_preset_to_input(raw, {1, 3, 32, 32}, DType::kFloat32, "input");
  ASSERT_TRUE(folder.ok() && bound.ok());
  std::vector<data::HeldSample> held;
  for (size_t i = 0; i < folder->size(); ++i) {
    auto sample = folder->decode(i);
    ASSERT_TRUE(sample.ok()) << sample.error().message;
    held.push_back({folder->files()[i].name, {{"", data::preprocess(sample->image, *bound)}}});
  }
  auto set = data::SampleSet::hold(std::move(held));
  ASSERT_TRUE(set.ok()) << set.error().message;
  const RepairOptions o = quiet_options();
  auto by_folder = repair_target({&source, "s", raw}, {&target, "t", raw}, dir, o);
  auto by_held = repair_target({&source, "s", raw}, {&target, "t", raw}, std::move(set).value(), o);
  ASSERT_TRUE(by_folder.ok()) << by_folder.error().message;
  ASSERT_TRUE(by_held.ok()) << by_held.error().message;
  EXPECT_GT(by_held->initial_disagreeing, 0u);
  EXPECT_EQ(by_held->initial_disagreeing, by_folder->initial_disagreeing);
  EXPECT_EQ(by_held->final_disagreeing, by_folder->final_disagreeing) << steps_of(*by_held) << steps_of(*by_folder);
  EXPECT_EQ(patch_to_json(by_held->patch), patch_to_json(by_folder->patch));
  EXPECT_EQ(by_held->image_files, by_folder->image_files);
}

}  // namespace fetafix::repair
