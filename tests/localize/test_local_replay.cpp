// Layer-local replay on the matching tests' CNN (tests/match/cnn_fixture.h): a planted fault is
// ranked first where the activation analysis ranks downstream layers above it; converter
// rewrites that compute the same function (folded BN, HWIO weights, Pad nodes, NHWC values,
// QDQ) replay within tolerance; shape changes and unreplayable regions are reported, not fatal.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "localize/activation_analysis.h"
#include "localize/local_replay.h"
#include "match/cnn_fixture.h"
#include "match/match.h"
#include "model/graph.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

using testing::build_cnn;
using testing::cnn_options;
using testing::CnnOptions;

// [count, 3, 32, 32] inputs: each image a random pattern on its own brightness, so that a
// faulty layer moves some top-1 labels and not others.
Tensor cnn_images(int count, uint64_t seed = 7) {
  Tensor t(DType::kFloat32, {count, 3, 32, 32});
  Rng rng(seed);
  float* out = t.data<float>();
  for (int i = 0; i < count; ++i) {
    // Per channel: an offset, a gradient direction and some noise.
    for (int c = 0; c < 3; ++c) {
      const float offset = rng.uniform(-2.0f, 2.0f), gx = rng.uniform(-0.2f, 0.2f), gy = rng.uniform(-0.2f, 0.2f);
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          *out++ = offset + gx * static_cast<float>(x - 16) + gy * static_cast<float>(y - 16) + 0.5f * rng.normal();
    }
  }
  return t;
}

std::vector<int64_t> top1(const onnx::ModelProto& model, const Tensor& images) {
  runtime::SessionOptions so;
  so.threads = 2;
  auto session = runtime::Session::create(model, so, "model");
  EXPECT_TRUE(session.ok()) << session.error().message;
  auto out = (*session)->run({images});
  EXPECT_TRUE(out.ok()) << out.error().message;
  const auto logits = (*out)[0].to_float();
  const int64_t n = images.shape[0], classes = (*out)[0].numel() / n;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i)
    labels.push_back(std::max_element(logits.begin() + i * classes, logits.begin() + (i + 1) * classes) -
                     (logits.begin() + i * classes));
  return labels;
}

std::vector<match::NodeMatch> matched(const onnx::ModelProto& s, const onnx::ModelProto& t, size_t expected) {
  auto m = match::match_models(s, t);
  EXPECT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->pairs.size(), expected);
  return m->pairs;
}

ReplayOptions replay_options() {
  ReplayOptions o;
  o.threads = 2;
  return o;
}

LocalReplay replay(const onnx::ModelProto& s, const onnx::ModelProto& t, const std::vector<match::NodeMatch>& pairs,
                   const Tensor& images) {
  auto r = replay_matched_layers(s, t, pairs, images, images, replay_options());
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : LocalReplay{};
}

const LayerReplay& layer(const LocalReplay& r, const std::string& source_node) {
  for (const auto& l : r.ranked)
    if (l.source_node == source_node) return l;
  throw std::runtime_error("no layer " + source_node);
}

int kw_rank(const ActivationAnalysis& a, const std::string& source_node) {
  for (const auto& s : a.ranked)
    if (s.source_node == source_node) return s.rank;
  return -1;
}

