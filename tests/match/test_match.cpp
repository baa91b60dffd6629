#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "match/cnn_fixture.h"
#include "match/match.h"
#include "match/match_helpers.h"

namespace fetafix::testing {
namespace {

using match::match_models;
using match::MatchOptions;
using match::MatchResult;

const std::vector<std::string> kCoreNames{"conv1", "conv2", "conv3", "conv4", "conv5",
                                          "conv6", "conv7", "conv8", "fc"};

MatchResult run_match(const onnx::ModelProto& s, const onnx::ModelProto& t, const MatchOptions& o = {}) {
  auto r = match_models(s, t, o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : MatchResult{};
}

// Every Source core node paired with the Target node of the same base name, nothing unmatched.
void expect_exact(const MatchResult& r, const std::string& target_prefix) {
  EXPECT_EQ(r.source_core, kCoreNames.size());
  EXPECT_EQ(r.target_core, kCoreNames.size());
  ASSERT_EQ(r.pairs.size(), kCoreNames.size());
  for (size_t i = 0; i < r.pairs.size(); ++i) {
    const auto& p = r.pairs[i];
    EXPECT_EQ(p.target_node, target_prefix + p.source_node) << p.evidence;
    EXPECT_GE(p.confidence, 0.5);
    EXPECT_LE(p.confidence, 1.0);
    EXPECT_FALSE(p.evidence.empty());
  }
  EXPECT_TRUE(r.unmatched_source.empty());
  EXPECT_TRUE(r.unmatched_target.empty());
}

TEST(MatchModels, IdenticalCopyIsExactWithHighConfidence) {
  const auto model = build_cnn();
  const MatchResult r = run_match(model, model);
  expect_exact(r, "");
  // Pairs come in Source topological order.
  for (size_t i = 0; i < r.pairs.size(); ++i) EXPECT_EQ(r.pairs[i].source_node, kCoreNames[i]);
  for (const auto& p : r.pairs) {
    EXPECT_GT(p.confidence, 0.9) << p.source_node << ": " << p.evidence;
    EXPECT_TRUE(p.weight_permutation.empty());
    EXPECT_FALSE(p.bn_folded_in_target || p.bn_folded_in_source);
  }
}

TEST(MatchModels, RenamedAndShuffledIsExact) {
  // A valid node order where the parallel branch conv8 comes before conv7, so that the two
  // models' topological orders of the core layers really differ.
  const auto plain = build_cnn({.prefix = "T_"});
  onnx::ModelProto target;
  bool reordered = false;
  for (uint64_t seed = 1; seed < 64 && !reordered; ++seed) {
    target = shuffled_topologically(plain, seed);
    int conv7 = -1, conv8 = -1;
    for (int i = 0; i < target.graph().node_size(); ++i) {
      if (target.graph().node(i).name() == "T_conv7") conv7 = i;
      if (target.graph().node(i).name() == "T_conv8") conv8 = i;
    }
    reordered = conv8 >= 0 && conv8 < conv7;
  }
  ASSERT_TRUE(reordered);
  ASSERT_EQ(target.graph().node_size(), plain.graph().node_size());
  expect_exact(run_match(build_cnn(), target), "T_");
}

TEST(MatchModels, InsertedTransposeIdentityCastPadNodesAreSeenThrough) {
  expect_exact(run_match(build_cnn(), build_cnn({.prefix = "T_", .insert_noops = true})), "T_");
}

TEST(MatchModels, BatchNormFoldedIntoTargetConvIsDetected) {
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_", .bn = BnForm::kFoldedIntoConv}));
  expect_exact(r, "T_");
  for (const auto& p : r.pairs) {
    const bool has_bn = p.source_node == "conv1" || p.source_node == "conv2" || p.source_node == "conv3" ||
                        p.source_node == "conv5";
    EXPECT_EQ(p.bn_folded_in_target, has_bn) << p.source_node << ": " << p.evidence;
    EXPECT_FALSE(p.bn_folded_in_source);
    EXPECT_EQ(p.folded_bn_node, has_bn ? p.source_node + "_bn" : "");
  }
}

TEST(MatchModels, BatchNormFoldedInSourceIsDetected) {
  const MatchResult r = run_match(build_cnn({.prefix = "", .bn = BnForm::kFoldedIntoConv}), build_cnn({.prefix = "T_"}));
  expect_exact(r, "T_");
  for (const auto& p : r.pairs) {
    if (p.source_node != "conv2") continue;
    EXPECT_TRUE(p.bn_folded_in_source) << p.evidence;
    EXPECT_EQ(p.folded_bn_node, "T_conv2_bn");
  }
}

TEST(MatchModels, BatchNormSplitIntoMulAddIsExact) {
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_", .bn = BnForm::kMulAdd}));
  expect_exact(r, "T_");
  for (const auto& p : r.pairs) EXPECT_FALSE(p.bn_folded_in_target || p.bn_folded_in_source) << p.evidence;
}

TEST(MatchModels, WeightsAsConstantNodesAreExact) {
  expect_exact(run_match(build_cnn(), build_cnn({.prefix = "T_", .weights_as_constants = true})), "T_");
}

TEST(MatchModels, HwioWeightsBehindTransposesGiveTheLayoutPermutation) {
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_", .hwio_weights = true}));
  expect_exact(r, "T_");
  for (const auto& p : r.pairs) {
    if (p.source_node == "fc") EXPECT_TRUE(p.weight_permutation.empty());
    else EXPECT_EQ(p.weight_permutation, (std::vector<int64_t>{2, 3, 1, 0})) << p.source_node << ": " << p.evidence;
  }
  // The reverse direction reports the inverse permutation (HWIO -> OIHW).
  const MatchResult back = run_match(build_cnn({.prefix = "", .hwio_weights = true}), build_cnn({.prefix = "T_"}));
  expect_exact(back, "T_");
  EXPECT_EQ(back.pairs[1].weight_permutation, (std::vector<int64_t>{3, 2, 0, 1}));
}

TEST(MatchModels, GemmWithTransBMatchesMatMulWithTransposedWeight) {
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_", .fc_as_matmul = true}));
  expect_exact(r, "T_");
  EXPECT_EQ(r.pairs.back().weight_permutation, (std::vector<int64_t>{1, 0})) << r.pairs.back().evidence;
}

TEST(MatchModels, QuantizedWeightsBehindDequantizeLinearAreExact) {
  expect_exact(run_match(build_cnn(), build_cnn({.prefix = "T_", .qdq_weights = true})), "T_");
}

TEST(MatchModels, InjectedFaultsDoNotBreakTheMatch) {
  // Ground truth known: a faulty copy must still match exactly.
  const auto target = build_cnn({.prefix = "T_", .fp16_rounded_weights = true, .scaled_layer = 2, .drop_dw_pads = true});
  expect_exact(run_match(build_cnn(), target), "T_");
}

TEST(MatchModels, EveryConverterFormAtOnceIsExact) {
  const auto target = shuffled_topologically(build_cnn({.prefix = "T_",
                                                        .bn = BnForm::kMulAdd,
                                                        .weights_as_constants = true,
                                                        .hwio_weights = true,
                                                        .insert_noops = true,
                                                        .qdq_weights = true,
                                                        .fp16_rounded_weights = true,
                                                        .scaled_layer = 4,
                                                        .fc_as_matmul = true}),
                                             3);
  expect_exact(run_match(build_cnn(), target), "T_");
}

TEST(MatchModels, ExtraAndMissingConvsAreReportedUnmatched) {
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_", .extra_conv = true, .drop_conv7 = true}));
  EXPECT_EQ(r.source_core, 9u);
  EXPECT_EQ(r.target_core, 9u);
  ASSERT_EQ(r.pairs.size(), 8u);
  for (const auto& p : r.pairs) EXPECT_EQ(p.target_node, "T_" + p.source_node) << p.evidence;
  EXPECT_EQ(r.unmatched_source, (std::vector<std::string>{"conv7"}));
  EXPECT_EQ(r.unmatched_target, (std::vector<std::string>{"T_extra"}));
}

using testing::with_weights_changed;

TEST(MatchModels, UnrelatedWeightsAreNotForcedIntoPairsByContent) {
  // Same architecture, every weight different: weight content contradicts every pairing, so
  // content matching makes no pair; without the structure fallback nothing is paired.
  const auto target = with_weights_changed(build_cnn({.prefix = "T_"}));
  MatchOptions content_only;
  content_only.structure_fallback_below = 0;
  const MatchResult r = run_match(build_cnn(), target, content_only);
  EXPECT_TRUE(r.pairs.empty()) << r.pairs.size() << " pairs, first: " << (r.pairs.empty() ? "" : r.pairs[0].evidence);
  EXPECT_EQ(r.unmatched_source.size(), 9u);
  EXPECT_EQ(r.unmatched_target.size(), 9u);
  EXPECT_FALSE(r.structure_fallback);
}

TEST(MatchModels, StructureFallbackPairsAReinitializedTargetAndSaysSo) {
  for (const bool zero : {false, true}) {
    const auto target = with_weights_changed(build_cnn({.prefix = "T_"}), {}, zero);
    const MatchResult r = run_match(build_cnn(), target);
    EXPECT_TRUE(r.structure_fallback);
    EXPECT_EQ(r.content_pairs, 0u);
    EXPECT_EQ(r.structure_pairs, 9u);
    ASSERT_EQ(r.pairs.size(), 9u) << (zero ? "zeroed" : "scrambled");
    for (const auto& p : r.pairs) {
      EXPECT_EQ(p.target_node, "T_" + p.source_node) << p.evidence;
      EXPECT_EQ(p.method, match::MatchMethod::kStructure);
      EXPECT_GE(p.confidence, 0.5) << p.evidence;
      EXPECT_NE(p.evidence.find("structure"), std::string::npos) << p.evidence;
    }
  }
}

TEST(MatchModels, StructureFallbackKeepsContentPairsAndFillsTheGapsInOrder) {
  // Six of nine layers re-initialized: content pairs three (fewer than half), structure the rest.
  const auto target = with_weights_changed(build_cnn({.prefix = "T_", .extra_conv = true}),
                                           {"T_conv1_w", "T_conv2_w", "T_conv4_w", "T_conv5_w", "T_conv6_w", "T_fc_w"});
  const MatchResult r = run_match(build_cnn(), target);
  EXPECT_TRUE(r.structure_fallback);
  EXPECT_EQ(r.content_pairs, 3u);
  ASSERT_EQ(r.pairs.size(), 9u);
  for (const auto& p : r.pairs) {
    EXPECT_EQ(p.target_node, "T_" + p.source_node) << p.evidence;
    const bool changed = p.source_node != "conv3" && p.source_node != "conv7" && p.source_node != "conv8";
    EXPECT_EQ(p.method, changed ? match::MatchMethod::kStructure : match::MatchMethod::kContent) << p.source_node;
  }
  EXPECT_EQ(r.unmatched_target, (std::vector<std::string>{"T_extra"}));
  // One layer re-initialized among nine: content pairs eight, no fallback, the odd one stays unmatched.
  const MatchResult one = run_match(build_cnn(), with_weights_changed(build_cnn({.prefix = "T_"}), {"T_conv5_w"}));
  EXPECT_FALSE(one.structure_fallback);
  EXPECT_EQ(one.pairs.size(), 8u);
  EXPECT_EQ(one.unmatched_source, (std::vector<std::string>{"conv5"}));
}

TEST(MatchModels, CoreOpsAreConfigurable) {
  const auto s = build_cnn();
  const auto t = build_cnn({.prefix = "T_", .bn = BnForm::kSeparate});
  MatchOptions convs_only;
  convs_only.core_ops = {"Conv"};
  const MatchResult a = run_match(s, t, convs_only);
  EXPECT_EQ(a.source_core, 8u);
  EXPECT_EQ(a.pairs.size(), 8u);
  MatchOptions with_bn;
  with_bn.core_ops = {"Conv", "Gemm", "BatchNormalization"};
  const MatchResult b = run_match(s, t, with_bn);
  EXPECT_EQ(b.source_core, 13u);  // 8 Conv + 1 Gemm + 4 BN
  ASSERT_EQ(b.pairs.size(), 13u);
  for (const auto& p : b.pairs) EXPECT_EQ(p.target_node, "T_" + p.source_node) << p.evidence;
}

TEST(MatchModels, MatMulOfTwoActivationsIsNotACoreLayer) {
  GraphBuilder b;
  const std::string x = b.input("x", DType::kFloat32, {4, 4});
  const std::string y = b.node("MatMul", "self_product", {x, x}, {}, "y");
  const std::string z = b.node("MatMul", "dense", {y, b.initializer("w", random_tensor({4, 4}, 1))}, {}, "z");
  b.output(z, DType::kFloat32, {4, 4});
  const MatchResult r = run_match(b.build(), b.build());
  EXPECT_EQ(r.source_core, 1u);
  ASSERT_EQ(r.pairs.size(), 1u);
  EXPECT_EQ(r.pairs[0].source_node, "dense");
}

TEST(MatchModels, CyclicTargetIsAnErrorNamingIt) {
  GraphBuilder b;
  b.input("x", DType::kFloat32, {1, 4});
  b.node("Add", "a", {"x", "c_out"}, {}, "a_out");
  b.node("Relu", "c", {"a_out"}, {}, "c_out");
  b.output("c_out", DType::kFloat32, {1, 4});
  auto r = match_models(build_cnn(), b.build());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Target"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
}

TEST(MatchModels, MinConfidenceDropsWeakPairs) {
  MatchOptions strict;
  strict.min_confidence = 1.01;  // nothing can reach it
  const MatchResult r = run_match(build_cnn(), build_cnn({.prefix = "T_"}), strict);
  EXPECT_TRUE(r.pairs.empty());
  EXPECT_EQ(r.unmatched_source.size(), 9u);
  EXPECT_EQ(r.unmatched_target.size(), 9u);
}

}  // namespace
}  // namespace fetafix::testing
