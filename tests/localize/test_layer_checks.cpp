#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "layer_fixtures.h"
#include "localize/layer_checks.h"
#include "model/attributes.h"
#include "model/graph.h"
#include "model/model.h"
#include "model/weights.h"
#include "runtime/session.h"
#include "support/assets.h"

namespace fetafix::localize {
namespace {

using testing::layer::CnnSpec;
using testing::layer::CnnWeights;
using testing::layer::cnn_pairs;
using testing::layer::node_named;
using testing::layer::small_cnn;

struct AllFindings {
  std::vector<Finding> wb, lh, cg;
};

AllFindings run_checks(const onnx::ModelProto& s, const onnx::ModelProto& t,
                       const std::vector<match::NodeMatch>& pairs = cnn_pairs(), const LayerCheckOptions& o = {}) {
  AllFindings f;
  auto wb = check_weights(s, t, pairs, o);
  auto lh = check_hyperparameters(s, t, pairs, o);
  auto cg = check_graph(s, t, pairs, o);
  EXPECT_TRUE(wb.ok()) << (wb.ok() ? "" : wb.error().message);
  EXPECT_TRUE(lh.ok()) << (lh.ok() ? "" : lh.error().message);
  EXPECT_TRUE(cg.ok()) << (cg.ok() ? "" : cg.error().message);
  if (wb.ok()) f.wb = wb.value();
  if (lh.ok()) f.lh = lh.value();
  if (cg.ok()) f.cg = cg.value();
  return f;
}

std::string summaries(const std::vector<Finding>& fs) {
  std::string s;
  for (const auto& f : fs) s += f.summary + "\n";
  return s;
}

// Float32 -> nearest float16 (ties to even) -> float32, for normal-range values.
float round_to_half(float x) {
  if (x == 0.0f) return x;
  int e = 0;
  const double m = std::frexp(double(x), &e);  // |m| in [0.5, 1): 11 significant bits in half
  return float(std::ldexp(std::nearbyint(m * 2048.0) / 2048.0, e));
}

// ---- no findings -------------------------------------------------------------------------

TEST(LayerChecks, IdenticalModelsHaveNoFindings) {
  auto m = small_cnn();
  auto f = run_checks(m, m);
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  EXPECT_TRUE(f.cg.empty()) << summaries(f.cg);
}

TEST(LayerChecks, ConstantNodeWeightsEqualInitializers) {
  CnnSpec constants;
  constants.weights_as_constants = true;
  auto f = run_checks(small_cnn(), small_cnn(constants));
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  EXPECT_TRUE(f.cg.empty()) << summaries(f.cg);
}

TEST(LayerChecks, ExplicitDefaultsEqualMissingAttributes) {
  auto target = small_cnn();
  auto* conv1 = node_named(target, "conv1");
  model::set_ints(*conv1, "strides", {1, 1});
  model::set_ints(*conv1, "dilations", {1, 1});
  model::set_int(*conv1, "group", 1);
  model::set_string(*conv1, "auto_pad", "NOTSET");
  model::set_ints(*conv1, "kernel_shape", {3, 3});
  model::set_float(*node_named(target, "bn1"), "epsilon", 1e-5f);
  model::set_int(*node_named(target, "pool2"), "ceil_mode", 0);
  auto f = run_checks(small_cnn(), target);
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
}

// ---- WB ----------------------------------------------------------------------------------

TEST(LayerChecks, Float16RoundedWeightsAreCounted) {
  CnnWeights rounded;
  int64_t expected = 0;
  double expected_max = 0;
  for (float& v : rounded.w1.span<float>()) {
    const float r = round_to_half(v);
    if (r != v) ++expected;
    expected_max = std::max(expected_max, double(std::fabs(r - v)));
    v = r;
  }
  ASSERT_GT(expected, 50);  // nearly every random float32 changes when rounded
  auto f = run_checks(small_cnn(), small_cnn({}, rounded));
  ASSERT_EQ(f.wb.size(), 1u) << summaries(f.wb);
  const auto& e = localize::evidence_json(f.wb[0]);
  EXPECT_EQ(f.wb[0].type(), FaultType::kWB);
  EXPECT_EQ(f.wb[0].source_node, "conv1");
  EXPECT_EQ(f.wb[0].layer_rank, 0);
  EXPECT_EQ(e["role"], "weight");
  EXPECT_EQ(e["source_tensor"], "W1");
  EXPECT_EQ(e["target_tensor"], "W1");
  EXPECT_EQ(e["input_index"], 1);
  EXPECT_EQ(e["differing"], expected);
  EXPECT_EQ(e["total"], 108);
  EXPECT_NEAR(e["max_abs_diff"].get<double>(), expected_max, 1e-9);
  EXPECT_EQ(e["source_dtype"], "float32");

  LayerCheckOptions tolerant;
  tolerant.weight_atol = 1e-3;  // float16 rounding of |w| < 1 stays below this
  auto g = check_weights(small_cnn(), small_cnn({}, rounded), cnn_pairs(), tolerant);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->empty()) << summaries(*g);
}

TEST(LayerChecks, OneChangedWeightElement) {
  CnnWeights changed;
  changed.w2.span<float>()[5] += 0.25f;
  auto f = run_checks(small_cnn(), small_cnn({}, changed));
  ASSERT_EQ(f.wb.size(), 1u) << summaries(f.wb);
  EXPECT_EQ(f.wb[0].target_node, "conv2");
  EXPECT_EQ(f.wb[0].layer_rank, 1);
  EXPECT_EQ(localize::evidence_json(f.wb[0])["differing"], 1);
  EXPECT_NEAR(localize::evidence_json(f.wb[0])["max_abs_diff"].get<double>(), 0.25, 1e-6);
  EXPECT_NEAR(localize::evidence_json(f.wb[0])["mean_abs_diff"].get<double>(), 0.25 / 144, 1e-6);
}

TEST(LayerChecks, ChangedBias) {
  CnnWeights changed;
  changed.b1.span<float>()[2] += 0.1f;
  auto f = run_checks(small_cnn(), small_cnn({}, changed));
  ASSERT_EQ(f.wb.size(), 1u) << summaries(f.wb);
  EXPECT_EQ(localize::evidence_json(f.wb[0])["role"], "bias");
  EXPECT_EQ(localize::evidence_json(f.wb[0])["target_tensor"], "B1");
  EXPECT_EQ(localize::evidence_json(f.wb[0])["input_index"], 2);
  EXPECT_EQ(localize::evidence_json(f.wb[0])["differing"], 1);
}

TEST(LayerChecks, ChangedBatchNormParameter) {
  CnnWeights changed;
  changed.var.span<float>()[1] *= 2.0f;
  auto f = run_checks(small_cnn(), small_cnn({}, changed));
  ASSERT_EQ(f.wb.size(), 1u) << summaries(f.wb);
  EXPECT_EQ(f.wb[0].source_node, "bn1");
  EXPECT_EQ(f.wb[0].target_node, "bn1");
  EXPECT_EQ(f.wb[0].layer_rank, 0);  // a neighbour of the first ranked pair
  EXPECT_EQ(localize::evidence_json(f.wb[0])["role"], "parameter");
  EXPECT_EQ(localize::evidence_json(f.wb[0])["target_tensor"], "bn1_var");
  EXPECT_EQ(localize::evidence_json(f.wb[0])["input_index"], 4);
  EXPECT_EQ(localize::evidence_json(f.wb[0])["core_target_node"], "conv1");
}

TEST(LayerChecks, MissingBiasComparesAsZeros) {
  auto source = small_cnn();
  auto target = small_cnn();
  CnnWeights zero_bias;
  std::memset(zero_bias.b2.bytes.data(), 0, zero_bias.b2.bytes.size());
  auto zeroed = small_cnn({}, zero_bias);
  node_named(zeroed, "conv2")->mutable_input()->RemoveLast();  // Conv(x, W) == Conv(x, W, 0)
  auto same = check_weights(small_cnn({}, zero_bias), zeroed, cnn_pairs());
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty()) << summaries(*same);
  auto differs = check_weights(source, zeroed, cnn_pairs());
  ASSERT_TRUE(differs.ok());
  ASSERT_EQ(differs->size(), 1u) << summaries(*differs);
  EXPECT_EQ(localize::evidence_json((*differs)[0])["role"], "bias");
  EXPECT_EQ(localize::evidence_json((*differs)[0])["target_tensor"], "");
  EXPECT_EQ(localize::evidence_json((*differs)[0])["target_dtype"], "absent");
}

