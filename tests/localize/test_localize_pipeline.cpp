// End to end: localize_faults on a small CNN (tests/match/cnn_fixture.h) and real-looking
// synthetic photos. Planted faults must be found at the right node with the right type;
// identical models and semantically equal rewrites must give no fault.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include <onnxruntime_cxx_api.h>

#include "localize/localize.h"
#include "model/model.h"
#include "match/cnn_fixture.h"
#include "model/builder.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/photos.h"

namespace fetafix::localize {
namespace fs = std::filesystem;
using testing::BnForm;
using testing::CnnOptions;

static fs::path make_photos() { return testing::synthetic_photos("localize_photos"); }


static LocalizeOptions quiet_options() {
  LocalizeOptions o;
  o.compare.progress = ProgressMode::kQuiet;
  o.compare.threads = 1;
  o.activation.threads = 1;
  o.activation.max_similar = 20;
  o.activation.max_dissimilar = 20;
  return o;
}

static Result<LocalizeResult> run(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                  const std::string& target_preset = "raw") {
  const auto raw = data::preset_by_name("raw").value();
  auto tp = data::preset_by_name(target_preset).value();
  return localize_faults({&source, "source.onnx", raw}, {&target, "target.onnx", tp}, make_photos(), quiet_options());
}

// The report plus the evidence of every fault, for failure messages.
static std::string describe(const LocalizeResult& r) {
  std::string out = format_report(r);
  for (const auto& f : r.findings)
    if (f.equivalence != Equivalence::kEquivalent) out += localize::evidence_json(f).dump() + "\n";
  return out;
}

TEST(LocalizePipeline, SourceLabelsVaryAcrossThePhotos) {
  auto m = testing::build_cnn();
  auto r = run(m, m);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<int64_t, int> labels;
  for (const auto& rec : r->detection.records) labels[rec.source.ids[0]]++;
  EXPECT_GE(labels.size(), 2u) << "the fixture gives too few distinct labels to test anything";
}

TEST(LocalizePipeline, IdenticalModelsHaveNoFault) {
  auto m = testing::build_cnn();
  auto r = run(m, m);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->fault_count(), 0u) << describe(*r);
  EXPECT_EQ(r->matching.pairs.size(), 9u);
}

struct BenignCase {
  const char* name;
  CnnOptions target;
};

TEST(LocalizePipeline, SemanticallyEqualRewritesHaveNoFault) {
  const BenignCase cases[] = {
      {"bn_folded", testing::cnn_options([](CnnOptions& o) { o.bn = BnForm::kFoldedIntoConv; })},
      {"bn_as_mul_add", testing::cnn_options([](CnnOptions& o) { o.bn = BnForm::kMulAdd; })},
      {"weights_as_constants", testing::cnn_options([](CnnOptions& o) { o.weights_as_constants = true; })},
      {"renamed_with_noops_and_explicit_pads", testing::cnn_options([](CnnOptions& o) { o.prefix = "tf_"; o.insert_noops = true; })},
  };
  auto source = testing::build_cnn();
  for (const auto& c : cases) {
    auto target = testing::build_cnn(c.target);
    auto r = run(source, target);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.error().message;
    EXPECT_EQ(r->detection.summary.disagreeing, 0u) << c.name;
    EXPECT_EQ(r->fault_count(), 0u) << c.name << "\n" << describe(*r);
  }
}

// Hard-swish, x * Clip(x + 3, 0, 6) / 6, after every layer: x feeds the Add and the Mul, so the
// Clip sits past a fork that the single-consumer neighbour chain never crosses. Each Clip that
// lost its max is a finding on that Clip; the bounded model against itself has none.
TEST(LocalizePipeline, ClipMaxDroppedInsideHardSwishIsFoundPastTheFork) {
  auto source = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.hard_swish = true; }));
  auto same = run(source, source);
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->fault_count(), 0u) << describe(*same);

  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) {
    o.hard_swish = true;
    o.unbounded_hard_swish = true;
  }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::set<std::string> clips;
  for (const auto& f : r->findings) {
    if (f.type() != FaultType::kLH) continue;
    EXPECT_EQ(localize::evidence_json(f).value("attribute", ""), "max") << describe(*r);
    EXPECT_EQ(localize::evidence_json(f).value("target_op", ""), "Clip") << describe(*r);
    clips.insert(f.target_node);
  }
  EXPECT_EQ(clips.size(), testing::cnn_layers().size()) << describe(*r);  // one per layer, none twice
  // Besides them only PP may appear: inputs scaled to [-1, 1] keep the unbounded activations
  // small, so a standard preset agrees more (repair undoes it once the Clips are fixed; see
  // RepairDriver.SameHyperparameterFaultOnManyNodesIsRepairedAsAGroup).
  for (const auto& f : r->findings)
    if (f.type() != FaultType::kPP) EXPECT_EQ(f.type(), FaultType::kLH) << describe(*r);
}

