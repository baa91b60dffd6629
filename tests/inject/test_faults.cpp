// Each fault changes exactly what its ground truth says (diffing the models) and replays exactly.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <set>

#include "data/preprocess.h"
#include "inject/fault_spec.h"
#include "inject_helpers.h"
#include "match/cnn_fixture.h"
#include "model/attributes.h"
#include "model/graph.h"
#include "normalising_model.h"

namespace fetafix::inject {
namespace {

using testing::must_inject;
using Entries = std::vector<std::string>;

Entries diff(const onnx::ModelProto& a, const onnx::ModelProto& b) { return diff_models(a, b); }

const onnx::NodeProto& node_named(const onnx::ModelProto& m, const std::string& name) {
  return m.graph().node(static_cast<int>(*model::find_node(m.graph(), name)));
}

TEST(InjectWeights, Fp16RoundsEveryFloatWeightToHalfPrecision) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"wb:fp16"});
  const auto& entry = r.ground_truth["injections"][0];
  EXPECT_EQ(entry["type"], "WB");
  EXPECT_EQ(entry["fault"], "fp16");
  // Random float32 weights are essentially never exact in float16: every one changes.
  Entries expected;
  for (const auto& w : model::list_weights(original)) expected.push_back("weight-changed " + w.value);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(diff(original, r.model), expected);
  for (const auto& w : model::list_weights(original)) {
    const auto before = model::get_weight(original, w.value)->to_float();
    const auto after = model::get_weight(r.model, w.value)->to_float();
    for (size_t i = 0; i < before.size(); ++i) {
      EXPECT_LE(std::fabs(after[i] - before[i]), std::fabs(before[i]) * 0x1p-11f + 0x1p-25f) << w.value;
      if (std::fabs(before[i]) >= 0x1p-14f) {  // normal float16 range: the fixture's own rounding agrees
        EXPECT_EQ(after[i], fetafix::testing::round_to_half_precision(before[i])) << w.value << "[" << i << "]";
      } else {  // subnormal float16: a multiple of 2^-24
        EXPECT_EQ(after[i] * 0x1p24f, std::nearbyint(after[i] * 0x1p24f)) << w.value << "[" << i << "]";
      }
    }
  }
  EXPECT_TRUE(testing::strings_of(entry["nodes"]).count("conv1"));
}

TEST(InjectWeights, Bf16OnChosenLayersOnly) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"wb:bf16:layers=conv1,fc"});
  EXPECT_EQ(diff(original, r.model),
            (Entries{"weight-changed conv1_b", "weight-changed conv1_w", "weight-changed fc_b", "weight-changed fc_w"}));
  EXPECT_EQ(testing::strings_of(r.ground_truth["injections"][0]["nodes"]), (std::set<std::string>{"conv1", "fc"}));
  for (float f : model::get_weight(r.model, "fc_w")->to_float())
    EXPECT_EQ(std::bit_cast<uint32_t>(f) & 0xFFFFu, 0u);  // bfloat16 keeps the upper 16 bits only
}

size_t distinct_values(const std::vector<float>& v) { return std::set<float>(v.begin(), v.end()).size(); }

TEST(InjectWeights, Int8PerTensorQuantizesLayerKernelsNotBiases) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"wb:int8-tensor"});
  Entries expected;
  for (const auto& spec : fetafix::testing::cnn_layers()) expected.push_back(std::string("weight-changed ") + spec.name + "_w");
  expected.push_back("weight-changed fc_w");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(diff(original, r.model), expected);
  const auto before = model::get_weight(original, "conv5_w")->to_float();
  const auto after = model::get_weight(r.model, "conv5_w")->to_float();
  float max_abs = 0;
  for (float f : before) max_abs = std::max(max_abs, std::fabs(f));
  EXPECT_LE(distinct_values(after), 255u);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_LE(std::fabs(after[i] - before[i]), max_abs / 127 / 2 * 1.001f);
}