// Target stores W2 as OHWI and transposes it back: the Conv sees the same weight.
onnx::ModelProto with_ohwi_w2(const CnnWeights& w) {
  auto m = small_cnn({}, w);
  Tensor ohwi(DType::kFloat32, {4, 3, 3, 4});
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 4; ++i)
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 3; ++x)
          ohwi.span<float>()[((o * 3 + y) * 3 + x) * 4 + i] = w.w2.span<const float>()[((o * 4 + i) * 3 + y) * 3 + x];
  EXPECT_TRUE(model::set_weight(m, "W2", ohwi).ok());
  auto* conv2 = node_named(m, "conv2");
  onnx::NodeProto t;
  t.set_op_type("Transpose");
  t.set_name("w2_to_oihw");
  t.add_input("W2");
  t.add_output("W2_oihw");
  model::set_ints(t, "perm", {0, 3, 1, 2});
  conv2->set_input(1, "W2_oihw");
  auto& nodes = *m.mutable_graph()->mutable_node();
  *nodes.Add() = t;
  for (int i = nodes.size() - 1; i > 0; --i) nodes.SwapElements(i, i - 1);  // weight chains first
  return m;
}

TEST(LayerChecks, WeightSeenThroughTransposeChain) {
  auto f = run_checks(small_cnn(), with_ohwi_w2({}));
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  CnnWeights changed;
  changed.w2.span<float>()[0] = 3.0f;
  auto g = run_checks(small_cnn(), with_ohwi_w2(changed));
  ASSERT_EQ(g.wb.size(), 1u) << summaries(g.wb);
  EXPECT_EQ(localize::evidence_json(g.wb[0])["target_chain"], nlohmann::json::array({"Transpose"}));
  EXPECT_EQ(localize::evidence_json(g.wb[0])["target_shape"], nlohmann::json::array({4, 4, 3, 3}));
  EXPECT_EQ(localize::evidence_json(g.wb[0])["differing"], 1);
}

