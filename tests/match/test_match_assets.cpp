// Matching on the real converter outputs in ../shared/assets (skipped when absent). Each Target
// is derived from the Source in code, so the true pairing is known and must be exact.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "match/match.h"
#include "match/match_helpers.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"
#include "support/assets.h"

namespace fetafix::testing {
namespace {

constexpr const char* kMobileNet = "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx";
constexpr const char* kPpocr = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

onnx::ModelProto load(const std::filesystem::path& path) {
  auto m = model::load_model(path);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? m->proto : onnx::ModelProto{};
}

// Shuffles then renames everything; returns the Target and Source-name -> Target-name.
std::pair<onnx::ModelProto, std::map<std::string, std::string>> disguise(const onnx::ModelProto& model, uint64_t seed) {
  const onnx::ModelProto shuffled = shuffled_topologically(model, seed);
  EXPECT_EQ(shuffled.graph().node_size(), model.graph().node_size());
  std::map<std::string, std::string> truth;
  for (int k = 0; k < shuffled.graph().node_size(); ++k) truth[shuffled.graph().node(k).name()] = "n" + std::to_string(k);
  return {renamed_everything(shuffled), truth};
}

struct Timed {
  match::MatchResult result;
  double seconds = 0;
};

Timed timed_match(const onnx::ModelProto& s, const onnx::ModelProto& t) {
  const auto start = std::chrono::steady_clock::now();
  auto r = match::match_models(s, t);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return {r.ok() ? *r : match::MatchResult{}, seconds};
}

// Counts pairs that agree with the truth; prints the match rate a report can quote.
size_t count_exact(const char* label, const Timed& t, const std::map<std::string, std::string>& truth) {
  size_t exact = 0;
  for (const auto& p : t.result.pairs) {
    auto it = truth.find(p.source_node);
    if (it != truth.end() && it->second == p.target_node) ++exact;
    else ADD_FAILURE() << "wrong pair " << p.source_node << " -> " << p.target_node << ": " << p.evidence;
  }
  std::printf("[match] %s: %zu/%zu Source core nodes matched exactly (%zu Target core), %.3f s\n", label, exact,
              t.result.source_core, t.result.target_core, t.seconds);
  ::testing::Test::RecordProperty(std::string(label) + "_exact", static_cast<int>(exact));
  return exact;
}

TEST(MatchAssets, MobileNetV2AgainstItselfRenamedAndShuffledIsExact) {
  FETAFIX_REQUIRE_ASSET(path, kMobileNet);
  const onnx::ModelProto source = load(path);
  auto [target, truth] = disguise(source, 11);
  const Timed t = timed_match(source, target);
  EXPECT_EQ(t.result.source_core, 53u);  // 52 Conv + the MatMul head
  EXPECT_EQ(count_exact("mobilenet_v2_renamed", t, truth), t.result.source_core);
  EXPECT_TRUE(t.result.unmatched_source.empty());
  EXPECT_TRUE(t.result.unmatched_target.empty());
}

// The float model the assets README describes: weight DequantizeLinear folded into float
// initializers, activation Q/DQ pairs dropped. A real structural difference (no Q/DQ, float vs
// int8 storage) with known truth: node names are kept until disguise() renames them.
onnx::ModelProto dequantized(const onnx::ModelProto& qdq) {
  onnx::ModelProto out = qdq;
  auto& g = *out.mutable_graph();
  auto view = model::GraphView::build(qdq.graph());
  EXPECT_TRUE(view.ok());
  std::map<std::string, std::string> rewire;  // DQ output -> float value that replaces it
  std::set<int> drop;
  for (int i = 0; i < qdq.graph().node_size(); ++i) {
    const auto& node = qdq.graph().node(i);
    // Activation quantization becomes the identity (tf2onnx also puts Transpose/Squeeze between
    // a QuantizeLinear and its DequantizeLinear); the DequantizeLinear of the uint8 graph input stays.
    if (node.op_type() == "QuantizeLinear") {
      rewire[node.output(0)] = node.input(0);
      drop.insert(i);
      continue;
    }
    if (node.op_type() != "DequantizeLinear") continue;
    if (!model::is_weight(qdq, node.input(0))) {
      if (view->producer(node.input(0))) {
        rewire[node.output(0)] = node.input(0);
        drop.insert(i);
      }
      continue;
    }
    auto x = model::get_weight(qdq, node.input(0));
    auto scale = model::get_weight(qdq, node.input(1));
    if (!x.ok() || !scale.ok() || scale->numel() != 1) continue;
    float zero = 0;
    if (node.input_size() > 2) zero = model::get_weight(qdq, node.input(2))->to_float()[0];
    Tensor f(DType::kFloat32, x->shape);
    const auto q = x->to_float();
    for (size_t k = 0; k < q.size(); ++k) f.data<float>()[k] = (q[k] - zero) * scale->to_float()[0];
    *g.add_initializer() = model::tensor_to_proto(f, node.output(0));
    drop.insert(i);
  }
  g.clear_node();
  for (int i = 0; i < qdq.graph().node_size(); ++i) {
    if (drop.count(i)) continue;
    onnx::NodeProto node = qdq.graph().node(i);
    for (auto& in : *node.mutable_input())
      while (rewire.count(in)) in = rewire[in];
    *g.add_node() = node;
  }
  for (auto& o : *g.mutable_output())
    while (rewire.count(o.name())) o.set_name(rewire[o.name()]);
  return out;
}

TEST(MatchAssets, MobileNetV2QdqAgainstDequantizedFloatIsExact) {
  FETAFIX_REQUIRE_ASSET(path, kMobileNet);
  const onnx::ModelProto source = load(path);
  const onnx::ModelProto flat = dequantized(source);
  ASSERT_LT(flat.graph().node_size(), source.graph().node_size() / 2);  // most nodes were Q/DQ
  auto [target, truth] = disguise(flat, 5);
  const Timed t = timed_match(source, target);
  EXPECT_EQ(t.result.target_core, t.result.source_core);
  EXPECT_EQ(count_exact("mobilenet_v2_qdq_vs_float", t, truth), t.result.source_core);
}

// Every Conv whose only consumer is a BatchNormalization gets the BN folded into its weight and
// bias (Constant nodes stay Constant nodes), the BN removed: what many converters do.
onnx::ModelProto bn_folded(const onnx::ModelProto& model, std::vector<std::string>& folded_convs) {
  onnx::ModelProto out = model;
  auto view = model::GraphView::build(model.graph());
  EXPECT_TRUE(view.ok());
  std::set<int> drop;
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const auto& conv = model.graph().node(i);
    if (conv.op_type() != "Conv" || conv.input_size() < 2) continue;
    auto uses = view->consumers(conv.output(0));
    if (uses.size() != 1 || view->node(uses[0].node).op_type() != "BatchNormalization") continue;
    const auto& bn = view->node(uses[0].node);
    auto w = model::get_weight(model, conv.input(1));
    if (!w.ok() || w->dtype != DType::kFloat32) continue;
    std::vector<std::vector<float>> p;
    for (int k = 1; k <= 4; ++k) p.push_back(model::get_weight(model, bn.input(k))->to_float());
    float eps = 1e-5f;
    for (const auto& a : bn.attribute())
      if (a.name() == "epsilon") eps = a.f();
    const int64_t channels = w->shape[0], per = w->numel() / channels;
    std::vector<float> bias(static_cast<size_t>(channels), 0.0f);
    if (conv.input_size() > 2) bias = model::get_weight(model, conv.input(2))->to_float();
    for (int64_t c = 0; c < channels; ++c) {
      const auto k = static_cast<size_t>(c);
      const float a = p[0][k] / std::sqrt(p[3][k] + eps);
      for (int64_t e = 0; e < per; ++e) w->data<float>()[c * per + e] *= a;
      bias[k] = (bias[k] - p[2][k]) * a + p[1][k];
    }
    EXPECT_TRUE(model::set_weight(out, conv.input(1), *w).ok());
    Tensor b(DType::kFloat32, {channels});
    std::copy(bias.begin(), bias.end(), b.data<float>());
    auto& new_conv = *out.mutable_graph()->mutable_node(i);
    if (conv.input_size() > 2) {
      EXPECT_TRUE(model::set_weight(out, conv.input(2), b).ok());
    } else {
      *out.mutable_graph()->add_initializer() = model::tensor_to_proto(b, conv.output(0) + "_folded_bias");
      new_conv.add_input(conv.output(0) + "_folded_bias");
    }
    new_conv.set_output(0, bn.output(0));
    drop.insert(static_cast<int>(uses[0].node));
    folded_convs.push_back(conv.name());
  }
  auto& nodes = *out.mutable_graph()->mutable_node();
  for (auto it = drop.rbegin(); it != drop.rend(); ++it) nodes.erase(nodes.begin() + *it);
  return out;
}

TEST(MatchAssets, PpocrAgainstBnFoldedCopyIsExactAndReportsTheFolds) {
  FETAFIX_REQUIRE_ASSET(path, kPpocr);
  const onnx::ModelProto source = load(path);
  std::vector<std::string> folded;
  const onnx::ModelProto flat = bn_folded(source, folded);
  ASSERT_GT(folded.size(), 20u);
  auto [target, truth] = disguise(flat, 9);
  const Timed t = timed_match(source, target);
  EXPECT_EQ(count_exact("ppocr_bn_folded", t, truth), t.result.source_core);
  const std::set<std::string> folded_set(folded.begin(), folded.end());
  size_t flagged = 0;
  for (const auto& p : t.result.pairs) {
    EXPECT_EQ(p.bn_folded_in_target, folded_set.count(p.source_node) > 0) << p.source_node << ": " << p.evidence;
    flagged += p.bn_folded_in_target;
  }
  std::printf("[match] ppocr: %zu of %zu folded BNs reported\n", flagged, folded.size());
}

}  // namespace
}  // namespace fetafix::testing
