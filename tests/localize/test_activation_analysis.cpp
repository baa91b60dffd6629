// Layer activation analysis on a small CNN built in code: a fault planted in conv3 must be
// found there and downstream, never upstream; layouts, seeds, repeats and memory passes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "localize/activation_analysis.h"
#include "model/builder.h"

namespace fetafix::localize {
namespace {

constexpr int64_t kSide = 16;

struct CnnVariant {
  float conv3_weight_scale = 1.0f;  // != 1: the planted fault
  bool conv2_exposed_nhwc = false;  // Target-style: a Transpose to NHWC after conv2 (and back)
  bool gain_input = false;          // a second input g [N,3,16,16], multiplied into x first
};

// x[N,3,16,16] -> 5 x (Conv 3x3 pad 1 [+ Relu]) -> GlobalAveragePool -> Flatten -> [N,4].
onnx::ModelProto small_cnn(const CnnVariant& v) {
  GraphBuilder b("cnn");
  std::string h = b.input("x", DType::kFloat32, {-1, 3, kSide, kSide});
  if (v.gain_input) h = b.node("Mul", "gain", {h, b.input("g", DType::kFloat32, {-1, 3, kSide, kSide})});
  int64_t in_channels = 3;
  for (int i = 1; i <= 5; ++i) {
    const int64_t out_channels = i == 5 ? 4 : 8;
    const std::string id = std::to_string(i);
    Tensor w = random_tensor({out_channels, in_channels, 3, 3}, 100 + i, 0.3f);
    if (i == 3)
      for (float& x : w.span<float>()) x *= v.conv3_weight_scale;
    b.initializer("w" + id, w);
    b.initializer("b" + id, random_tensor({out_channels}, 200 + i, 0.1f));
    h = b.node("Conv", "conv" + id, {h, "w" + id, "b" + id},
               {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})}, "conv" + id + "_out");
    if (i == 2 && v.conv2_exposed_nhwc) {
      h = b.node("Transpose", "conv2_nhwc", {h}, {Attr::ints("perm", {0, 2, 3, 1})});
      h = b.node("Transpose", "conv2_nchw", {h}, {Attr::ints("perm", {0, 3, 1, 2})});
    }
    if (i < 5) h = b.node("Relu", "relu" + id, {h});
    in_channels = out_channels;
  }
  h = b.node("GlobalAveragePool", "gap", {h});
  h = b.node("Flatten", "flatten", {h}, {}, "logits");
  b.output(h, DType::kFloat32, {-1, 4});
  return b.build();
}

std::vector<match::NodeMatch> identity_pairs(const std::string& conv2_target = "conv2") {
  std::vector<match::NodeMatch> pairs;
  for (int i = 1; i <= 5; ++i) {
    match::NodeMatch m;
    m.source_node = "conv" + std::to_string(i);
    m.target_node = i == 2 ? conv2_target : m.source_node;
    m.confidence = 1;
    pairs.push_back(m);
  }
  return pairs;
}

// Every fourth image is "dissimilar" and brighter: the planted fault (a scaled conv3) moves
// its activations further than those of the dim similar images.
struct Images {
  Tensor inputs;
  std::vector<bool> agree;
};

Images make_images(int count) {
  Images im;
  im.inputs = Tensor(DType::kFloat32, {count, 3, kSide, kSide});
  const int64_t per_image = 3 * kSide * kSide;
  for (int i = 0; i < count; ++i) {
    const bool dissimilar = i % 4 == 3;
    Tensor one = uniform_tensor({per_image}, 1000 + i, dissimilar ? 1.0f : 0.0f, dissimilar ? 2.0f : 1.0f);
    std::copy(one.span<float>().begin(), one.span<float>().end(), im.inputs.data<float>() + i * per_image);
    im.agree.push_back(!dissimilar);
  }
  return im;
}

ActivationAnalysisOptions test_options() {
  ActivationAnalysisOptions o;
  o.max_similar = 20;
  o.max_dissimilar = 20;
  o.threads = 2;
  return o;
}

const LayerScore& layer(const ActivationAnalysis& a, const std::string& source_node) {
  for (const auto& s : a.ranked)
    if (s.source_node == source_node) return s;
  throw std::runtime_error("no layer " + source_node);
}