TEST(InjectWeights, Int8PerChannelUsesOneScalePerOutputChannel) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"wb:int8-channel:layers=conv5"});
  EXPECT_EQ(diff(original, r.model), (Entries{"weight-changed conv5_w"}));
  const Tensor before = *model::get_weight(original, "conv5_w");
  const Tensor after = *model::get_weight(r.model, "conv5_w");
  const int64_t per_channel = before.numel() / before.shape[0];
  for (int64_t o = 0; o < before.shape[0]; ++o) {
    float max_abs = 0;
    for (int64_t k = 0; k < per_channel; ++k) max_abs = std::max(max_abs, std::fabs(before.data<float>()[o * per_channel + k]));
    for (int64_t k = 0; k < per_channel; ++k) {
      const float q = after.data<float>()[o * per_channel + k] / (max_abs / 127.0f);
      EXPECT_NEAR(q, std::nearbyint(q), 1e-3) << "channel " << o;  // a multiple of this channel's own scale
    }
  }
}

TEST(InjectHyperparameters, DropPadsOnTheFirstPaddedConv) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"lh:drop-pads"});
  EXPECT_EQ(diff(original, r.model), (Entries{"attribute-removed conv1.pads"}));
  EXPECT_EQ(r.ground_truth["injections"][0]["nodes"], nlohmann::json::array({"conv1"}));
  EXPECT_EQ(r.ground_truth["injections"][0]["details"]["changes"][0]["old"], nlohmann::json::array({1, 1, 1, 1}));
}

TEST(InjectHyperparameters, DropPadsOnAllPaddedConvs) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"lh:drop-pads:node=all"});
  EXPECT_EQ(diff(original, r.model), (Entries{"attribute-removed conv1.pads", "attribute-removed conv2.pads",
                                               "attribute-removed conv3.pads", "attribute-removed conv4.pads",
                                               "attribute-removed conv6.pads"}));
}

TEST(InjectHyperparameters, StridesDilationsAndEpsilon) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"lh:strides=2:node=conv2", "lh:dilations=2:node=conv3", "lh:epsilon=0.01"});
  EXPECT_EQ(diff(original, r.model), (Entries{"attribute-added conv3.dilations", "attribute-changed conv1_bn.epsilon",
                                               "attribute-changed conv2.strides"}));
  EXPECT_EQ(*model::get_ints(node_named(r.model, "conv2"), "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(*model::get_ints(node_named(r.model, "conv3"), "dilations"), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(*model::get_float(node_named(r.model, "conv1_bn"), "epsilon"), 0.01f);
  EXPECT_EQ(r.ground_truth["injections"].size(), 3u);
}

onnx::ModelProto relu6_model() {
  GraphBuilder b("relu6", 13);
  std::string x = b.input("x", DType::kFloat32, {1, 4});
  b.initializer("lo", float_tensor({}, {0.f}));
  b.initializer("hi", float_tensor({}, {6.f}));
  x = b.node("Clip", "relu6", {x, "lo", "hi"}, {}, "y");
  b.output("y", DType::kFloat32, {1, 4});
  return b.build();
}

TEST(InjectHyperparameters, ClipMaxRemoved) {
  const auto original = relu6_model();
  const auto r = must_inject(original, {"lh:clip-max-removed"});
  EXPECT_EQ(diff(original, r.model), (Entries{"node-inputs relu6", "weight-removed hi"}));
  const auto out = testing::run_model(r.model, float_tensor({1, 4}, {-1.f, 3.f, 7.f, 100.f}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to_float(), (std::vector<float>{0.f, 3.f, 7.f, 100.f}));
}

TEST(InjectStructure, ExtraOutput) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"cg:extra-output"});
  EXPECT_EQ(diff(original, r.model), (Entries{"output-added flat"}));
  const auto named = must_inject(original, {"cg:extra-output=conv3_relu"});
  EXPECT_EQ(diff(original, named.model), (Entries{"output-added conv3_relu"}));
  EXPECT_EQ(testing::run_model(named.model, uniform_tensor({1, 3, 32, 32}, 1, 0, 1)).size(), 2u);
}