TEST(LocalReplay, IdenticalModelsReplayExactly) {
  const auto model = build_cnn();
  const auto r = replay(model, build_cnn({.prefix = "t_"}), matched(model, build_cnn({.prefix = "t_"}), 9),
                        cnn_images(6));
  ASSERT_EQ(r.ranked.size(), 9u);
  EXPECT_EQ(r.images, 6u);
  EXPECT_EQ(r.sessions, 3u);  // Source capture, Target probe, all Target regions in one
  for (const auto& l : r.ranked) {
    EXPECT_EQ(l.error.status, ReplayStatus::kMeasured) << l.source_node << ": " << l.error.reason;
    EXPECT_EQ(l.error.relative_l2, 0.0) << l.source_node;
    EXPECT_FALSE(l.error.exceeds_tolerance) << l.source_node;
    EXPECT_GT(l.error.max_abs_source, 0.0) << l.source_node;
    EXPECT_EQ(l.error.image_max_abs_error.size(), 6u);
  }
  // Boundaries run to the end of each layer's element-wise chain: BN and Relu included.
  EXPECT_EQ(layer(r, "conv1").source_value, "conv1_relu");
  EXPECT_EQ(layer(r, "conv3").target_value, "t_conv3_relu");
  EXPECT_EQ(layer(r, "fc").source_value, "logits");
  // conv4's region starts at the residual Add, fed conv3's and conv1's boundaries.
  EXPECT_EQ(layer(r, "conv4").error.target_nodes, (std::vector<std::string>{"t_residual", "t_conv4", "t_conv4_relu"}));
  EXPECT_EQ(layer(r, "conv4").error.entries_read, (std::vector<std::string>{"t_conv1_relu", "t_conv3_relu"}));
  EXPECT_EQ(layer(r, "conv1").error.graph_inputs_read, (std::vector<std::string>{"t_input"}));
}

// The paper's ranking cannot tell cause from consequence: a fault in conv6 moves every layer
// after it, and the classifier collects more problematic elements than conv6 itself. Local
// replay feeds every layer the Source's own inputs, so only conv6's region adds error.
TEST(LocalReplay, PlantedWeightFaultRanksFirstWhereActivationAnalysisRanksDownstreamLayersAbove) {
  const auto source = build_cnn();
  const auto target = build_cnn({.prefix = "t_", .scaled_layer = 5});  // conv6's weights x3
  const auto pairs = matched(source, target, 9);
  const Tensor images = cnn_images(400);
  const auto s_top = top1(source, images), t_top = top1(target, images);
  std::vector<bool> agree;
  for (size_t i = 0; i < s_top.size(); ++i) agree.push_back(s_top[i] == t_top[i]);
  const auto dissimilar = std::count(agree.begin(), agree.end(), false);
  ASSERT_GE(dissimilar, 10);
  ASSERT_GE(static_cast<long>(agree.size()) - dissimilar, 10);

  ActivationAnalysisOptions ao;
  ao.max_similar = 40;
  ao.max_dissimilar = 40;
  ao.repeats = 1;
  ao.threads = 2;
  auto kw = analyze_layer_activations(source, target, pairs, images, images, agree, ao);
  ASSERT_TRUE(kw.ok()) << kw.error().message;
  // The paper's ranking: a layer downstream of conv6 first, the upstream layers last.
  ASSERT_GT(kw_rank(*kw, "conv6"), 0);
  EXPECT_TRUE(kw->ranked[0].source_node == "fc" || kw->ranked[0].source_node == "conv7" ||
              kw->ranked[0].source_node == "conv8")
      << kw->ranked[0].source_node;
  for (const std::string upstream : {"conv1", "conv2", "conv3", "conv4", "conv5"})
    EXPECT_GT(kw_rank(*kw, upstream), kw_rank(*kw, "conv6")) << upstream;

  const auto r = replay(source, target, pairs, images);
  ASSERT_FALSE(r.ranked.empty());
  EXPECT_EQ(r.ranked[0].source_node, "conv6");
  EXPECT_TRUE(r.ranked[0].error.exceeds_tolerance);
  EXPECT_GT(r.ranked[0].error.relative_l2, 0.5);
  for (size_t i = 1; i < r.ranked.size(); ++i) {
    EXPECT_FALSE(r.ranked[i].error.exceeds_tolerance) << r.ranked[i].source_node;
    EXPECT_EQ(r.ranked[i].error.relative_l2, 0.0) << r.ranked[i].source_node;
  }
}