// What ONNX Runtime itself writes when asked to save its optimized graph (basic level:
// constant folding, Identity elimination, Conv+BatchNormalization fusion, ...).
static onnx::ModelProto ort_optimized(const onnx::ModelProto& model, const std::string& name) {
  const fs::path dir = testing::temp_dir("ort_optimized_" + name);
  const std::string bytes = model::serialize_model(model);
  Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "test");
  Ort::SessionOptions so;
  so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_BASIC);
  so.SetOptimizedModelFilePath((dir / "optimized.onnx").c_str());
  Ort::Session session(env, bytes.data(), bytes.size(), so);
  auto loaded = model::load_model(dir / "optimized.onnx");
  EXPECT_TRUE(loaded.ok()) << loaded.error().message;
  return loaded.ok() ? loaded->proto : onnx::ModelProto{};
}

TEST(LocalizePipeline, OnnxRuntimeOptimizedModelHasNoFault) {
  auto source = testing::build_cnn();
  auto target = ort_optimized(source, "cnn");
  // The rewrite must be a real one: BatchNormalization nodes fused away.
  int bn = 0;
  for (const auto& n : target.graph().node()) bn += n.op_type() == "BatchNormalization";
  ASSERT_EQ(bn, 0);
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->detection.summary.disagreeing, 0u);
  EXPECT_EQ(r->matching.pairs.size(), 9u);
  EXPECT_EQ(r->fault_count(), 0u) << describe(*r);
}

static const Finding* find(const LocalizeResult& r, FaultType type, const std::string& target_node) {
  for (const auto& f : r.findings)
    if (f.type() == type && f.target_node == target_node && f.equivalence != Equivalence::kEquivalent) return &f;
  return nullptr;
}

TEST(LocalizePipeline, ScaledWeightsAreAWeightFaultAtThatLayer) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 4; }));  // conv5
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NE(find(*r, FaultType::kWB, "conv5"), nullptr) << describe(*r);
  for (const auto& f : r->findings) {
    if (f.equivalence != Equivalence::kEquivalent) {
      EXPECT_EQ(f.target_node, "conv5") << describe(*r);
    }
  }
}

TEST(LocalizePipeline, DroppedPadsAreADivergentHyperparameterFault) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.drop_dw_pads = true; }));  // conv6, depthwise
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Finding* f = find(*r, FaultType::kLH, "conv6");
  ASSERT_NE(f, nullptr) << describe(*r);
  EXPECT_EQ(f->equivalence, Equivalence::kDivergent);
}

TEST(LocalizePipeline, HalfPrecisionWeightsAreWeightFaultsOnEveryLayer) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.fp16_rounded_weights = true; }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const char* layer : {"conv1", "conv2", "conv5", "conv8", "fc"})
    EXPECT_NE(find(*r, FaultType::kWB, layer), nullptr) << layer << "\n" << describe(*r);
  for (const auto& f : r->findings) {
    if (f.equivalence != Equivalence::kEquivalent) {
      EXPECT_EQ(f.type(), FaultType::kWB) << describe(*r);
    }
  }
}

TEST(LocalizePipeline, WrongPresetIsAPreprocessingFault) {
  auto m = testing::build_cnn();
  // The Target is fed BGR with Caffe's means: the same model then disagrees.
  auto r = run(m, m, "caffe");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->detection.summary.disagreeing, 0u);
  bool found = false;
  for (const auto& f : r->findings)
    if (f.type() == FaultType::kPP) {
      found = true;
      EXPECT_EQ(localize::evidence_json(f).value("best_preset", std::string()), "raw") << localize::evidence_json(f).dump();
    }
  EXPECT_TRUE(found) << describe(*r);
}

TEST(LocalizePipeline, JsonAndReportCarryTheFindings) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 1; }));
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto j = to_json(*r);
  EXPECT_EQ(j["schema"], "fetafix.localize/1");
  EXPECT_EQ(j["summary"]["faults"], r->fault_count());
  ASSERT_FALSE(j["findings"].empty());
  EXPECT_EQ(j["findings"][0]["type"], "WB");
  EXPECT_EQ(j["findings"][0]["target_node"], "conv2");
  EXPECT_NE(format_report(*r).find("conv2 <-> conv2"), std::string::npos);
}

// --- layer-local replay and disagreement no check explains ----------------------------------