TEST(InjectStructure, InputResizedGraphLeftAsIs) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"id:input-size=299"});
  EXPECT_EQ(diff(original, r.model), (Entries{"input-changed input"}));
  EXPECT_EQ(r.ground_truth["injections"][0]["details"]["new_shape"], nlohmann::json::array({1, 3, 299, 299}));
  // A fully convolutional model with global pooling still runs on the new size.
  EXPECT_EQ(testing::run_model(r.model, uniform_tensor({1, 3, 299, 299}, 2, 0, 1)).size(), 1u);
}

TEST(InjectStructure, InputTransposeWithTheWrongPermutation) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"tss:input-transpose=0,3,2,1"});
  EXPECT_EQ(diff(original, r.model), (Entries{"input-changed input", "node-added input_to_nchw", "node-inputs conv1"}));
  EXPECT_EQ(*model::get_ints(node_named(r.model, "input_to_nchw"), "perm"), (std::vector<int64_t>{0, 3, 2, 1}));
  // Fed NHWC, it computes the Source on the image transposed (H and W swapped).
  const Tensor x = uniform_tensor({1, 3, 32, 32}, 3, 0, 1);
  Tensor swapped(DType::kFloat32, {1, 3, 32, 32});
  for (int c = 0; c < 3; ++c)
    for (int h = 0; h < 32; ++h)
      for (int w = 0; w < 32; ++w) swapped.data<float>()[(c * 32 + w) * 32 + h] = x.data<float>()[(c * 32 + h) * 32 + w];
  testing::expect_close(testing::run_model(original, swapped)[0],
                        testing::run_model(r.model, testing::nchw_to_nhwc(x))[0], 1e-4, "wrong perm");
  auto faithful = inject(original, testing::specs_of({"tss:input-transpose=0,3,1,2"}));
  ASSERT_FALSE(faithful.ok());
  EXPECT_NE(faithful.error().message.find("benign:nhwc"), std::string::npos) << faithful.error().message;
}

TEST(InjectStructure, InputTransposeOnAnNhwcInputMakesItNchw) {
  // An NHWC model (an NCHW one made NHWC faithfully) gets an NCHW input and a wrong Transpose.
  const auto cnn = fetafix::testing::build_cnn();
  const auto nhwc = must_inject(cnn, {"benign:nhwc"}).model;
  const auto r = must_inject(nhwc, {"tss:input-transpose=0,3,2,1"});
  EXPECT_EQ(r.ground_truth["injections"][0]["details"]["new_layout"], "NCHW");
  EXPECT_EQ(r.ground_truth["injections"][0]["details"]["new_shape"], nlohmann::json::array({1, 3, 32, 32}));
  // Fed NCHW, it computes the original on the image with H and W swapped.
  const Tensor x = uniform_tensor({1, 3, 32, 32}, 8, 0, 1);
  Tensor swapped(DType::kFloat32, {1, 3, 32, 32});
  for (int c = 0; c < 3; ++c)
    for (int h = 0; h < 32; ++h)
      for (int w = 0; w < 32; ++w) swapped.data<float>()[(c * 32 + w) * 32 + h] = x.data<float>()[(c * 32 + h) * 32 + w];
  testing::expect_close(testing::run_model(cnn, swapped)[0], testing::run_model(r.model, x)[0], 1e-4, "wrong perm");
  auto faithful = inject(nhwc, testing::specs_of({"tss:input-transpose=0,2,3,1"}));
  ASSERT_FALSE(faithful.ok());
  EXPECT_NE(faithful.error().message.find("faithful"), std::string::npos) << faithful.error().message;
  EXPECT_FALSE(inject(nhwc, testing::specs_of({"benign:nhwc"})).ok());  // already NHWC
}