TEST(LayerChecks, QuantizedWeightFollowedThroughDequantizeLinear) {
  // Source weights exactly representable as int8 * per-channel scale: dequantized Target equals them.
  CnnWeights exact;
  Tensor q(DType::kInt8, {4, 3, 3, 3});
  const std::vector<float> scale{0.01f, 0.02f, 0.005f, 0.0125f};
  for (size_t i = 0; i < 108; ++i) {
    const int8_t v = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);
    q.span<int8_t>()[i] = v;
    exact.w1.span<float>()[i] = float(v) * scale[i / 27];
  }
  auto build_target = [&](const Tensor& qv) {
    auto m = small_cnn({}, exact);
    EXPECT_TRUE(model::set_weight(m, "W1", qv).ok());
    auto& g = *m.mutable_graph();
    *g.add_initializer() = to_tensor_proto("W1_scale", float_tensor({4}, scale));
    onnx::NodeProto dq;
    dq.set_op_type("DequantizeLinear");
    dq.set_name("w1_dq");
    dq.add_input("W1");
    dq.add_input("W1_scale");
    dq.add_output("W1_float");
    model::set_int(dq, "axis", 0);
    node_named(m, "conv1")->set_input(1, "W1_float");
    *g.mutable_node()->Add() = dq;
    for (int i = g.node_size() - 1; i > 0; --i) g.mutable_node()->SwapElements(i, i - 1);
    return m;
  };
  auto f = run_checks(small_cnn({}, exact), build_target(q));
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  EXPECT_TRUE(f.cg.empty()) << summaries(f.cg);

  Tensor off = q;
  off.span<int8_t>()[30] = static_cast<int8_t>(off.span<int8_t>()[30] + 1);  // channel 1
  auto g = run_checks(small_cnn({}, exact), build_target(off));
  ASSERT_EQ(g.wb.size(), 1u) << summaries(g.wb);
  EXPECT_EQ(localize::evidence_json(g.wb[0])["differing"], 1);
  EXPECT_EQ(localize::evidence_json(g.wb[0])["target_dtype"], "int8");
  EXPECT_EQ(localize::evidence_json(g.wb[0])["target_dequantized"], true);
  EXPECT_NEAR(localize::evidence_json(g.wb[0])["max_abs_diff"].get<double>(), 0.02, 1e-6);
}