ActivationAnalysis analyze(const onnx::ModelProto& s, const onnx::ModelProto& t, const Images& im,
                           const ActivationAnalysisOptions& o,
                           const std::vector<match::NodeMatch>& pairs = identity_pairs()) {
  auto r = analyze_layer_activations(s, t, pairs, im.inputs, im.inputs, im.agree, o);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : ActivationAnalysis{};
}

nlohmann::json without_passes(const ActivationAnalysis& a) {
  auto j = to_json(a);
  j.erase("passes");
  return j;
}

// --- the element rule ------------------------------------------------------------------------

bool decide(std::vector<float> similar, std::vector<float> dissimilar, double alpha = 0.05) {
  ElementRule::sort(similar);
  ElementRule::sort(dissimilar);
  return ElementRule(alpha).problematic(similar, dissimilar);
}

TEST(ElementRule, NoOrZeroSimilarDifferencesMeansAnyDissimilarDifferenceCounts) {
  EXPECT_FALSE(decide({}, {0, 0, 0}));
  EXPECT_TRUE(decide({}, {0, 0, 1e-7f}));
  EXPECT_FALSE(decide({0, 0, 0}, {0, -0.0f}));
  EXPECT_TRUE(decide({0, 0, 0}, {0, 0, -1e-30f}));
  EXPECT_FALSE(decide({0, 0}, {}));  // nothing dissimilar to test
}

TEST(ElementRule, EqualSimilarDifferencesAreTheReference) {
  EXPECT_FALSE(decide({0.5f, 0.5f, 0.5f}, {0.5f, 0.5f}));
  EXPECT_TRUE(decide({0.5f, 0.5f, 0.5f}, {0.5f, 0.25f}));
  EXPECT_TRUE(decide({0.5f}, {0.0f}));
}

TEST(ElementRule, KruskalWallisDecidesOtherwise) {
  std::vector<float> low, high, mixed;
  for (int i = 0; i < 20; ++i) {
    low.push_back(static_cast<float>(i));
    high.push_back(static_cast<float>(100 + i));
    mixed.push_back(static_cast<float>(i) + 0.5f);
  }
  EXPECT_TRUE(decide(low, high));
  EXPECT_FALSE(decide(low, mixed));
  EXPECT_FALSE(decide(low, low));
  // Two close samples: significant at alpha = 0.5 but not at 0.05 (H = 1.47, p = 0.225).
  std::vector<float> a{1, 2, 3, 4, 5, 6}, b{3, 4, 5, 6, 7, 8};
  EXPECT_FALSE(decide(a, b, 0.05));
  EXPECT_TRUE(decide(a, b, 0.5));
}

TEST(ElementRule, NaNDifferences) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(decide({0.1f, 0.2f, 0.3f}, {0.2f, nan}));
  EXPECT_TRUE(decide({0, 0}, {nan}));
  EXPECT_FALSE(decide({0.1f, nan}, {5, 6, 7}));  // no expected distribution to test against
  std::vector<float> v{3, nan, 1, 2};
  ElementRule::sort(v);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[2], 3);
  EXPECT_TRUE(std::isnan(v[3]));
}

// --- layout alignment ------------------------------------------------------------------------

TEST(AlignTargetLayout, PrefersIdentityThenChannelsLastAndReportsFailure) {
  using V = std::vector<int64_t>;
  EXPECT_EQ(*align_target_layout(V{1, 8, 8, 8}, V{1, 8, 8, 8}), (V{0, 1, 2}));
  EXPECT_EQ(*align_target_layout(V{1, 4, 8, 8}, V{1, 8, 8, 4}), (V{2, 0, 1}));  // NHWC Target
  EXPECT_EQ(*align_target_layout(V{1, 8, 8, 4}, V{1, 4, 8, 8}), (V{1, 2, 0}));  // NCHW Target of NHWC Source
  EXPECT_EQ(*align_target_layout(V{1, 4, 6, 8}, V{1, 4, 8, 6}), (V{0, 2, 1}));  // any other transpose
  EXPECT_EQ(*align_target_layout(V{1, 1000}, V{1, 1000, 1, 1}), (V{0}));          // size-1 dims ignored
  EXPECT_FALSE(align_target_layout(V{1, 4, 8, 8}, V{1, 8, 8, 5}).has_value());
  EXPECT_FALSE(align_target_layout(V{1, 4, 8}, V{1, 32}).has_value());
}

