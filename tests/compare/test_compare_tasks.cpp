// compare_models and the evaluator on models that are not image classifiers: a detector, a
// segmenter, a stateful GRU with two inputs and two outputs, and an audio front end, each
// against a Target with one planted fault (tests/support/task_models.h).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "compare/compare.h"
#include "compare/evaluator.h"
#include "data/audio.h"
#include "data/npz.h"
#include "model/builder.h"
#include "support/assets.h"
#include "support/task_models.h"

namespace fetafix::compare {
namespace fs = std::filesystem;
using testing::TwoTone;

namespace {

CompareOptions options(const std::string& task = "") {
  CompareOptions o;
  o.progress = ProgressMode::kQuiet;
  o.threads = 1;
  o.batch_size = 3;
  if (!task.empty()) o.task = ComparatorRegistry::instance().parse(task).value();
  return o;
}

const data::Preset kRaw = testing::stretched_raw_preset();

// Red, green, blue, grey-on-red, blue-on-green: the detector finds a box in every coloured cell.
fs::path colour_images(const std::string& name, int size) {
  const fs::path dir = testing::temp_dir(name);
  testing::write_two_tone_images(dir, size, size,
                                 {{{200, 40, 40}, {200, 40, 40}, size},
                                  {{40, 200, 40}, {40, 200, 40}, size},
                                  {{40, 40, 200}, {40, 40, 200}, size},
                                  {{128, 128, 128}, {200, 30, 30}, size / 2},
                                  {{30, 30, 200}, {30, 200, 30}, size / 2}});
  return dir;
}

// Per-sample .npz files for the GRU: x [1,T,4] of varying T and a state h0.
fs::path gru_samples(const std::string& name) {
  const fs::path dir = testing::temp_dir(name);
  for (int i = 0; i < 4; ++i) {
    Tensor x = random_tensor({1, 3 + i, 4}, 100 + i);
    Tensor h0 = random_tensor({1, 1, 3}, 200 + i, 0.2f);
    EXPECT_TRUE(data::write_npz(dir / fmt::format("s{}.npz", i), {{"x", x}, {"h0", h0}}).ok());
  }
  return dir;
}

}  // namespace

TEST(CompareTasks, DetectorBoxesAgreeUntilTheTargetsBoxesGrow) {
  const fs::path dir = colour_images("tasks_detector", 32);
  auto src = testing::detector_model(), same = testing::detector_model(), grown = testing::detector_model(1.3f);
  // Two outputs: nothing is read as class scores without --task.
  auto refused = compare_models({&src, "det.onnx", kRaw}, {&same, "det2.onnx", kRaw}, dir, options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kBadInput);
  EXPECT_NE(refused.error().message.find("det.onnx: outputs 'boxes' [N,16,4], 'scores' [N,16,3] do not look like class "
                                         "scores"),
            std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("KIND one of: boxes, mask, text, tensor"), std::string::npos);

  auto agree = compare_models({&src, "det.onnx", kRaw}, {&same, "det2.onnx", kRaw}, dir, options("boxes"));
  ASSERT_TRUE(agree.ok()) << agree.error().message;
  EXPECT_EQ(agree->summary.disagreeing, 0u);
  const auto& first = std::get<BoxesEvidence>(agree->records[0].evidence);
  EXPECT_EQ(first.source.size(), 16u);  // every cell of the red image
  EXPECT_EQ(agree->summary.task_figures["matched"], agree->summary.task_figures["source_detections"]);

  auto grew = compare_models({&src, "det.onnx", kRaw}, {&grown, "grown.onnx", kRaw}, dir, options("boxes"));
  ASSERT_TRUE(grew.ok()) << grew.error().message;
  EXPECT_EQ(grew->summary.disagreeing, 5u);  // (1/1.3)^2 = 0.59 IoU < 0.9
  EXPECT_GT(grew->summary.mean_distance, 0.3);
  auto lax = compare_models({&src, "det.onnx", kRaw}, {&grown, "grown.onnx", kRaw}, dir, options("boxes:iou=0.5"));
  ASSERT_TRUE(lax.ok());
  EXPECT_EQ(lax->summary.disagreeing, 0u);
  // JSON: the schema, the task, both detection sets.
  const nlohmann::json j = to_json(*grew);
  EXPECT_EQ(j["task"]["kind"], "boxes");
  EXPECT_EQ(j["samples"][0]["source_detections"].size(), 16u);
  EXPECT_EQ(j["samples"][0]["status"], "disagree");
  EXPECT_FALSE(j["summary"].contains("label_discrepancy"));
  EXPECT_NE(format_report(*grew).find("Task: boxes"), std::string::npos);
}

TEST(CompareTasks, SegmenterMasksDisagreeWhereRedAndBlueSwap) {
  const fs::path dir = colour_images("tasks_segmenter", 16);
  auto src = testing::segmenter_model(false), tgt = testing::segmenter_model(true);
  auto r = compare_models({&src, "seg.onnx", kRaw}, {&tgt, "seg_swapped.onnx", kRaw}, dir, options("mask"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  // 00 red, 01 green, 02 blue, 03 grey|red, 04 blue|green: every image with red or blue pixels.
  std::vector<bool> agree;
  for (const auto& rec : r->records) agree.push_back(rec.agree);
  EXPECT_EQ(agree, (std::vector<bool>{false, true, false, false, false}));
  const auto& half = std::get<MaskEvidence>(r->records[4].evidence);
  EXPECT_DOUBLE_EQ(half.pixel_agreement, 0.5);  // the green half agrees
  EXPECT_EQ(half.shape, (std::vector<int64_t>{1, 16, 16}));
}

TEST(CompareTasks, StatefulGruWithTwoInputsAndTwoOutputs) {
  const fs::path dir = gru_samples("tasks_gru");
  auto src = testing::gru_model(), same = testing::gru_model(), scaled = testing::gru_model(1.1f);
  const data::Preset none;
  auto refused = compare_models({&src, "gru.onnx", none}, {&same, "gru2.onnx", none}, dir, options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("'y' [1,?,3], 'h' [1,1,3]"), std::string::npos) << refused.error().message;
  auto agree = compare_models({&src, "gru.onnx", none}, {&same, "gru2.onnx", none}, dir, options("tensor"));
  ASSERT_TRUE(agree.ok()) << agree.error().message;
  EXPECT_EQ(agree->summary.images_compared, 4u);
  EXPECT_EQ(agree->summary.disagreeing, 0u);
  EXPECT_EQ(agree->input_pairing, "'x', 'h0' (by name)");
  EXPECT_NE(format_report(*agree).find("Inputs: 'x', 'h0' (by name)"), std::string::npos);
  auto diff = compare_models({&src, "gru.onnx", none}, {&scaled, "gru_scaled.onnx", none}, dir, options("tensor"));
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_EQ(diff->summary.disagreeing, 4u);
  const auto& outs = std::get<TensorEvidence>(diff->records[1].evidence).outputs;
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[0].name, "y");
  EXPECT_EQ(outs[0].source_shape, (std::vector<int64_t>{1, 4, 3}));  // T = 4 for s1
  // Only the final state.
  auto loose = compare_models({&src, "gru.onnx", none}, {&scaled, "gru_scaled.onnx", none}, dir,
                              options("tensor:output=h,rtol=0.5,atol=0.05"));
  ASSERT_TRUE(loose.ok()) << loose.error().message;
  EXPECT_EQ(std::get<TensorEvidence>(loose->records[0].evidence).outputs.size(), 1u);
}

TEST(CompareTasks, NpySamplesWithAConstantState) {
  const fs::path dir = testing::temp_dir("tasks_gru_npy");
  for (int i = 0; i < 3; ++i) {
    std::ofstream out(dir / fmt::format("x{}.npy", i), std::ios::binary);
    out << data::encode_npy(random_tensor({5, 4}, 300 + i));  // no batch dim: [T, 4]
  }
  const fs::path state = testing::temp_dir("tasks_gru_state") / "h0.npy";
  { std::ofstream(state, std::ios::binary) << data::encode_npy(Tensor(DType::kFloat32, {1, 1, 3})); }
  auto src = testing::gru_model();
  CompareOptions o = options("tensor");
  auto missing = compare_models({&src, "gru.onnx", {}}, {&src, "gru.onnx", {}}, dir, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("give the others with --input NAME=FILE.npy"), std::string::npos);
  o.samples.constants = {{"h0", state}};
  auto r = compare_models({&src, "gru.onnx", {}}, {&src, "gru.onnx", {}}, dir, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->summary.disagreeing, 0u);
  EXPECT_EQ(r->summary.images_compared, 3u);
}

TEST(CompareTasks, AudioFrontEndOnResampledWav) {
  const fs::path dir = testing::temp_dir("tasks_audio");
  for (int i = 0; i < 4; ++i) {
    std::vector<float> wave(16000);
    const double f = 100.0 * (i + 1);
    for (size_t n = 0; n < wave.size(); ++n) wave[n] = static_cast<float>(0.3 * std::sin(2 * M_PI * f * n / 16000.0));
    ASSERT_TRUE(data::write_wav(dir / fmt::format("tone{}.wav", i), wave, 16000).ok());
  }
  auto src = testing::audio_model(), gained = testing::audio_model(1.5f);
  CompareOptions o = options("tensor:output=embedding");
  auto unresampled = compare_models({&src, "audio.onnx", {}}, {&src, "audio.onnx", {}}, dir, o);
  ASSERT_FALSE(unresampled.ok());  // 16000 samples at 16 kHz do not fit [N,8000]
  EXPECT_NE(unresampled.error().message.find("tone0.wav: 16000 samples at 16000 Hz"), std::string::npos)
      << unresampled.error().message;
  o.samples.sample_rate = 8000;
  auto same = compare_models({&src, "audio.onnx", {}}, {&src, "audio.onnx", {}}, dir, o);
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->summary.disagreeing, 0u);
  auto diff = compare_models({&src, "audio.onnx", {}}, {&gained, "gain.onnx", {}}, dir, o);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_EQ(diff->summary.disagreeing, 4u);  // log power + log(2.25) everywhere
  o.task = ComparatorRegistry::instance().parse("label:output=logits").value();
  auto labels = compare_models({&src, "audio.onnx", {}}, {&src, "audio.onnx", {}}, dir, o);
  ASSERT_TRUE(labels.ok()) << labels.error().message;
  EXPECT_EQ(labels->summary.disagreeing, 0u);
  EXPECT_EQ(labels->summary.source_classes, 8);
}

TEST(CompareTasks, EvaluatorScoresCandidatesOfAnyTask) {
  const fs::path dir = colour_images("tasks_evaluator", 32);
  auto src = testing::detector_model(), grown = testing::detector_model(1.3f);
  auto e = Evaluator::create({&src, "det.onnx", kRaw}, {&grown, "grown.onnx", kRaw}, dir, options("boxes"));
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ((*e)->images(), 5u);
  EXPECT_TRUE((*e)->source_top1().empty());  // not a label task
  auto faulty = (*e)->score(grown);
  ASSERT_TRUE(faulty.ok()) << faulty.error().message;
  EXPECT_EQ(faulty->disagreeing, 5u);
  ASSERT_EQ(faulty->verdicts.size(), 5u);
  EXPECT_FALSE(faulty->verdicts[0].detail.empty());
  auto fixed = (*e)->score(src);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->disagreeing, 0u);
  EXPECT_DOUBLE_EQ(fixed->distance, 0.0);
  const size_t subset[] = {1, 3};
  auto part = (*e)->score(grown, subset);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->agree.size(), 2u);
  // A GRU evaluator: per-sample runs (a fixed batch of 1), two inputs.
  const fs::path gru_dir = gru_samples("tasks_evaluator_gru");
  auto gru = testing::gru_model(), scaled = testing::gru_model(1.1f);
  auto g = Evaluator::create({&gru, "gru.onnx", {}}, {&scaled, "scaled.onnx", {}}, gru_dir, options("tensor"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ((*g)->score(scaled)->disagreeing, 4u);
  EXPECT_EQ((*g)->score(gru)->disagreeing, 0u);
}

}  // namespace fetafix::compare