TEST(LayerChecks, FoldedBatchNormComparedAfterFolding) {
  CnnSpec folded;
  folded.bn = CnnSpec::Bn::kFoldedIntoConv1;
  auto f = run_checks(small_cnn(), small_cnn(folded), cnn_pairs(true));
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);

  CnnWeights changed;  // a real difference survives the folding tolerance
  changed.w1.span<float>()[40] += 0.05f;
  auto g = run_checks(small_cnn({}, changed), small_cnn(folded), cnn_pairs(true));
  ASSERT_EQ(g.wb.size(), 1u) << summaries(g.wb);
  EXPECT_EQ(localize::evidence_json(g.wb[0])["bn_folded"], "target");
  EXPECT_EQ(localize::evidence_json(g.wb[0])["folded_bn_node"], "bn1");
  EXPECT_EQ(localize::evidence_json(g.wb[0])["differing"], 1);

  // Without the folding flag the same pair is a large WB difference.
  auto h = check_weights(small_cnn(), small_cnn(folded), cnn_pairs(false));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(h->empty());
}

TEST(LayerChecks, GemmWeightAgainstMatMulWithPermutation) {
  auto build = [](bool gemm, float tweak) {
    GraphBuilder b("fc", 13);
    std::string x = b.input("x", DType::kFloat32, {2, 6});
    Tensor w = random_tensor({5, 6}, 11);  // [N, K]
    w.span<float>()[7] += tweak;
    if (gemm) {
      b.node("Gemm", "fc", {x, b.initializer("W", w), b.initializer("C", random_tensor({5}, 12))},
             {Attr::i("transB", 1)}, "y");
    } else {
      Tensor kn(DType::kFloat32, {6, 5});
      for (int n = 0; n < 5; ++n)
        for (int k = 0; k < 6; ++k) kn.span<float>()[k * 5 + n] = w.span<float>()[n * 6 + k];
      b.node("MatMul", "fc", {x, b.initializer("W", kn)}, {}, "y");
    }
    b.output("y", DType::kFloat32, {2, 5});
    return b.build();
  };
  match::NodeMatch pair{"fc", "fc", 1.0, {1, 0}, false, false, "", ""};
  auto same = check_weights(build(true, 0), build(false, 0), {pair});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty()) << summaries(*same);
  auto off = check_weights(build(true, 0), build(false, 0.5f), {pair});
  ASSERT_TRUE(off.ok());
  ASSERT_EQ(off->size(), 1u) << summaries(*off);
  EXPECT_EQ(localize::evidence_json((*off)[0])["layout_permutation"], nlohmann::json::array({1, 0}));
  EXPECT_EQ(localize::evidence_json((*off)[0])["differing"], 1);
}

// ---- LH ----------------------------------------------------------------------------------

const Finding* find_lh(const std::vector<Finding>& fs, const std::string& attribute) {
  for (const auto& f : fs)
    if (localize::evidence_json(f).value("attribute", "") == attribute) return &f;
  return nullptr;
}