// --- the analysis ----------------------------------------------------------------------------

TEST(ActivationAnalysis, PlantedFaultInConv3IsFoundThereAndDownstreamOnly) {
  const auto source = small_cnn({});
  const auto target = small_cnn({.conv3_weight_scale = 1.5f});
  const Images im = make_images(80);
  const auto a = analyze(source, target, im, test_options());
  ASSERT_EQ(a.ranked.size(), 5u);
  EXPECT_EQ(a.similar_available, 60u);
  EXPECT_EQ(a.dissimilar_used, 20u);
  EXPECT_EQ(a.similar_used, 20u);
  for (const std::string upstream : {"conv1", "conv2"}) {
    EXPECT_EQ(layer(a, upstream).problematic_fraction, 0.0) << upstream;
    EXPECT_EQ(layer(a, upstream).mean_abs_diff_dissimilar, 0.0) << upstream;
  }
  EXPECT_GT(layer(a, "conv3").problematic_fraction, 0.5);
  for (const std::string faulty : {"conv3", "conv4", "conv5"}) {
    EXPECT_GT(layer(a, faulty).problematic_fraction, 0.2) << faulty;
    EXPECT_LT(layer(a, faulty).rank, layer(a, "conv1").rank) << faulty;
    EXPECT_LT(layer(a, faulty).rank, layer(a, "conv2").rank) << faulty;
    EXPECT_GT(layer(a, faulty).mean_abs_diff_dissimilar, layer(a, faulty).mean_abs_diff_similar) << faulty;
  }
  for (size_t i = 0; i < a.ranked.size(); ++i) EXPECT_EQ(a.ranked[i].rank, static_cast<int>(i));
  EXPECT_EQ(layer(a, "conv3").elements, 8 * kSide * kSide);
  EXPECT_EQ(layer(a, "conv3").per_repeat_fraction.size(), 3u);
}

TEST(ActivationAnalysis, IdenticalModelsHaveNoProblematicElements) {
  const auto model = small_cnn({});
  const auto a = analyze(model, model, make_images(80), test_options());
  ASSERT_EQ(a.ranked.size(), 5u);
  for (const auto& s : a.ranked) {
    EXPECT_EQ(s.problematic_fraction, 0.0) << s.source_node;
    EXPECT_EQ(s.mean_abs_diff_similar, 0.0) << s.source_node;
    EXPECT_EQ(s.rank, std::stoi(s.source_node.substr(4)) - 1) << "ties keep pair order";
  }
}

TEST(ActivationAnalysis, NhwcTargetActivationIsAlignedByTranspose) {
  const auto source = small_cnn({});
  const Images im = make_images(80);
  const auto nchw = analyze(source, small_cnn({.conv3_weight_scale = 1.5f}), im, test_options());
  const auto nhwc = analyze(source, small_cnn({.conv3_weight_scale = 1.5f, .conv2_exposed_nhwc = true}), im,
                            test_options(), identity_pairs("conv2_nhwc"));
  const auto& conv2 = layer(nhwc, "conv2");
  EXPECT_EQ(conv2.target_shape, (std::vector<int64_t>{1, kSide, kSide, 8}));
  EXPECT_EQ(conv2.target_permutation, (std::vector<int64_t>{2, 0, 1}));
  EXPECT_TRUE(conv2.skipped_reason.empty());
  EXPECT_EQ(conv2.mean_abs_diff_dissimilar, 0.0);  // element by element the same values
  for (const std::string name : {"conv1", "conv2", "conv3", "conv4", "conv5"}) {
    EXPECT_EQ(layer(nhwc, name).per_repeat_problematic, layer(nchw, name).per_repeat_problematic) << name;
    EXPECT_EQ(layer(nhwc, name).rank, layer(nchw, name).rank) << name;
  }
  // A pair whose activations cannot be aligned is skipped with a reason and ranked last.
  auto pairs = identity_pairs();
  pairs[3].target_node = "conv5";  // [1,8,16,16] vs [1,4,16,16]
  const auto skipped = analyze(source, small_cnn({.conv3_weight_scale = 1.5f}), im, test_options(), pairs);
  EXPECT_EQ(skipped.ranked.back().source_node, "conv4");
  EXPECT_EQ(skipped.ranked.back().rank, -1);
  EXPECT_NE(skipped.ranked.back().skipped_reason.find("no transpose aligns"), std::string::npos)
      << skipped.ranked.back().skipped_reason;
}

