#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "localize/input_checks.h"
#include "localize/layer_checks.h"
#include "localize/layer_fixtures.h"
#include "match/cnn_fixture.h"
#include "data/image.h"
#include "model/attributes.h"
#include "model/weights.h"
#include "support/models.h"
#include "repair_helpers.h"

namespace fetafix::repair {
namespace {

using localize::FaultType;
using localize::Finding;
using nlohmann::json;
using namespace fetafix::repair::testing;

onnx::ModelProto cnn(void (*set)(fetafix::testing::CnnOptions&) = nullptr) {
  fetafix::testing::CnnOptions o;
  if (set) set(o);
  return fetafix::testing::build_cnn(o);
}

std::vector<match::NodeMatch> cnn_core_pairs() {
  return same_name_pairs({"conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "conv8", "fc"});
}

std::vector<Finding> weight_findings(const onnx::ModelProto& s, const onnx::ModelProto& t,
                                     const std::vector<match::NodeMatch>& pairs) {
  auto r = localize::check_weights(s, t, pairs);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::vector<Finding>{};
}

Tensor weight_as_float32(const onnx::ModelProto& m, const std::string& name) {
  auto w = model::get_weight(m, name);
  EXPECT_TRUE(w.ok()) << name;
  return w.ok() ? *w : Tensor{};
}

// ---- WB --------------------------------------------------------------------------------------

TEST(RepairWB, Float16RoundedWeightsGetTheSourceValuesBitExact) {
  const auto source = cnn();
  const auto target = cnn([](auto& o) { o.fp16_rounded_weights = true; });
  auto findings = weight_findings(source, target, cnn_core_pairs());
  ASSERT_GE(findings.size(), 9u);  // every weight and bias rounds somewhere
  const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
  EXPECT_TRUE(weight_findings(source, repaired, cnn_core_pairs()).empty());
  for (const auto& w : model::list_weights(source))
    EXPECT_EQ(weight_as_float32(repaired, w.value).bytes, weight_as_float32(source, w.value).bytes) << w.value;
  EXPECT_EQ(output_error(source, repaired), 0.0);
  EXPECT_GT(output_error(source, target), 0.0);
}

TEST(RepairWB, ScaledLayerStoredHwioIsWrittenInTheTargetLayout) {
  const auto source = cnn();
  const auto target = cnn([](auto& o) { o.hwio_weights = true, o.scaled_layer = 2; });
  auto findings = weight_findings(source, target, cnn_core_pairs());
  ASSERT_EQ(findings.size(), 1u);
  auto c = plan_repair(source, target, findings[0]);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->edits.size(), 1u);
  EXPECT_EQ(c->edits[0].kind, model::EditKind::kSetWeight);
  EXPECT_EQ(c->edits[0].value, "conv3_w_hwio");  // stored as HWIO, written as HWIO
  const auto repaired = apply_and_verify(target, {*c});
  const auto hwio_source = cnn([](auto& o) { o.hwio_weights = true; });
  EXPECT_EQ(weight_as_float32(repaired, "conv3_w_hwio").bytes, weight_as_float32(hwio_source, "conv3_w_hwio").bytes);
  EXPECT_LT(output_error(source, repaired), 1e-5);
  EXPECT_GT(output_error(source, target), 1e-2);
}

TEST(RepairWB, QuantizedWeightIsReplacedByAFloatInitializer) {
  const auto source = cnn();
  const auto target = cnn([](auto& o) { o.qdq_weights = true; });
  auto findings = weight_findings(source, target, cnn_core_pairs());
  ASSERT_FALSE(findings.empty());
  auto candidates = plan_all(source, target, findings);
  ASSERT_EQ(candidates.size(), findings.size());
  for (const auto& c : candidates) EXPECT_NE(c.description.find("new initializer"), std::string::npos) << c.description;
  const auto repaired = apply_and_verify(target, candidates);
  EXPECT_TRUE(weight_findings(source, repaired, cnn_core_pairs()).empty());
  EXPECT_LT(output_error(source, repaired), 1e-5);
}

TEST(RepairWB, SourceWeightIsFoldedWhenTheTargetFoldedItsBatchNorm) {
  const auto source = cnn();
  const auto target = cnn([](auto& o) { o.bn = fetafix::testing::BnForm::kFoldedIntoConv, o.scaled_layer = 1; });
  auto matched = match::match_models(source, target);
  ASSERT_TRUE(matched.ok()) << matched.error().message;
  auto findings = weight_findings(source, target, matched->pairs);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(localize::evidence_json(findings[0])["bn_folded"], "target");
  const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
  EXPECT_TRUE(weight_findings(source, repaired, matched->pairs).empty());
  EXPECT_LT(output_error(source, repaired), 1e-5);
  EXPECT_GT(output_error(source, target), 1e-2);
}

// ---- LH --------------------------------------------------------------------------------------

std::vector<Finding> lh_findings(const onnx::ModelProto& s, const onnx::ModelProto& t,
                                 const std::vector<match::NodeMatch>& pairs) {
  auto r = localize::check_hyperparameters(s, t, pairs);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::vector<Finding>{};
}

TEST(RepairLH, DroppedDepthwisePadsAreRestored) {
  const auto source = cnn();
  const auto target = cnn([](auto& o) { o.drop_dw_pads = true; });
  auto findings = lh_findings(source, target, cnn_core_pairs());
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(localize::evidence_json(findings[0])["attribute"], "pads");
  const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
  EXPECT_TRUE(lh_findings(source, repaired, cnn_core_pairs()).empty());
  EXPECT_LT(output_error(source, repaired), 1e-5);
  EXPECT_GT(output_error(source, target), 1e-3);
}

TEST(RepairLH, TfSamePaddingInAPadNodeBecomesTheConvsPads) {
  // The port pads bottom/right with a Pad (through an Identity) where the Source pads 1 on each
  // side in the Conv: the Conv takes the Source's pads and the Pad is bypassed.
  using namespace fetafix::testing::layer;
  const auto source = small_cnn();
  CnnSpec same;
  same.conv1_pad = CnnSpec::Conv1Pad::kPadNode;
  same.pad1_pads = {0, 0, 0, 0, 0, 0, 1, 1};
  same.after_pad1 = {"Identity"};
  const auto target = small_cnn(same);
  auto findings = lh_findings(source, target, cnn_pairs());
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(localize::evidence_json(findings[0])["target_form"], "pad_node");
  const auto plan = plan_all(source, target, findings);
  const auto repaired = apply_and_verify(target, plan);
  EXPECT_TRUE(lh_findings(source, repaired, cnn_pairs()).empty());
  EXPECT_LT(output_error(source, repaired), 1e-5);
  EXPECT_GT(output_error(source, target), 1e-3);
  auto bypassed = repaired;
  EXPECT_EQ(node_named(bypassed, "after_pad1_0")->input(0), "x");
}

TEST(RepairLH, ChangedEpsilonIsSetBack) {
  using namespace fetafix::testing::layer;
  const auto source = small_cnn();
  auto target = small_cnn();
  model::set_float(*node_named(target, "bn1"), "epsilon", 0.5f);
  auto findings = lh_findings(source, target, cnn_pairs());
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(localize::evidence_json(findings[0])["attribute"], "epsilon");
  const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
  EXPECT_TRUE(lh_findings(source, repaired, cnn_pairs()).empty());
  EXPECT_EQ(output_error(source, repaired), 0.0);
  EXPECT_GT(output_error(source, target), 1e-4);
}

TEST(RepairLH, RemovedClipMaxComesBackAsInputOrAttribute) {
  using namespace fetafix::testing::layer;
  for (int64_t opset : {13, 10}) {
    CnnSpec with, without;
    with.opset = without.opset = opset;
    without.clip_max = false;
    const auto source = small_cnn(with), target = small_cnn(without);
    auto findings = lh_findings(source, target, cnn_pairs());
    ASSERT_EQ(findings.size(), 1u) << opset;
    EXPECT_EQ(localize::evidence_json(findings[0])["attribute"], "max");
    const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
    EXPECT_TRUE(lh_findings(source, repaired, cnn_pairs()).empty()) << opset;
    EXPECT_EQ(output_error(source, repaired), 0.0) << opset;
    EXPECT_GT(output_error(source, target), 1e-3) << opset;
    // And the reverse: a Target with a bound the Source lacks loses it.
    auto back = lh_findings(target, source, cnn_pairs());
    ASSERT_EQ(back.size(), 1u);
    const auto unbounded = apply_and_verify(source, plan_all(target, source, back));
    EXPECT_EQ(output_error(target, unbounded), 0.0) << opset;
  }
}

// ---- TSS -------------------------------------------------------------------------------------

// NCHW [1,3,8,8] -> Conv; or NHWC [1,8,8,3] -> Transpose(perm) -> Conv.
onnx::ModelProto first_conv_model(std::optional<std::vector<int64_t>> nhwc_perm) {
  GraphBuilder g("first_conv", 13);
  std::string x = nhwc_perm ? g.input("image", DType::kFloat32, {1, 8, 8, 3}) : g.input("image", DType::kFloat32, {1, 3, 8, 8});
  if (nhwc_perm) x = g.node("Transpose", "", {x}, {Attr::ints("perm", *nhwc_perm)}, "to_nchw_out");
  g.initializer("w", random_tensor({4, 3, 3, 3}, 11));
  g.node("Conv", "conv", {x, "w"}, {Attr::ints("pads", {1, 1, 1, 1})}, "out");
  g.output("out", DType::kFloat32, {1, 4, 8, 8});
  return g.build();
}

Tensor nchw_to_nhwc(const Tensor& x) {
  Tensor out(x.dtype, {x.shape[0], x.shape[2], x.shape[3], x.shape[1]});
  const int64_t C = x.shape[1], H = x.shape[2], W = x.shape[3];
  for (int64_t n = 0; n < x.shape[0]; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          out.data<float>()[((n * H + h) * W + w) * C + c] = x.data<float>()[((n * C + c) * H + h) * W + w];
  return out;
}

TEST(RepairTSS, WrongInputTransposePermIsCorrected) {
  const auto source = first_conv_model(std::nullopt);
  const auto target = first_conv_model(std::vector<int64_t>{0, 3, 2, 1});  // unnamed Transpose
  auto findings = localize::check_input_structure(source, target);
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u);
  const auto repaired = apply_and_verify(target, plan_all(source, target, *findings));
  auto again = localize::check_input_structure(source, repaired);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(output_error(source, repaired, 3, nchw_to_nhwc), 0.0);
  EXPECT_GT(output_error(source, target, 3, nchw_to_nhwc), 1e-3);
}


TEST(RepairTSS, GathersOnTheWrongAxisAreCorrected) {
  const auto source = fetafix::testing::channel_normalising_model(3);
  const auto target = fetafix::testing::channel_normalising_model(2);
  auto findings = localize::check_input_structure(source, target);
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u);
  auto candidates = plan_all(source, target, *findings);
  ASSERT_EQ(candidates.size(), 1u);
  EXPECT_EQ(candidates[0].edits.size(), 3u) << candidates[0].description;  // the three Gathers
  const auto repaired = apply_and_verify(target, candidates);
  EXPECT_EQ(output_error(source, repaired), 0.0);
  EXPECT_GT(output_error(source, target), 1e-3);
}

// [1,3,8,8] -> Conv 1x1 -> Relu -> [Transpose(perm)] -> Flatten -> Gemm -> [1,5].
onnx::ModelProto flatten_head_model(std::optional<std::vector<int64_t>> perm_before_flatten) {
  GraphBuilder g("flatten_head", 13);
  std::string x = g.input("image", DType::kFloat32, {1, 3, 8, 8});
  g.initializer("conv_w", random_tensor({4, 3, 1, 1}, 21));
  x = g.node("Conv", "conv", {x, "conv_w"});
  x = g.node("Relu", "relu", {x});
  if (perm_before_flatten) x = g.node("Transpose", "to_nhwc", {x}, {Attr::ints("perm", *perm_before_flatten)});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  g.initializer("fc_w", random_tensor({256, 5}, 22, 0.1f));
  g.node("Gemm", "fc", {x, "fc_w"}, {}, "scores");
  g.output("scores", DType::kFloat32, {1, 5});
  return g.build();
}

TEST(RepairTSS, NhwcOrderedFlattenGetsATransposeBeforeIt) {
  const auto source = flatten_head_model(std::nullopt);
  const auto target = flatten_head_model(std::vector<int64_t>{0, 2, 3, 1});
  data::Image image{12, 10, std::vector<uint8_t>(12 * 10 * 3)};
  for (size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<uint8_t>((i * 37) % 251);
  const auto torch = data::preset_by_name("torch").value();
  auto findings = localize::check_flatten_structure({&source, "s", torch}, {&target, "t", torch}, image, {}, {1, 1e-4});
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u);
  auto candidates = plan_all(source, target, *findings);
  ASSERT_EQ(candidates.size(), 1u);
  const auto repaired = apply_and_verify(target, candidates);
  EXPECT_EQ(repaired.graph().node_size(), target.graph().node_size() + 1);
  EXPECT_LT(output_error(source, repaired), 1e-6);
  EXPECT_GT(output_error(source, target), 1e-3);
}

// ---- ID --------------------------------------------------------------------------------------

onnx::ModelProto pooled_classifier(int64_t size) {
  GraphBuilder g("classifier", 13);
  std::string x = g.input("image", DType::kFloat32, {1, 3, size, size});
  g.initializer("w", random_tensor({4, 3, 3, 3}, 31, 0.3f));
  x = g.node("Conv", "conv", {x, "w"}, {Attr::ints("strides", {2, 2})});
  x = g.node("GlobalAveragePool", "gap", {x});
  x = g.node("Flatten", "flatten", {x});
  g.initializer("fc_w", random_tensor({4, 5}, 32, 0.3f));
  g.node("Gemm", "fc", {x, "fc_w"}, {}, "scores");
  g.output("scores", DType::kFloat32, {1, 5});
  return g.build();
}

TEST(RepairID, TargetInputTakesTheSourceDimensions) {
  const auto source = pooled_classifier(224);
  const auto target = pooled_classifier(299);
  auto findings = localize::check_input_dimensions(source, target);
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u);
  const auto repaired = apply_and_verify(target, plan_all(source, target, *findings));
  auto again = localize::check_input_dimensions(source, repaired);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(output_error(source, repaired), 0.0);  // the 299 Target cannot even take the input
}

// ---- CG --------------------------------------------------------------------------------------

TEST(RepairCG, ExtraGraphOutputIsRemoved) {
  const auto source = cnn();
  auto target = cnn();
  onnx::ValueInfoProto extra;
  extra.set_name("conv1_relu");
  extra.mutable_type()->mutable_tensor_type()->set_elem_type(1);
  *target.mutable_graph()->add_output() = extra;
  auto none = localize::check_extra_outputs(source, source);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
  auto found = localize::check_extra_outputs(source, target);
  ASSERT_TRUE(found.ok()) << found.error().message;
  const auto& findings = *found;
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].type(), FaultType::kCG);
  EXPECT_EQ(findings[0].target_node, "conv1_relu");
  const auto repaired = apply_and_verify(target, plan_all(source, target, findings));
  EXPECT_EQ(model::serialize_model(repaired), model::serialize_model(source));
}