TEST(LayerChecks, DroppedPadsAreMissing) {
  CnnSpec dropped;
  dropped.conv2_pads = false;
  auto f = run_checks(small_cnn(), small_cnn(dropped));
  ASSERT_EQ(f.lh.size(), 1u) << summaries(f.lh);
  const auto& e = localize::evidence_json(f.lh[0]);
  EXPECT_EQ(f.lh[0].type(), FaultType::kLH);
  EXPECT_EQ(f.lh[0].target_node, "conv2");
  EXPECT_EQ(e["attribute"], "pads");
  EXPECT_EQ(e["kind"], "missing");
  EXPECT_EQ(e["source_value"], nlohmann::json::array({1, 1, 1, 1}));
  EXPECT_EQ(e["target_value"], nlohmann::json::array({0, 0, 0, 0}));
  EXPECT_EQ(e["target_region"]["nodes"], nlohmann::json::array({"conv2"}));
  EXPECT_EQ(e["target_region"]["inputs"], nlohmann::json::array({"relu1_out"}));
  EXPECT_NE(f.lh[0].summary.find("missing in Target"), std::string::npos) << f.lh[0].summary;
}

TEST(LayerChecks, ChangedStrides) {
  auto source = small_cnn();
  model::set_ints(*node_named(source, "conv2"), "strides", {1, 1});
  auto target = small_cnn();
  model::set_ints(*node_named(target, "conv2"), "strides", {2, 2});
  auto f = run_checks(source, target);
  ASSERT_EQ(f.lh.size(), 1u) << summaries(f.lh);
  EXPECT_EQ(localize::evidence_json(f.lh[0])["kind"], "different");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["target_value"], nlohmann::json::array({2, 2}));

  auto g = run_checks(small_cnn(), target);  // Source relies on the default
  ASSERT_EQ(g.lh.size(), 1u) << summaries(g.lh);
  EXPECT_EQ(localize::evidence_json(g.lh[0])["kind"], "extra");
  EXPECT_EQ(localize::evidence_json(g.lh[0])["source_value"], nlohmann::json::array({1, 1}));
}

TEST(LayerChecks, ChangedEpsilonOnNeighbourBatchNorm) {
  auto target = small_cnn();
  model::set_float(*node_named(target, "bn1"), "epsilon", 1e-3f);
  auto f = run_checks(small_cnn(), target);
  ASSERT_EQ(f.lh.size(), 1u) << summaries(f.lh);
  EXPECT_EQ(f.lh[0].target_node, "bn1");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["attribute"], "epsilon");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["kind"], "extra");
  EXPECT_NEAR(localize::evidence_json(f.lh[0])["target_value"].get<double>(), 1e-3, 1e-9);
}

TEST(LayerChecks, RemovedClipMax) {
  CnnSpec no_max;
  no_max.clip_max = false;
  auto f = run_checks(small_cnn(), small_cnn(no_max));
  ASSERT_EQ(f.lh.size(), 1u) << summaries(f.lh);
  EXPECT_EQ(f.lh[0].target_node, "clip2");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["attribute"], "max");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["kind"], "missing");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["source_form"], "input");
  EXPECT_EQ(localize::evidence_json(f.lh[0])["source_value"], 1.0);
}

TEST(LayerChecks, ClipBoundsAsAttributesEqualInputs) {
  CnnSpec opset10;
  opset10.opset = 10;
  auto f = run_checks(small_cnn(), small_cnn(opset10));
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  CnnSpec opset10_no_max = opset10;
  opset10_no_max.clip_max = false;
  auto g = run_checks(small_cnn(), small_cnn(opset10_no_max));
  ASSERT_EQ(g.lh.size(), 1u) << summaries(g.lh);
  EXPECT_EQ(localize::evidence_json(g.lh[0])["attribute"], "max");
}