TEST(InjectStructure, GatherAxesLeftForTheOldLayout) {
  const auto original = testing::normalising_cnn();
  const auto r = must_inject(original, {"tss:gather-axis"});
  EXPECT_EQ(diff(original, r.model),
            (Entries{"input-changed input", "node-added concat_to_nchw", "node-inputs conv1"}));
  const auto& details = r.ground_truth["injections"][0]["details"];
  EXPECT_EQ(details["transpose_after"], "concat");
  EXPECT_EQ(details["first_layer"], "conv1");
  EXPECT_EQ(details["new_shape"], nlohmann::json::array({-1, 24, 24, 3}));
  std::vector<std::string> stale;
  for (const auto& s : details["stale_axis_nodes"]) stale.push_back(s["node"].get<std::string>());
  EXPECT_EQ(stale, (std::vector<std::string>{"gather_0", "unsqueeze_0", "gather_1", "unsqueeze_1", "gather_2",
                                             "unsqueeze_2", "concat"}));
  EXPECT_EQ(details["stale_axis_nodes"][0]["value"], 1);  // the channel axis of NCHW: rows of NHWC

  // It runs (the Gathers take rows 0..2 of the NHWC image), and computes something else...
  const Tensor x = uniform_tensor({1, 3, 24, 24}, 9, 0, 1);
  const Tensor source_out = testing::run_model(original, x)[0];
  const auto target_out = testing::run_model(r.model, testing::nchw_to_nhwc(x));
  ASSERT_EQ(target_out.size(), 1u);
  ASSERT_EQ(target_out[0].shape, source_out.shape);
  double max_diff = 0;
  for (size_t i = 0; i < source_out.to_float().size(); ++i)
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(source_out.to_float()[i] - target_out[0].to_float()[i])));
  EXPECT_GT(max_diff, 1e-3);
  // ...and only the stale axes are wrong: Gathers on the NHWC channel axis and the Transpose
  // made an identity (the Unsqueezes and Concat then rebuild NCHW) give the Source's outputs.
  onnx::ModelProto fixed = r.model;
  for (auto& n : *fixed.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Gather") model::set_int(n, "axis", 3);
    if (n.op_type() == "Transpose") model::set_ints(n, "perm", {0, 1, 2, 3});
  }
  testing::expect_close(source_out, testing::run_model(fixed, testing::nchw_to_nhwc(x))[0], 1e-5, "stale axes fixed");

  // Models it does not fit are refused with the reason.
  auto direct = inject(fetafix::testing::build_cnn(), testing::specs_of({"tss:gather-axis"}));
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.error().message.find("feeds 'conv1' directly"), std::string::npos) << direct.error().message;
  auto nhwc = inject(r.model, testing::specs_of({"tss:gather-axis"}));
  ASSERT_FALSE(nhwc.ok());
  EXPECT_NE(nhwc.error().message.find("is not NCHW"), std::string::npos) << nhwc.error().message;
}

TEST(InjectStructure, AddPadBeforeAConv) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"cg:add-pad:node=conv5"});
  EXPECT_EQ(diff(original, r.model), (Entries{"node-added conv5_injected_pad", "node-inputs conv5",
                                               "weight-added conv5_injected_pads"}));
}

TEST(InjectStructure, PresetExpectsAnotherPreprocessing) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"pp:preset=caffe"});
  const auto& details = r.ground_truth["injections"][0]["details"];
  EXPECT_EQ(details["target_preset"], "caffe");
  EXPECT_EQ(details["source_preset"], "torch");
  // The Target fed a photo preprocessed as caffe computes what the Source does on it as torch.
  const auto torch = *data::preset_by_name("torch");
  const auto caffe = *data::preset_by_name("caffe");
  const Tensor pixels = uniform_tensor({1, 3, 32, 32}, 4, 0, 255);  // RGB, NCHW
  auto preprocess = [&](const data::Preset& p) {
    Tensor t(DType::kFloat32, {1, 3, 32, 32});
    for (int c = 0; c < 3; ++c) {
      const int from = p.channels == data::ChannelOrder::kBGR ? 2 - c : c;
      for (int k = 0; k < 32 * 32; ++k)
        t.data<float>()[c * 1024 + k] = (pixels.data<float>()[from * 1024 + k] * p.scale - p.mean[c]) / p.std[c];
    }
    return t;
  };
  testing::expect_close(testing::run_model(original, preprocess(torch))[0],
                        testing::run_model(r.model, preprocess(caffe))[0], 1e-4, "caffe-fed target");
}