TEST(LocalizePipeline, LocalReplayRanksTheFaultyLayerFirstAndOrdersItsFinding) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 2; }));  // conv3
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->replay.skipped_reason.empty()) << r->replay.skipped_reason;
  ASSERT_FALSE(r->replay.ranked.empty());
  EXPECT_EQ(r->replay.ranked[0].source_node, "conv3") << describe(*r);
  EXPECT_EQ(r->replay.exceeding().size(), 1u) << describe(*r);  // nothing downstream adds error by itself
  const Finding* f = find(*r, FaultType::kWB, "conv3");
  ASSERT_NE(f, nullptr) << describe(*r);
  EXPECT_EQ(f->layer_rank, 0);
  const auto j = to_json(*r);
  EXPECT_EQ(j["local_replay"]["layers"][0]["source_node"], "conv3");
  EXPECT_GT(j["local_replay"]["layers"][0]["relative_l2"].get<double>(), 1e-5);
  EXPECT_EQ(j["findings"][0]["replay_rank"], 0);
  EXPECT_TRUE(j["findings"][0].contains("activation_rank"));
  EXPECT_EQ(j["summary"]["unexplained_disagreement"], false);
  const std::string report = format_report(*r);
  EXPECT_NE(report.find("Layer ranking by local replay"), std::string::npos) << report;
  EXPECT_NE(report.find(" 1. conv3 <-> conv3"), std::string::npos) << report;
  EXPECT_NE(report.find("Layer ranking by activation analysis"), std::string::npos) << report;
}

TEST(LocalizePipeline, IdenticalModelsSkipReplayAndExplainNothingMissing) {
  auto m = testing::build_cnn();
  auto r = run(m, m);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->replay.skipped_reason, "no image disagrees");
  EXPECT_FALSE(r->unexplained_disagreement());
  EXPECT_NE(format_report(*r).find("No faults found."), std::string::npos);
}

// A re-initialized Target (every weight zeroed): structure pairs the layers, so the weights are
// compared and reported; localization never ends with "No faults found" while images disagree.
TEST(LocalizePipeline, ZeroedWeightsAreFaults) {
  auto source = testing::build_cnn();
  auto r = run(source, testing::with_weights_changed(source, {}, true));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->disagreeing, 0u);
  EXPECT_GT(r->fault_count(), 0u) << describe(*r);
  EXPECT_EQ(format_report(*r).find("No faults found."), std::string::npos) << describe(*r);
}

// One layer's weights replaced by unrelated values while the rest pair by content: that layer
// stays unmatched, so no check compares it. The disagreement is then unexplained, and the
// layer whose replayed region holds it (the matched layer after it) is named.
TEST(LocalizePipeline, DisagreementNoCheckExplainsIsSaidAndNamesTheReplayLayers) {
  auto source = testing::build_cnn();
  auto r = run(source, testing::with_weights_changed(source, {"conv3_w"}, false));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->disagreeing, 0u);
  EXPECT_EQ(r->fault_count(), 0u) << describe(*r);
  ASSERT_TRUE(r->unexplained_disagreement());
  const std::string report = format_report(*r);
  EXPECT_EQ(report.find("No faults found."), std::string::npos) << report;
  EXPECT_NE(report.find("Disagreement not explained by any check"), std::string::npos) << report;
  ASSERT_FALSE(r->replay.exceeding().empty()) << report;
  const auto& suspect = *r->replay.exceeding()[0];
  EXPECT_NE(std::find(suspect.error.target_nodes.begin(), suspect.error.target_nodes.end(), "conv3"),
            suspect.error.target_nodes.end()) << report;
  EXPECT_NE(report.find(suspect.source_node + " <-> " + suspect.target_node), std::string::npos) << report;
  const auto j = to_json(*r);
  EXPECT_EQ(j["summary"]["unexplained_disagreement"], true);
  EXPECT_EQ(j["summary"]["largest_replay_errors"][0]["source_node"], suspect.source_node);
}

}  // namespace fetafix::localize

// --- verdicts: faults, harmless differences, equivalent ones, notes ---------------------------