TEST(LayerChecks, SameUpperEqualsImpliedExplicitPads) {
  CnnSpec same;
  same.conv1_pad = CnnSpec::Conv1Pad::kSameUpper;  // conv1 reads x, whose shape is declared
  auto f = run_checks(small_cnn(), small_cnn(same));
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);

  // conv2 reads an intermediate value: needs observed shapes to resolve SAME_UPPER.
  auto target = small_cnn();
  auto* conv2 = node_named(target, "conv2");
  model::remove_attribute(*conv2, "pads");
  model::set_string(*conv2, "auto_pad", "SAME_UPPER");
  auto unresolved = check_hyperparameters(small_cnn(), target, cnn_pairs());
  ASSERT_TRUE(unresolved.ok());
  EXPECT_NE(find_lh(*unresolved, "auto_pad"), nullptr) << summaries(*unresolved);

  LayerCheckOptions with_shapes;
  auto observe = [](const onnx::ModelProto& m) {
    auto info = runtime::observe_value_shapes(m, {random_tensor({1, 3, 8, 8}, 9)}, 1);
    EXPECT_TRUE(info.ok());
    std::map<std::string, std::vector<int64_t>> shapes;
    if (info.ok())
      for (const auto& [name, v] : *info) shapes[name] = v.shape;
    return shapes;
  };
  with_shapes.source_shapes = observe(small_cnn());
  with_shapes.target_shapes = observe(target);
  auto resolved = check_hyperparameters(small_cnn(), target, cnn_pairs(), with_shapes);
  ASSERT_TRUE(resolved.ok());
  EXPECT_TRUE(resolved->empty()) << summaries(*resolved);

  // Stride 2 on 8x8 with a 3x3 kernel: SAME_UPPER pads [0,0,1,1], not the Source's [1,1,1,1].
  model::set_ints(*conv2, "strides", {2, 2});
  auto source = small_cnn();
  model::set_ints(*node_named(source, "conv2"), "strides", {2, 2});
  with_shapes.target_shapes = observe(target);
  with_shapes.source_shapes = observe(source);
  auto asymmetric = check_hyperparameters(source, target, cnn_pairs(), with_shapes);
  ASSERT_TRUE(asymmetric.ok());
  const Finding* pads = find_lh(*asymmetric, "pads");
  ASSERT_NE(pads, nullptr) << summaries(*asymmetric);
  EXPECT_EQ(localize::evidence_json(*pads)["target_value"], nlohmann::json::array({0, 0, 1, 1}));
  EXPECT_EQ(localize::evidence_json(*pads)["target_form"], "auto_pad");
}

TEST(LayerChecks, PadNodeFoldedIntoConvPads) {
  CnnSpec pad_node;
  pad_node.conv1_pad = CnnSpec::Conv1Pad::kPadNode;
  auto f = run_checks(small_cnn(), small_cnn(pad_node));
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  ASSERT_EQ(f.cg.size(), 1u) << summaries(f.cg);  // the extra Pad is still a graph difference
  EXPECT_EQ(f.cg[0].target_node, "conv1");
  EXPECT_EQ(localize::evidence_json(f.cg[0])["target_ops"], nlohmann::json::array({"Pad", "Conv"}));
  EXPECT_EQ(localize::evidence_json(f.cg[0])["source_ops"], nlohmann::json::array({"Conv"}));

  // Pad node plus leftover conv pads that add up to more than the Source's: reported, naming the Pad.
  auto target = small_cnn(pad_node);
  model::set_ints(*node_named(target, "conv1"), "pads", {1, 1, 1, 1});
  auto g = check_hyperparameters(small_cnn(), target, cnn_pairs());
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->size(), 1u) << summaries(*g);
  EXPECT_EQ(localize::evidence_json((*g)[0])["target_value"], nlohmann::json::array({2, 2, 2, 2}));
  EXPECT_EQ(localize::evidence_json((*g)[0])["target_pad_node"], "pad1");
  EXPECT_EQ(localize::evidence_json((*g)[0])["target_region"]["nodes"], nlohmann::json::array({"pad1", "conv1"}));
}