TEST(RepairCG, BrokenBatchNormSubgraphIsReplacedByTheSources) {
  using namespace fetafix::testing::layer;
  CnnSpec mul_add;
  mul_add.bn = CnnSpec::Bn::kMulAdd;
  const auto source = small_cnn(mul_add);
  auto target = small_cnn(mul_add);
  // The converter lost the shift: Mul feeds Relu directly.
  auto* relu = node_named(target, "relu1");
  auto* add = node_named(target, "bn1_add");
  ASSERT_TRUE(relu && add);
  relu->set_input(0, add->input(0));
  auto* nodes = target.mutable_graph()->mutable_node();
  for (int i = 0; i < nodes->size(); ++i)
    if (nodes->Get(i).name() == "bn1_add") nodes->erase(nodes->begin() + i);
  auto cg = localize::check_graph(source, target, cnn_pairs());
  ASSERT_TRUE(cg.ok()) << cg.error().message;
  ASSERT_EQ(cg->size(), 1u);
  auto candidates = plan_all(source, target, *cg);
  ASSERT_EQ(candidates.size(), 1u);
  const auto repaired = apply_and_verify(target, candidates);
  // The region ends at the matched layer, so conv2 itself is now the Source's copy.
  auto pairs = cnn_pairs();
  pairs[1].target_node = "fetafix_cg_conv2";
  auto again = localize::check_graph(source, repaired, pairs);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(output_error(source, repaired), 0.0);
  EXPECT_GT(output_error(source, target), 1e-4);
}