TEST(ActivationAnalysis, SameSeedSameResultAndRepeatsDrawDifferentSimilarSamples) {
  const auto source = small_cnn({});
  const auto target = small_cnn({.conv3_weight_scale = 1.5f});
  const Images im = make_images(80);
  const auto a = analyze(source, target, im, test_options());
  const auto b = analyze(source, target, im, test_options());
  EXPECT_EQ(to_json(a).dump(), to_json(b).dump());
  // 60 similar images, 20 per repeat: three disjoint samples.
  ASSERT_EQ(a.similar_samples.size(), 3u);
  std::set<size_t> all;
  for (const auto& s : a.similar_samples) {
    EXPECT_EQ(s.size(), 20u);
    for (size_t i : s) EXPECT_TRUE(im.agree[i]);
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), 60u);
  auto other = test_options();
  other.seed = 2;
  other.max_dissimilar = 10;  // 20 available: a seeded choice
  const auto c = analyze(source, target, im, other);
  EXPECT_NE(c.similar_samples, a.similar_samples);
  EXPECT_EQ(c.dissimilar_sample.size(), 10u);
  // Fewer similar images than repeats need: samples overlap but still differ.
  auto few = test_options();
  few.max_similar = 30;  // 60 available, 3 x 30 needed
  const auto d = analyze(source, target, im, few);
  ASSERT_EQ(d.similar_samples.size(), 3u);
  EXPECT_NE(d.similar_samples[0], d.similar_samples[1]);
  EXPECT_NE(d.similar_samples[1], d.similar_samples[2]);
  for (const auto& s : d.similar_samples) EXPECT_EQ(std::set<size_t>(s.begin(), s.end()).size(), 30u);
}

// The conv3 fault analysed with every layer in one pass: what any split into passes must give.
struct OnePass {
  onnx::ModelProto source = small_cnn({}), target = small_cnn({.conv3_weight_scale = 1.5f});
  Images im = make_images(80);
  ActivationAnalysis single;
  OnePass() {
    auto one = test_options();
    one.layers_per_pass = 5;
    single = analyze(source, target, im, one);
  }
};

TEST(ActivationAnalysis, TightMemoryBudgetSplitsPassesWithoutChangingResults) {
  const OnePass f;
  const auto& [source, target, im, single] = f;
  EXPECT_EQ(single.passes, 1u);
  auto tight = test_options();
  tight.memory_budget_bytes = 400 * 1024;  // 80 images x 2048 elements x (4 + 128) B = 1 MiB per layer
  const auto sliced = analyze(source, target, im, tight);
  EXPECT_GE(sliced.passes, 10u);
  EXPECT_EQ(without_passes(single).dump(), without_passes(sliced).dump());
}

// One layer per pass: each pass starts from the values the previous one kept, so the passes
// together run each model about once; without room to keep them, every pass starts at the input.
TEST(ActivationAnalysis, PassesContinueFromKeptValuesWithoutChangingResults) {
  const OnePass f;
  const auto& [source, target, im, single] = f;
  auto chained = test_options();
  chained.layers_per_pass = 1;
  const auto a = analyze(source, target, im, chained);
  EXPECT_EQ(a.passes, 5u);
  EXPECT_EQ(without_passes(single).dump(), without_passes(a).dump());
  auto no_room = chained;
  no_room.memory_budget_bytes = 64 * 1024;  // too small to keep an 80-image activation
  const auto b = analyze(source, target, im, no_room);
  EXPECT_EQ(without_passes(single).dump(), without_passes(b).dump());
  // Up to conv5 each model has 9 nodes (5 Conv, 4 Relu): the chained passes run each once.
  EXPECT_EQ(single.nodes_run, 18u);
  EXPECT_EQ(a.nodes_run, 18u);
  EXPECT_EQ(b.nodes_run, 2u * (1 + 3 + 5 + 7 + 9));  // every pass from the input
}