namespace fetafix::localize {

static onnx::ModelProto hard_swish_cnn(float clip_max, int scaled_layer = -1) {
  return testing::build_cnn(testing::cnn_options([=](CnnOptions& o) {
    o.hard_swish = true;
    o.hard_swish_max = clip_max;
    o.scaled_layer = scaled_layer;
  }));
}

// TensorFlow writes ReLU6's bound as 5.99976 at times: the same difference on every layer gets
// one verdict wherever it sits, also behind an upstream fault (conv2's weights x3) that makes
// every later activation differ. The equivalence is the region's alone.
TEST(LocalizePipeline, TheSamePatternGetsTheSameVerdictAtEveryDepth) {
  const auto source = hard_swish_cnn(6.0f);
  for (int upstream : {-1, 1}) {
    auto r = run(source, hard_swish_cnn(5.99976f, upstream));
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::set<std::string> clips;
    for (const auto& f : r->findings) {
      if (f.type() != FaultType::kLH) continue;
      EXPECT_EQ(f.equivalence, Equivalence::kEquivalent) << f.target_node << "\n" << describe(*r);
      EXPECT_EQ(f.verdict, Verdict::kEquivalent) << describe(*r);
      clips.insert(f.target_node);
    }
    EXPECT_EQ(clips.size(), testing::cnn_layers().size()) << describe(*r);
    if (upstream < 0) {
      EXPECT_EQ(r->disagreeing, 0u);
      EXPECT_EQ(r->fault_count(), 0u) << describe(*r);
    } else {
      const Finding* wb = find(*r, FaultType::kWB, "conv2");
      ASSERT_NE(wb, nullptr) << describe(*r);
      EXPECT_TRUE(wb->is_fault()) << describe(*r);
    }
  }
}

// Weights rounded to float16 differ on every layer, but no photo changes its label: every
// difference is "harmless on these samples", with its size; nothing is a fault.
TEST(LocalizePipeline, DifferencesThatChangeNoOutcomeAreHarmlessNotFaults) {
  auto source = testing::build_cnn();
  auto r = run(source, testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.fp16_rounded_weights = true; })));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->disagreeing, 0u) << describe(*r);
  ASSERT_FALSE(r->findings.empty());
  EXPECT_EQ(r->fault_count(), 0u) << describe(*r);
  EXPECT_FALSE(r->unexplained_disagreement());
  for (const auto& f : r->findings) {
    EXPECT_FALSE(f.is_fault()) << describe(*r);
    EXPECT_EQ(f.impact.outcome_changes, std::optional<size_t>(0));
    EXPECT_EQ(f.impact.basis, "no_sample_disagrees");
    if (f.type() == FaultType::kWB) {
      EXPECT_EQ(f.verdict, Verdict::kHarmless);
      ASSERT_TRUE(f.impact.max_abs_diff.has_value());
      EXPECT_GT(*f.impact.max_abs_diff, 0.0);
    }
  }
  const auto j = to_json(*r);
  EXPECT_EQ(j["summary"]["faults"], 0);
  EXPECT_GT(j["summary"]["harmless_differences"].get<size_t>(), 0u);
  EXPECT_EQ(j["findings"][0]["verdict"], "harmless");
  EXPECT_EQ(j["findings"][0]["is_fault"], false);
  EXPECT_EQ(j["findings"][0]["impact"]["outcome_changes"], 0);
  const std::string report = format_report(*r);
  EXPECT_NE(report.find("No faults found."), std::string::npos) << report;
  EXPECT_NE(report.find("harmless on these samples"), std::string::npos) << report;
}

// A dynamic batch dim on one side, fixed on the other: the data fits both, so it is a note.
TEST(LocalizePipeline, DynamicBatchDimIsANoteNotAnInputFault) {
  auto source = testing::build_cnn();
  auto target = source;
  target.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_param("batch");
  auto r = run(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->findings.size(), 1u) << describe(*r);
  EXPECT_EQ(r->findings[0].type(), FaultType::kID);
  EXPECT_EQ(r->findings[0].verdict, Verdict::kNote);
  EXPECT_EQ(r->fault_count(), 0u);
  EXPECT_EQ(to_json(*r)["findings"][0]["verdict"], "note");
  EXPECT_NE(format_report(*r).find("Notes (not faults)"), std::string::npos) << format_report(*r);
}

TEST(LocalizeVerdicts, NoDisagreementMakesDivergentDifferencesHarmlessAndKeepsNotes) {
  std::vector<Finding> findings(3);
  findings[0].equivalence = Equivalence::kDivergent;
  findings[1].equivalence = Equivalence::kEquivalent;
  findings[2].verdict = Verdict::kNote;
  assign_verdicts(findings, 0, 10);
  EXPECT_EQ(findings[0].verdict, Verdict::kHarmless);
  EXPECT_EQ(findings[1].verdict, Verdict::kEquivalent);
  EXPECT_EQ(findings[2].verdict, Verdict::kNote);
  for (const auto& f : findings) {
    EXPECT_EQ(f.impact.outcome_changes, std::optional<size_t>(0));
    EXPECT_EQ(f.impact.samples, 10u);
  }
  assign_verdicts(findings, 3, 10);
  EXPECT_EQ(findings[0].verdict, Verdict::kFault);
  EXPECT_EQ(findings[1].verdict, Verdict::kEquivalent);
  EXPECT_EQ(findings[2].verdict, Verdict::kNote);
  EXPECT_EQ(findings[0].impact.basis, "not_measured");
}

}  // namespace fetafix::localize