// ---- PP and errors ---------------------------------------------------------------------------

TEST(RepairPP, PresetIsCarriedWithoutGraphEdits) {
  localize::PreprocessingEvidence e;
  e.trials.resize(2);
  e.trials[0].preset = "raw";
  e.trials[0].measured = true;
  e.trials[1].preset = "caffe";
  e.trials[1].measured = true;
  e.trials[1].bound = data::preset_by_name("caffe").value();
  e.best = 1;
  const Finding f = localize::make_finding(std::move(e), "", "", "caffe is best");
  const auto m = cnn();
  auto c = plan_repair(m, m, f);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->edits.empty());
  ASSERT_TRUE(c->preset.has_value());
  EXPECT_EQ(c->preset->to_json(), data::preset_by_name("caffe").value().to_json());
  Patch patch;
  patch.preprocess = c->preset;
  auto back = patch_from_json(patch_to_json(patch));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->preprocess.has_value());
  EXPECT_EQ(back->preprocess->to_json(), c->preset->to_json());
}

TEST(RepairErrors, MissingEvidenceAndUnknownNodesAreOneLineErrors) {
  const auto m = cnn();
  localize::WeightsEvidence weights;
  weights.role = "weight";
  weights.source_input_index = weights.input_index = 1;
  const Finding wb = localize::make_finding(weights, "nope", "nope", "weight of 'nope'");
  auto r = plan_repair(m, m, wb);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nope"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  // Ranks that differ leave no shape to copy.
  localize::InputDimensionsEvidence dims;
  dims.rank_differs = true;
  const Finding id = localize::make_finding(dims, "", "", "input ranks differ");
  auto e = plan_repair(m, m, id);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("ranks differ"), std::string::npos) << e.error().message;
  EXPECT_EQ(e.error().message.find('\n'), std::string::npos);
  localize::HyperparametersEvidence pads;
  pads.attribute = "pads";
  pads.target_form = "pad_node";
  const Finding lh = localize::make_finding(pads, "conv1", "conv1", "pads");
  EXPECT_FALSE(plan_repair(m, m, lh).ok());
}

TEST(RepairPatch, BadPatchesAreRefused) {
  EXPECT_FALSE(patch_from_json(json::array()).ok());
  EXPECT_FALSE(patch_from_json({{"schema", "other/1"}, {"edits", json::array()}}).ok());
  EXPECT_FALSE(patch_from_json({{"schema", kPatchSchema}, {"edits", json::array()}, {"extra", 1}}).ok());
  EXPECT_FALSE(patch_from_json({{"schema", kPatchSchema}, {"edits", {{{"kind", "explode"}}}}}).ok());
  auto ok = patch_from_json({{"schema", kPatchSchema}, {"preprocess", nullptr}, {"edits", json::array()}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  // A patch naming a tensor the model lacks changes nothing.
  Patch p;
  p.edits.push_back(model::Edit::set_weight("missing", random_tensor({2}, 1)));
  auto m = cnn();
  const std::string before = model::serialize_model(m);
  EXPECT_FALSE(apply_patch(p, m).ok());
  EXPECT_EQ(model::serialize_model(m), before);
}


}  // namespace
}  // namespace fetafix::repair