// A hyperparameter fault that keeps the shape: conv3's symmetric pads moved to one side.
TEST(LocalReplay, ShiftedPadsRankFirst) {
  const auto source = build_cnn();
  auto target = build_cnn({.prefix = "t_"});
  for (auto& node : *target.mutable_graph()->mutable_node())
    if (node.name() == "t_conv3")
      for (auto& a : *node.mutable_attribute())
        if (a.name() == "pads") {
          a.clear_ints();
          for (int64_t p : {0, 0, 2, 2}) a.add_ints(p);
        }
  const auto r = replay(source, target, matched(source, target, 9), cnn_images(4));
  EXPECT_EQ(r.ranked[0].source_node, "conv3");
  EXPECT_TRUE(r.ranked[0].error.exceeds_tolerance);
  EXPECT_FALSE(r.ranked[1].error.exceeds_tolerance) << r.ranked[1].source_node;
}

// Converter rewrites that compute the same function: a folded BN, HWIO weights behind
// Transposes, an NHWC round trip, Cast/Identity/explicit Pad nodes, int8 weights behind
// DequantizeLinear on both sides.
TEST(LocalReplay, EquivalentRewritesReplayWithinTolerance) {
  for (const auto& [name, s_options, t_options] : std::vector<std::tuple<std::string, CnnOptions, CnnOptions>>{
           {"folded BN", {}, {.prefix = "t_", .bn = testing::BnForm::kFoldedIntoConv}},
           {"BN as Mul+Add", {}, {.prefix = "t_", .bn = testing::BnForm::kMulAdd}},
           {"HWIO + no-ops", {}, {.prefix = "t_", .hwio_weights = true, .insert_noops = true}},
           {"QDQ both", {.qdq_weights = true}, {.prefix = "t_", .insert_noops = true, .qdq_weights = true}},
           {"folded in Source", {.bn = testing::BnForm::kFoldedIntoConv}, {.prefix = "t_"}}}) {
    const auto source = build_cnn(s_options), target = build_cnn(t_options);
    const auto r = replay(source, target, matched(source, target, 9), cnn_images(4));
    ASSERT_EQ(r.ranked.size(), 9u) << name;
    for (const auto& l : r.ranked) {
      EXPECT_EQ(l.error.status, ReplayStatus::kMeasured) << name << " " << l.source_node << ": " << l.error.reason;
      EXPECT_FALSE(l.error.exceeds_tolerance) << name << " " << l.source_node << " " << l.error.relative_l2;
    }
  }
}

TEST(LocalReplay, ChangedOutputShapeRanksFirstAndLayersAfterItAreUnavailable) {
  const auto source = build_cnn();
  const auto target = build_cnn({.prefix = "t_", .drop_dw_pads = true});  // conv6 loses its pads
  const auto r = replay(source, target, matched(source, target, 9), cnn_images(3));
  EXPECT_EQ(r.ranked[0].source_node, "conv6");
  EXPECT_EQ(r.ranked[0].error.status, ReplayStatus::kOutputShapeDiffers);
  EXPECT_EQ(r.ranked[0].rank, 0);
  EXPECT_NE(r.ranked[0].error.reason.find("cannot be aligned"), std::string::npos) << r.ranked[0].error.reason;
  for (const std::string after : {"conv7", "conv8"}) {
    EXPECT_EQ(layer(r, after).error.status, ReplayStatus::kInputUnavailable) << after;
    EXPECT_EQ(layer(r, after).rank, -1);
    EXPECT_NE(layer(r, after).error.reason.find("t_conv6_relu"), std::string::npos) << layer(r, after).error.reason;
  }
  EXPECT_EQ(layer(r, "conv5").error.relative_l2, 0.0);
  const auto j = to_json(r);
  EXPECT_EQ(j["layers"][0]["status"], "output_shape_differs");
  EXPECT_EQ(j["layers"].back()["rank"], -1);
}

// --- regions named by the caller (what an equivalence decision replays) -----------------------