TEST(Inject, SeveralFaultsInOneModelReplayInOrder) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"wb:fp16:layers=conv2", "lh:drop-pads:node=conv6", "cg:extra-output"});
  EXPECT_EQ(r.ground_truth["injections"].size(), 3u);
  EXPECT_TRUE(r.ground_truth["replayable"].get<bool>());
}

TEST(Inject, NodeRandomDependsOnTheSeedOnly) {
  const auto original = fetafix::testing::build_cnn();
  const auto a = must_inject(original, {"lh:drop-pads:node=random"}, 7);
  const auto b = must_inject(original, {"lh:drop-pads:node=random"}, 7);
  EXPECT_EQ(a.ground_truth["injections"][0]["nodes"], b.ground_truth["injections"][0]["nodes"]);
  std::set<std::string> picked;
  for (uint64_t seed = 0; seed < 12; ++seed)
    picked.insert(must_inject(original, {"lh:drop-pads:node=random"}, seed).ground_truth["injections"][0]["nodes"][0]);
  EXPECT_GT(picked.size(), 1u);
}

TEST(Inject, SameInputsGiveTheSameBytes) {
  const auto original = fetafix::testing::build_cnn();
  for (const std::vector<std::string>& specs :
       {std::vector<std::string>{"wb:int8-channel", "lh:strides=2:node=conv1"}, {"benign:fold-bn", "cg:transpose-pair"},
        {"benign:weights-as-constants"}, {"pp:preset=tf"}}) {
    auto a = inject(original, testing::specs_of(specs));
    auto b = inject(original, testing::specs_of(specs));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(model::serialize_model(a->model), model::serialize_model(b->model));
    EXPECT_EQ(a->ground_truth.dump(), b->ground_truth.dump());
  }
}

TEST(Inject, ErrorsNameTheSpecAndWhatIsWrong) {
  const auto original = relu6_model();
  struct Case {
    std::string spec, message_part;
  };
  for (const auto& c : {Case{"lh:drop-pads", "no Conv/ConvTranspose/MaxPool/AveragePool with non-zero pads"},
                        Case{"lh:strides=2:node=nope", "no node named 'nope'"},
                        Case{"lh:strides=2:node=relu6", "node 'relu6' (Clip) is not a"},
                        Case{"lh:strides=x", "strides must be an integer"},
                        Case{"benign:fold-bn", "no BatchNormalization"},
                        Case{"id:input-size=64", "not an image batch"}}) {
    auto r = inject(original, testing::specs_of({c.spec}));
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.error().message.rfind("fault '" + c.spec + "': ", 0), 0u) << r.error().message;
    EXPECT_NE(r.error().message.find(c.message_part), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  // A fault that would change nothing is refused rather than recorded.
  auto cnn = fetafix::testing::build_cnn();
  auto same = inject(cnn, testing::specs_of({"lh:strides=1:node=conv1"}));
  ASSERT_FALSE(same.ok());
  EXPECT_FALSE(inject(cnn, {}).ok());
}

TEST(FaultSpec, Grammar) {
  auto s = parse_fault_spec("wb:int8-channel:layers=conv1,conv2:foo=bar");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->type, FaultType::kWB);
  EXPECT_EQ(s->fault, "int8-channel");
  EXPECT_EQ(s->nodes, (std::vector<std::string>{"conv1", "conv2"}));
  EXPECT_EQ(s->options.at("foo"), "bar");
  auto t = parse_fault_spec("TSS:input-transpose=0,3,2,1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "0,3,2,1");
  for (const auto& bad : {"wb", "wb:", "xx:fp16", "wb:fp17", "wb:fp16:layers", "wb:fp16:node=all,conv1",
                          "lh:strides=", "wb:fp16:a=1:a=2", "wb:fp16:node=a::"}) {
    auto r = parse_fault_spec(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.rfind(std::string("fault '") + bad + "'", 0), 0u) << r.error().message;
    }
  }
  const auto all = supported_faults();
  EXPECT_TRUE(std::count(all.begin(), all.end(), "tss:gather-axis"));
  EXPECT_TRUE(parse_fault_spec("tss:gather-axis").ok());
}

}  // namespace
}  // namespace fetafix::inject
