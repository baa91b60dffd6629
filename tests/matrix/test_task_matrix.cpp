// Localize and repair on any task (issue 11), in the manner of the fault matrix: one row per
// task — detections (boxes), segmentation (mask), CTC text (text), raw tensors of an audio model
// fed .npz samples (tensor) — each with a fault planted by inject in an in-code fixture
// (tests/support/task_models.h). Each row checks that
//   - the task's comparator sees disagreement, and localize reports a finding of the planted
//     type at a node the injection's ground truth lists;
//   - the repair leaves no sample disagreeing;
//   - the repaired Target's outputs then match the Source's within the tensor comparator's
//     tolerance on every sample, whatever the row's task (the goal);
//   - the repair's patch replays on the Target to the repaired model byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "compare/compare.h"
#include "compare/comparator.h"
#include "data/npz.h"
#include "localize/localize.h"
#include "model/builder.h"
#include "model/model.h"
#include "repair/driver.h"
#include "repair/patch.h"
#include "matrix/matrix_support.h"
#include "support/repair_options.h"
#include "support/task_models.h"
#include "support/assets.h"

namespace fetafix {
namespace {
namespace fs = std::filesystem;
using localize::FaultType;

enum class Samples { kImages16, kImages8x32, kAudioNpz };

struct TaskRow {
  std::string name;
  std::function<onnx::ModelProto()> model;
  std::string task;                 // --task
  std::vector<std::string> specs;   // inject specs
  FaultType type;                   // what localize must report
  Samples samples;
  bool ranks_layers = false;        // some samples agree: the activation analysis ranks the layers
};

std::vector<TaskRow> rows() {
  return {
      {"BoxesClipMaxRemoved", testing::conv_detector_model, "boxes:threshold=0.4,iou=0.5",
       {"lh:clip-max-removed"}, FaultType::kLH, Samples::kImages16},
      {"MaskDropPads", testing::conv_segmenter_model, "mask", {"lh:drop-pads"}, FaultType::kLH, Samples::kImages16},
      {"MaskClipMaxRemoved", testing::conv_segmenter_model, "mask", {"lh:clip-max-removed"}, FaultType::kLH,
       Samples::kImages16},
      {"TextEpsilon", testing::conv_recognizer_model, "text:blank=0", {"lh:epsilon=0.02"}, FaultType::kLH,
       Samples::kImages8x32, true},
      {"TensorInt8Weights", [] { return testing::audio_model(); }, "tensor", {"wb:int8-tensor"}, FaultType::kWB,
       Samples::kAudioNpz},
  };
}

fs::path write_samples(Samples kind, const std::string& name) {
  const fs::path dir = testing::temp_dir("task_matrix_" + name);
  switch (kind) {
    case Samples::kImages16: testing::write_block_images(dir, 16, 16, 24, 7); break;
    case Samples::kImages8x32: testing::write_block_images(dir, 32, 8, 24, 8); break;
    case Samples::kAudioNpz:
      for (int i = 0; i < 16; ++i)
        EXPECT_TRUE(data::write_npz(dir / fmt::format("{:02}.npz", i), {{"wave", random_tensor({1, 8000}, 100 + i, 0.3f)}}).ok());
      break;
  }
  return dir;
}

using testing::findings_of;
using testing::steps_of;

class TaskMatrix : public ::testing::TestWithParam<TaskRow> {};

TEST_P(TaskMatrix, LocalizedRepairedAndOutputsMatch) {
  const TaskRow& row = GetParam();
  const onnx::ModelProto source = row.model();
  const inject::InjectionResult injected = testing::plant_specs(source, row.specs, row.name);
  ASSERT_FALSE(injected.ground_truth.is_null());
  const onnx::ModelProto& target = injected.model;
  const auto preset = testing::stretched_raw_preset();
  const compare::ModelSide source_side{&source, "source.onnx", preset}, target_side{&target, "target.onnx", preset};
  const fs::path samples = write_samples(row.samples, row.name);
  repair::RepairOptions options = testing::quiet_repair_options();
  auto task = compare::ComparatorRegistry::instance().parse(row.task);
  ASSERT_TRUE(task.ok()) << task.error().message;
  options.localize.compare.task = *task;

  auto loc = localize::localize_faults(source_side, target_side, samples, options.localize);
  ASSERT_TRUE(loc.ok()) << loc.error().message;
  EXPECT_GT(loc->detection.summary.disagreeing, 0u) << "the planted fault must show in the " << row.task << " task";
  const std::set<std::string> nodes = testing::truth_nodes(injected.ground_truth);
  const bool found = std::any_of(loc->findings.begin(), loc->findings.end(), [&](const localize::Finding& f) {
    return f.type() == row.type && nodes.count(f.target_node) > 0;
  });
  EXPECT_TRUE(found) << "no " << localize::fault_type_name(row.type) << " finding at " << nlohmann::json(nodes).dump()
                     << ":\n" << findings_of(*loc);
  if (row.samples != Samples::kAudioNpz) {  // PP on another task: every preset scored by the comparator
    ASSERT_FALSE(loc->preprocessing.trials.empty()) << findings_of(*loc);
    EXPECT_TRUE(loc->preprocessing.trials[0].measured);
    EXPECT_TRUE(loc->preprocessing.trials[0].distance.has_value());
  }
  if (row.ranks_layers)
    EXPECT_FALSE(loc->activation.ranked.empty()) << loc->activation.skipped_reason << "\n" << findings_of(*loc);

  auto r = repair::repair_target(source_side, target_side, samples, options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GT(r->initial_disagreeing, 0u);
  EXPECT_EQ(r->final_disagreeing, 0u) << steps_of(*r);

  // The repaired Target computes what the Source does, output by output.
  compare::CompareOptions tensor = options.localize.compare;
  tensor.task = compare::ComparatorRegistry::instance().parse("tensor").value();
  const compare::ModelSide repaired{&r->repaired, "repaired.onnx", r->patch.preprocess.value_or(preset)};
  auto after = compare::compare_models(source_side, repaired, samples, tensor);
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(after->summary.images_compared, after->records.size());
  EXPECT_EQ(after->summary.disagreeing, 0u) << compare::format_report(*after);

  auto patch = repair::patch_from_json(repair::patch_to_json(r->patch));
  ASSERT_TRUE(patch.ok()) << patch.error().message;
  onnx::ModelProto replayed = target;
  ASSERT_TRUE(repair::apply_patch(*patch, replayed).ok());
  EXPECT_EQ(model::serialize_model(replayed), model::serialize_model(r->repaired));
}

INSTANTIATE_TEST_SUITE_P(Rows, TaskMatrix, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<TaskRow>& info) { return info.param.name; });

// A stateful model with two inputs and two outputs (a GRU, its state in and out), fed .npz
// samples: localize and repair run on it and say what they skip. (The weights check does not
// cover GRU weights, so nothing here is expected to be found or repaired.)
TEST(TaskLocalize, TwoInputGruOnNpzSamples) {
  const onnx::ModelProto source = testing::gru_model(), target = testing::gru_model(1.5f);
  const fs::path dir = testing::temp_dir("task_matrix_gru");
  for (int i = 0; i < 12; ++i)
    ASSERT_TRUE(data::write_npz(dir / fmt::format("{:02}.npz", i),
                                {{"x", random_tensor({1, 6, 4}, 200 + i)}, {"h0", random_tensor({1, 1, 3}, 300 + i)}})
                    .ok());
  const compare::ModelSide s{&source, "gru.onnx", {}}, t{&target, "gru_scaled.onnx", {}};
  repair::RepairOptions options = testing::quiet_repair_options();
  options.localize.compare.task = compare::ComparatorRegistry::instance().parse("tensor").value();
  auto loc = localize::localize_faults(s, t, dir, options.localize);
  ASSERT_TRUE(loc.ok()) << loc.error().message;
  EXPECT_EQ(loc->detection.summary.disagreeing, 12u);
  auto noted = [&](const std::string& text) {
    return std::any_of(loc->notes.begin(), loc->notes.end(),
                       [&](const std::string& n) { return n.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(noted("preprocessing check skipped: the samples are not images")) << findings_of(*loc);
  EXPECT_TRUE(noted("flatten structure check skipped")) << findings_of(*loc);
  auto r = repair::repair_target(s, t, dir, options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->initial_disagreeing, 12u);
}

}  // namespace
}  // namespace fetafix