// x[N,8,16,16] -> Conv 3x3 (pads 1 or a Pad node before a Conv without pads) -> Relu.
onnx::ModelProto padded_conv(bool pad_node, std::vector<int64_t> pad_amounts = {0, 0, 1, 1, 0, 0, 1, 1},
                             bool nhwc_entry = false) {
  GraphBuilder b("padded");
  std::string x = b.input("x", DType::kFloat32, {-1, 8, 16, 16});
  x = b.node("Relu", "pre", {x}, {}, "pre_out");
  if (nhwc_entry) {
    x = b.node("Transpose", "to_nhwc", {x}, {Attr::ints("perm", {0, 2, 3, 1})}, "entry_nhwc");
    x = b.node("Transpose", "to_nchw", {x}, {Attr::ints("perm", {0, 3, 1, 2})}, "entry_nchw");
  }
  b.initializer("w", random_tensor({8, 8, 3, 3}, 3, 0.3f));
  std::vector<Attr> attrs{Attr::ints("kernel_shape", {3, 3})};
  if (pad_node) {
    b.initializer("pads", int64_tensor({8}, pad_amounts));
    x = b.node("Pad", "pad", {x, "pads"}, {}, "padded");
  } else {
    attrs.push_back(Attr::ints("pads", {1, 1, 1, 1}));
  }
  x = b.node("Conv", "conv", {x, "w"}, attrs, "conv_out");
  x = b.node("Relu", "relu", {x}, {}, "y");
  b.output(x, DType::kFloat32, {-1, 8, 16, 16});
  return b.build();
}

Tensor feature_maps(int count) { return random_tensor({count, 8, 16, 16}, 11); }

TEST(ReplayRegions, PadNodePlusConvIsJudgedOnTheRegionAlone) {
  const auto source = padded_conv(false);
  const Tensor x = feature_maps(3);
  ReplayRegion same{"pad+conv", "y", "y", {{"pre_out", "pre_out"}}};
  auto r = replay_regions(source, padded_conv(true), {same}, x, x, replay_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->regions.size(), 1u);
  const auto& e = r->regions[0];
  EXPECT_EQ(e.id, "pad+conv");
  EXPECT_EQ(e.status, ReplayStatus::kMeasured) << e.reason;
  EXPECT_EQ(e.target_nodes, (std::vector<std::string>{"pad", "conv", "relu"}));
  EXPECT_LE(e.relative_l2, 1e-6);
  EXPECT_FALSE(e.exceeds_tolerance);
  EXPECT_EQ(e.image_max_abs_source.size(), 3u);
  // Padding on one side only shifts the output: same shape, a large error.
  auto shifted = replay_regions(source, padded_conv(true, {0, 0, 2, 2, 0, 0, 0, 0}), {same}, x, x, replay_options());
  ASSERT_TRUE(shifted.ok()) << shifted.error().message;
  EXPECT_EQ(shifted->regions[0].status, ReplayStatus::kMeasured);
  EXPECT_TRUE(shifted->regions[0].exceeds_tolerance);
  EXPECT_GT(shifted->regions[0].relative_l2, 0.1);
}