TEST(ActivationAnalysis, AggregationsOrderByTheirScore) {
  const auto source = small_cnn({});
  const auto target = small_cnn({.conv3_weight_scale = 1.5f});
  const Images im = make_images(80);
  for (auto agg : {ActivationAnalysisOptions::Aggregation::kMeanFraction,
                   ActivationAnalysisOptions::Aggregation::kMaxFraction}) {
    auto o = test_options();
    o.aggregation = agg;
    const auto a = analyze(source, target, im, o);
    for (size_t i = 1; i < a.ranked.size(); ++i)
      EXPECT_GE(a.ranked[i - 1].score, a.ranked[i].score) << aggregation_name(agg);
  }
  const auto borda = analyze(source, target, im, test_options());
  for (size_t i = 1; i < borda.ranked.size(); ++i) EXPECT_LE(borda.ranked[i - 1].score, borda.ranked[i].score);
}

TEST(ActivationAnalysis, TooFewImagesGiveAnEmptyRankingWithAReason) {
  const auto model = small_cnn({});
  Images im = make_images(8);
  std::vector<bool> all_agree(8, true);
  auto r = analyze_layer_activations(model, model, identity_pairs(), im.inputs, im.inputs, all_agree, test_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->ranked.empty());
  EXPECT_NE(r->skipped_reason.find("no dissimilar"), std::string::npos);
  std::vector<bool> one_similar(8, false);
  one_similar[0] = true;
  r = analyze_layer_activations(model, model, identity_pairs(), im.inputs, im.inputs, one_similar, test_options());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ranked.empty());
  EXPECT_NE(r->skipped_reason.find("1 similar image"), std::string::npos) << r->skipped_reason;
}

TEST(ActivationAnalysis, BadArgumentsAreErrorsThatNameTheProblem) {
  const auto model = small_cnn({});
  const Images im = make_images(8);
  auto pairs = identity_pairs();
  pairs[1].target_node = "conv_missing";
  auto r = analyze_layer_activations(model, model, pairs, im.inputs, im.inputs, im.agree, test_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("conv_missing"), std::string::npos) << r.error().message;
  std::vector<bool> short_agree(5, true);
  r = analyze_layer_activations(model, model, identity_pairs(), im.inputs, im.inputs, short_agree, test_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("agreement flags"), std::string::npos) << r.error().message;
  auto o = test_options();
  o.alpha = 0;
  r = analyze_layer_activations(model, model, identity_pairs(), im.inputs, im.inputs, im.agree, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("alpha"), std::string::npos);
}

// Several inputs (any sample data, issue 11): each is fed row by row from its own tensor. A
// second input of ones changes nothing, so the ranking is the one-input ranking.
TEST(ActivationAnalysis, SeveralInputsAreFedByName) {
  const Images im = make_images(24);
  const auto one = analyze(small_cnn({}), small_cnn({.conv3_weight_scale = 3.0f}), im, test_options());
  const CnnVariant two_s{.gain_input = true}, two_t{.conv3_weight_scale = 3.0f, .gain_input = true};
  Tensor ones(DType::kFloat32, im.inputs.shape);
  std::fill(ones.span<float>().begin(), ones.span<float>().end(), 1.0f);
  const std::vector<Tensor> inputs{im.inputs, ones};
  auto two = analyze_layer_activations(small_cnn(two_s), small_cnn(two_t), identity_pairs(), inputs, inputs, im.agree,
                                       test_options());
  ASSERT_TRUE(two.ok()) << two.error().message;
  ASSERT_FALSE(one.ranked.empty());
  ASSERT_EQ(two->ranked.size(), one.ranked.size());
  for (size_t i = 0; i < one.ranked.size(); ++i) {
    EXPECT_EQ(two->ranked[i].source_node, one.ranked[i].source_node);
    EXPECT_EQ(two->ranked[i].problematic_fraction, one.ranked[i].problematic_fraction);
  }
  auto missing = analyze_layer_activations(small_cnn(two_s), small_cnn(two_t), identity_pairs(), {im.inputs},
                                           {im.inputs}, im.agree, test_options());
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace fetafix::localize