TEST(LayerChecks, PadNodeFoldedThroughNodesThatKeepZeros) {
  // A port's range Clip and a ReLU between the Pad and the Conv leave the padded zeros zero.
  for (int64_t opset : {9, 13}) {
    CnnSpec behind;
    behind.opset = opset;
    behind.conv1_pad = CnnSpec::Conv1Pad::kPadNode;
    behind.after_pad1 = {"Clip", "Relu", "Identity"};
    CnnSpec source;
    source.opset = opset;
    auto lh = check_hyperparameters(small_cnn(source), small_cnn(behind), cnn_pairs());
    ASSERT_TRUE(lh.ok()) << lh.error().message;
    EXPECT_TRUE(lh->empty()) << "opset " << opset << ": " << summaries(*lh);
  }
  // TF SAME (bottom/right only) behind a ReLU against symmetric pads: one finding naming the Pad,
  // its region holding the nodes between.
  CnnSpec same;
  same.conv1_pad = CnnSpec::Conv1Pad::kPadNode;
  same.pad1_pads = {0, 0, 0, 0, 0, 0, 1, 1};
  same.after_pad1 = {"Relu"};
  auto lh = check_hyperparameters(small_cnn(), small_cnn(same), cnn_pairs());
  ASSERT_TRUE(lh.ok()) << lh.error().message;
  ASSERT_EQ(lh->size(), 1u) << summaries(*lh);
  const auto e = localize::evidence_json((*lh)[0]);
  EXPECT_EQ(e["target_value"], nlohmann::json::array({0, 0, 1, 1}));
  EXPECT_EQ(e["target_form"], "pad_node");
  EXPECT_EQ(e["target_pad_node"], "pad1");
  EXPECT_EQ(e["target_region"]["nodes"], nlohmann::json::array({"pad1", "after_pad1_0", "conv1"}));
  // An Add of 1 turns the zeros into ones: the Pad is not the Conv's padding then.
  CnnSpec shifted = same;
  shifted.after_pad1 = {"Add"};
  lh = check_hyperparameters(small_cnn(), small_cnn(shifted), cnn_pairs());
  ASSERT_TRUE(lh.ok()) << lh.error().message;
  ASSERT_EQ(lh->size(), 1u) << summaries(*lh);
  EXPECT_EQ(localize::evidence_json((*lh)[0])["target_form"], "default");
}

// ---- CG ----------------------------------------------------------------------------------

TEST(LayerChecks, BatchNormVersusMulAddIsAGraphDifference) {
  CnnSpec mul_add;
  mul_add.bn = CnnSpec::Bn::kMulAdd;
  auto f = run_checks(small_cnn(), small_cnn(mul_add));
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  ASSERT_EQ(f.cg.size(), 1u) << summaries(f.cg);
  const auto& e = localize::evidence_json(f.cg[0]);
  EXPECT_EQ(f.cg[0].type(), FaultType::kCG);
  EXPECT_EQ(f.cg[0].target_node, "conv2");
  EXPECT_EQ(e["source_ops"], nlohmann::json::array({"BatchNormalization", "Relu", "Conv"}));
  EXPECT_EQ(e["target_ops"], nlohmann::json::array({"Mul", "Add", "Relu", "Conv"}));
  EXPECT_EQ(e["target_nodes"], nlohmann::json::array({"bn1_mul", "bn1_add", "relu1", "conv2"}));
  EXPECT_EQ(e["first_difference"], 0);
  EXPECT_EQ(e["source_region"]["inputs"], nlohmann::json::array({"conv1_out"}));
  EXPECT_EQ(e["source_region"]["output"], "conv2_out");
}