TEST(ReplayRegions, SourceValuesAreFedInTheTargetLayoutAndDtype) {
  const auto source = padded_conv(false);
  const Tensor x = feature_maps(2);
  // The Target's entry is an NHWC value: the Source's NCHW activation is transposed into it.
  ReplayRegion nhwc{"nhwc", "y", "y", {{"entry_nhwc", "pre_out"}}};
  auto r = replay_regions(source, padded_conv(true, {0, 0, 1, 1, 0, 0, 1, 1}, true), {nhwc}, x, x, replay_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->regions[0].status, ReplayStatus::kMeasured) << r->regions[0].reason;
  EXPECT_LE(r->regions[0].relative_l2, 1e-6);
  EXPECT_EQ(r->regions[0].target_nodes, (std::vector<std::string>{"to_nchw", "pad", "conv", "relu"}));

  // A float16 entry: the Source's float32 values are rounded to half precision on the way in.
  auto half_target = padded_conv(false);
  auto* g = half_target.mutable_graph();
  for (auto& node : *g->mutable_node())
    if (node.name() == "conv") node.set_input(0, "pre_back");
  auto* to_half = g->add_node();
  to_half->set_op_type("Cast"), to_half->set_name("to_half"), to_half->add_input("pre_out"), to_half->add_output("pre_half");
  *to_half->add_attribute() = Attr::i("to", 10).proto;
  auto* back = g->add_node();
  back->set_op_type("Cast"), back->set_name("to_float"), back->add_input("pre_half"), back->add_output("pre_back");
  *back->add_attribute() = Attr::i("to", 1).proto;
  // Keep the node list topological: move the two Casts before the Conv.
  onnx::GraphProto ordered = *g;
  ordered.clear_node();
  for (const std::string name : {"pre", "to_half", "to_float", "conv", "relu"})
    for (const auto& node : g->node())
      if (node.name() == name) *ordered.add_node() = node;
  *g = ordered;
  ReplayRegion half{"half", "y", "y", {{"pre_half", "pre_out"}}};
  r = replay_regions(source, half_target, {half}, x, x, replay_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->regions[0].status, ReplayStatus::kMeasured) << r->regions[0].reason;
  EXPECT_GT(r->regions[0].relative_l2, 0.0);
  EXPECT_LT(r->regions[0].relative_l2, 1e-3);
}

TEST(ReplayRegions, UnknownNamesAndBadInputsAreReportedPerRegionOrAsErrors) {
  const auto model = padded_conv(false);
  const Tensor x = feature_maps(2);
  ReplayRegion good{"good", "y", "y", {{"pre_out", "pre_out"}}};
  ReplayRegion bad_output{"bad", "y", "nope", {}};
  ReplayRegion bad_entry{"entry", "y", "y", {{"pre_out", "nothing"}}};
  auto r = replay_regions(model, model, {good, bad_output, bad_entry}, x, x, replay_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->regions[0].status, ReplayStatus::kMeasured);
  EXPECT_EQ(r->regions[0].relative_l2, 0.0);
  EXPECT_EQ(r->regions[1].status, ReplayStatus::kFailed);
  EXPECT_NE(r->regions[1].reason.find("nope"), std::string::npos) << r->regions[1].reason;
  EXPECT_EQ(r->regions[2].status, ReplayStatus::kInputUnavailable);
  EXPECT_NE(r->regions[2].reason.find("nothing"), std::string::npos) << r->regions[2].reason;
  EXPECT_TRUE(std::isnan(r->regions[2].severity()));

  const Tensor fewer = feature_maps(1);
  auto mismatch = replay_regions(model, model, {good}, x, fewer, replay_options());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("images"), std::string::npos) << mismatch.error().message;
}

// Batches shrink under a small memory budget; the result does not change.
TEST(ReplayRegions, MemoryBudgetChangesBatchesNotResults) {
  const auto source = build_cnn();
  const auto target = build_cnn({.prefix = "t_", .scaled_layer = 4});
  const auto pairs = matched(source, target, 9);
  const Tensor images = cnn_images(8);
  auto small = replay_options();
  small.memory_budget_bytes = 1;  // one image per batch
  auto a = replay_matched_layers(source, target, pairs, images, images, replay_options());
  auto b = replay_matched_layers(source, target, pairs, images, images, small);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->batches, 1u);
  EXPECT_EQ(b->batches, 8u);
  auto ja = to_json(*a), jb = to_json(*b);
  ja.erase("batches");
  jb.erase("batches");
  EXPECT_EQ(ja.dump(), jb.dump());
  EXPECT_EQ(a->ranked[0].source_node, "conv5");
}

}  // namespace
}  // namespace fetafix::localize