TEST(LayerChecks, FoldedBatchNormRegionReachesBackThroughTheFoldedLayer) {
  CnnSpec folded;
  folded.bn = CnnSpec::Bn::kFoldedIntoConv1;
  auto f = run_checks(small_cnn(), small_cnn(folded), cnn_pairs(true));
  ASSERT_EQ(f.cg.size(), 2u) << summaries(f.cg);
  // The folded layer itself: the Target's conv1 output already holds the BN, so the Source's
  // region runs on to its BN.
  const auto& own = localize::evidence_json(f.cg[0]);
  EXPECT_EQ(own["source_ops"], nlohmann::json::array({"Conv", "BatchNormalization"}));
  EXPECT_EQ(own["target_ops"], nlohmann::json::array({"Conv"}));
  EXPECT_EQ(own["source_region"]["output"], "bn1_out");
  const auto& e = localize::evidence_json(f.cg[1]);
  EXPECT_EQ(e["source_ops"], nlohmann::json::array({"Conv", "BatchNormalization", "Relu", "Conv"}));
  EXPECT_EQ(e["target_ops"], nlohmann::json::array({"Conv", "Relu", "Conv"}));
  EXPECT_EQ(e["target_region"]["inputs"], nlohmann::json::array({"x"}));
}

TEST(LayerChecks, UnknownNodeInPairsIsAnError) {
  std::vector<match::NodeMatch> pairs{{"conv1", "no_such_conv", 1.0, {}, false, false, "", ""}};
  auto r = check_weights(small_cnn(), small_cnn(), pairs);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no_such_conv"), std::string::npos) << r.error().message;
  EXPECT_FALSE(check_hyperparameters(small_cnn(), small_cnn(), pairs).ok());
  EXPECT_FALSE(check_graph(small_cnn(), small_cnn(), pairs).ok());
}

}  // namespace
}  // namespace fetafix::localize

// ---- real models (skipped when the assets are absent) ------------------------------------

namespace fetafix::localize {
namespace {

std::vector<match::NodeMatch> all_convs_paired_with_themselves(const onnx::ModelProto& m) {
  auto view = model::GraphView::build(m.graph());
  EXPECT_TRUE(view.ok());
  std::vector<match::NodeMatch> pairs;
  if (!view.ok()) return pairs;
  for (size_t i : view->topological_order())
    if (view->node(i).op_type() == "Conv")
      pairs.push_back({view->node_name(i), view->node_name(i), 1.0, {}, false, false, "", ""});
  return pairs;
}

void self_check_and_plant(const std::filesystem::path& path) {
  auto loaded = model::load_model(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  auto& m = loaded->proto;
  model::assign_node_names(*m.mutable_graph());
  const auto pairs = all_convs_paired_with_themselves(m);
  ASSERT_GT(pairs.size(), 10u);
  auto f = run_checks(m, m, pairs);
  EXPECT_TRUE(f.wb.empty()) << summaries(f.wb);
  EXPECT_TRUE(f.lh.empty()) << summaries(f.lh);
  EXPECT_TRUE(f.cg.empty()) << summaries(f.cg);

  // Plant: the 5th Conv's strides changed; found there and nowhere else.
  auto target = m;
  auto* conv = node_named(target, pairs[4].target_node);
  ASSERT_NE(conv, nullptr);
  model::set_ints(*conv, "strides", {3, 3});
  auto lh = check_hyperparameters(m, target, pairs);
  ASSERT_TRUE(lh.ok()) << lh.error().message;
  ASSERT_EQ(lh->size(), 1u) << summaries(*lh);
  EXPECT_EQ((*lh)[0].target_node, pairs[4].target_node);
  EXPECT_EQ(localize::evidence_json((*lh)[0])["attribute"], "strides");
}

TEST(LayerChecksAssets, PaddleModelWithConstantWeights) {
  FETAFIX_REQUIRE_ASSET(path, "models/ch_ppocr_mobile_v2.0_cls_infer.onnx");
  self_check_and_plant(path);
}

TEST(LayerChecksAssets, QuantizedMobileNet) {
  FETAFIX_REQUIRE_ASSET(path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  self_check_and_plant(path);
}

}  // namespace
}  // namespace fetafix::localize
