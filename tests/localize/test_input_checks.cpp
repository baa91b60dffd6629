#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "localize/input_checks.h"
#include "model/attributes.h"
#include "model/builder.h"
#include "model/model.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/models.h"

namespace fetafix::localize {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Two red, two green and two blue textured photos.
fs::path make_colour_folder(const std::string& name) {
  fs::path dir = testing::temp_dir(name);
  fs::create_directories(dir);
  struct C { const char* file; uint8_t r, g, b; };
  const C colours[] = {{"r1.png", 210, 40, 30}, {"r2.png", 190, 60, 50}, {"g1.png", 40, 200, 50},
                       {"g2.png", 60, 180, 40}, {"b1.png", 30, 50, 210}, {"b2.png", 50, 40, 190}};
  uint32_t seed = 7;
  for (const C& c : colours)
    testing::write_png_rgb(dir / c.file, 40, 30, testing::textured_solid(40, 30, c.r, c.g, c.b, seed++));
  return dir;
}

PreprocessingCheckOptions quiet_pp_options() {
  PreprocessingCheckOptions o;
  o.compare.threads = 1;
  o.compare.top_k = 2;
  o.compare.batch_size = 4;  // 6 images: one full and one partial batch
  o.compare.progress = ProgressMode::kQuiet;
  return o;
}

data::Preset preset(const std::string& name) { return data::preset_by_name(name).value(); }

// Input -> Identity -> output: enough for the declared-shape check.
onnx::ModelProto input_only_model(std::vector<int64_t> shape) {
  GraphBuilder g("input_only", 13);
  std::string x = g.input("image", DType::kFloat32, shape);
  g.node("Identity", "id", {x}, {}, "out");
  g.output("out", DType::kFloat32, shape);
  return g.build();
}

// NCHW [1,3,8,8] -> Conv; or NHWC [1,8,8,3] -> Transpose(perm) -> Conv.
onnx::ModelProto first_conv_model(std::optional<std::vector<int64_t>> nhwc_perm) {
  GraphBuilder g("first_conv", 13);
  std::string x = nhwc_perm ? g.input("image", DType::kFloat32, {1, 8, 8, 3}) : g.input("image", DType::kFloat32, {1, 3, 8, 8});
  if (nhwc_perm) x = g.node("Transpose", "to_nchw", {x}, {Attr::ints("perm", *nhwc_perm)});
  g.initializer("w", random_tensor({4, 3, 3, 3}, 11));
  g.node("Conv", "conv", {x, "w"}, {Attr::ints("pads", {1, 1, 1, 1})}, "out");
  g.output("out", DType::kFloat32, {1, 4, 8, 8});
  return g.build();
}


// [1,3,8,8] -> Conv 1x1 (4 channels) -> Relu -> [Transpose(perm)] -> Flatten -> Gemm -> [1,5].
onnx::ModelProto flatten_head_model(std::optional<std::vector<int64_t>> perm_before_flatten, bool pool = false) {
  GraphBuilder g("flatten_head", 13);
  std::string x = g.input("image", DType::kFloat32, {1, 3, 8, 8});
  g.initializer("conv_w", random_tensor({4, 3, 1, 1}, 21));
  x = g.node("Conv", "conv", {x, "conv_w"});
  x = g.node("Relu", "relu", {x});
  if (pool) x = g.node("GlobalAveragePool", "pool", {x});
  if (perm_before_flatten) x = g.node("Transpose", "to_nhwc", {x}, {Attr::ints("perm", *perm_before_flatten)});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  const int64_t features = pool ? 4 : 256;
  g.initializer("fc_w", random_tensor({features, 5}, 22, 0.1f));
  g.node("Gemm", "fc", {x, "fc_w"}, {}, "scores");
  g.output("scores", DType::kFloat32, {1, 5});
  return g.build();
}

data::Image gradient_image(int w, int h) {
  data::Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>((x * 37 + y * 11 + c * 70) % 256);
  return img;
}

}  // namespace

// ---- PP --------------------------------------------------------------------------------------

TEST(InputChecksPP, BgrTargetFedTorchIsFixedByItsPresetReversed) {
  const fs::path dir = make_colour_folder("input_checks_pp_bgr");
  // The Target reverses the channel axis first: it expects BGR, as Caffe-style models do.
  auto src = testing::dominant_channel_model(false), tgt = testing::dominant_channel_model(true);
  auto r = measure_preprocessing({&src, "source.onnx", preset("torch")}, {&tgt, "target.onnx", preset("torch")}, dir,
                                 quiet_pp_options());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->images_compared, 6u);
  ASSERT_EQ(r->trials.size(), 8u);  // target, source, target reversed, torch, tf, caffe, raw, uint8
  EXPECT_EQ(r->trials[0].role, "target");
  EXPECT_EQ(r->trials[0].disagreeing, 4u);  // red and blue images swap
  EXPECT_EQ(r->trials[1].same_as, "torch");  // the Source's preset is the Target's here
  EXPECT_EQ(r->trials[1].disagreeing, 4u);
  EXPECT_EQ(r->trials[2].role, "target_reversed");
  EXPECT_EQ(r->trials[2].preset, "torch-bgr");
  EXPECT_EQ(r->trials[2].disagreeing, 0u);
  EXPECT_EQ(r->trials[5].preset, "caffe");  // BGR as well: it cures it too, but comes later
  EXPECT_EQ(r->trials[5].disagreeing, 0u);
  const PresetTrial& uint8 = r->trials.back();
  EXPECT_EQ(uint8.preset, "uint8");
  EXPECT_FALSE(uint8.measured);
  EXPECT_NE(uint8.skipped_reason.find("float32"), std::string::npos) << uint8.skipped_reason;

  auto findings = preprocessing_findings(*r);
  ASSERT_EQ(findings.size(), 1u);
  const Finding& f = findings[0];
  EXPECT_EQ(f.type(), FaultType::kPP);
  const json e = localize::evidence_json(f);
  EXPECT_EQ(e["best_preset"], "torch-bgr");
  EXPECT_EQ(e["best_role"], "target_reversed");
  EXPECT_EQ(e["best_disagreement"], 0.0);
  EXPECT_NEAR(e["current_disagreement"].get<double>(), 4.0 / 6, 1e-12);
  EXPECT_EQ(e["best_preset_json"]["channels"], "BGR");
  // Each colour keeps its own normalisation: torch's mean and std, reversed with the channels.
  EXPECT_NEAR(e["best_preset_json"]["mean"][0].get<double>(), preset("torch").mean[2], 1e-6);
  EXPECT_NEAR(e["best_preset_json"]["std"][2].get<double>(), preset("torch").std[0], 1e-6);
  EXPECT_EQ(e["trials"].size(), 8u);
  EXPECT_NE(f.summary.find("channel-reversed"), std::string::npos) << f.summary;
  // The named preset really makes the two agree: compare under it.
  compare::CompareOptions co = quiet_pp_options().compare;
  auto check = compare::compare_models({&src, "s", preset("torch")}, {&tgt, "t", r->trials[2].bound}, dir, co);
  ASSERT_TRUE(check.ok()) << check.error().message;
  EXPECT_EQ(check->summary.disagreeing, 0u);
}

TEST(InputChecksPP, IdenticalModelsGiveNoFinding) {
  const fs::path dir = make_colour_folder("input_checks_pp_identical");
  auto m = testing::dominant_channel_model(false);
  auto findings = check_preprocessing({&m, "a.onnx", preset("torch")}, {&m, "b.onnx", preset("torch")}, dir,
                                      quiet_pp_options());
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  EXPECT_TRUE(findings->empty());
}

TEST(InputChecksPP, SourcePresetIsTriedOnTheTarget) {
  const fs::path dir = make_colour_folder("input_checks_pp_source");
  auto m = testing::dominant_channel_model(false);
  // The Target (the same model) is fed BGR by mistake: the Source's own preset is the cure.
  data::Preset bgr_raw = preset("raw");
  bgr_raw.name = "raw_bgr";
  bgr_raw.channels = data::ChannelOrder::kBGR;
  PreprocessingCheckOptions o = quiet_pp_options();
  o.presets = {"caffe"};  // BGR as well: no help
  auto r = measure_preprocessing({&m, "s", preset("raw")}, {&m, "t", bgr_raw}, dir, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->trials.size(), 4u);
  EXPECT_EQ(r->trials[0].disagreeing, 4u);
  EXPECT_EQ(r->trials[1].role, "source");
  EXPECT_EQ(r->trials[1].disagreeing, 0u);
  EXPECT_EQ(r->trials[2].same_as, "raw");  // raw_bgr reversed is the Source's raw: measured once
  EXPECT_EQ(r->trials[3].disagreeing, 4u);
  auto findings = preprocessing_findings(*r);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(localize::evidence_json(findings[0])["best_role"], "source");
  EXPECT_EQ(localize::evidence_json(findings[0])["best_preset"], "raw");
}

TEST(InputChecksPP, MissingFolderIsAnError) {
  auto m = testing::dominant_channel_model(false);
  auto r = check_preprocessing({&m, "a", preset("torch")}, {&m, "b", preset("torch")}, "/nonexistent/fetafix_images",
                               quiet_pp_options());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("fetafix_images"), std::string::npos) << r.error().message;
}

// ---- ID --------------------------------------------------------------------------------------

TEST(InputChecksID, FixedSpatialSizeDiffers) {
  auto src = input_only_model({1, 3, 224, 224}), tgt = input_only_model({1, 3, 299, 299});
  auto r = check_input_dimensions(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const Finding& f = (*r)[0];
  EXPECT_EQ(f.type(), FaultType::kID);
  const json d = localize::evidence_json(f)["differences"];
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0]["axis"], "H");
  EXPECT_EQ(d[0]["source"], 224);
  EXPECT_EQ(d[0]["target"], 299);
  EXPECT_EQ(d[0]["kind"], "size");
  EXPECT_EQ(d[1]["axis"], "W");
  EXPECT_EQ(localize::evidence_json(f)["target_shape_expected"], json({1, 3, 224, 224}));
  EXPECT_NE(f.summary.find("299"), std::string::npos) << f.summary;
}

TEST(InputChecksID, DynamicVersusFixedBatch) {
  auto src = input_only_model({-1, 3, 224, 224}), tgt = input_only_model({1, 3, 224, 224});
  auto r = check_input_dimensions(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const json d = localize::evidence_json((*r)[0])["differences"];
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0]["axis"], "N");
  EXPECT_EQ(d[0]["source"], "N");  // the dim_param
  EXPECT_EQ(d[0]["kind"], "dynamic_in_source_fixed_in_target");
  // And the other way round.
  auto back = check_input_dimensions(tgt, src);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ(localize::evidence_json((*back)[0])["differences"][0]["kind"], "fixed_in_source_dynamic_in_target");
}

TEST(InputChecksID, LayoutDifferenceWithSameSizeIsNotAFinding) {
  auto nchw = input_only_model({1, 3, 224, 224}), nhwc = input_only_model({1, 224, 224, 3});
  auto r = check_input_dimensions(nchw, nhwc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
  auto same = check_input_dimensions(nchw, nchw);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty());
}

TEST(InputChecksID, SizeDifferenceAcrossLayoutsIsPlacedInTargetLayout) {
  auto src = input_only_model({1, 3, 224, 224}), tgt = input_only_model({1, 299, 299, 3});
  auto r = check_input_dimensions(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const json e = localize::evidence_json((*r)[0]);
  EXPECT_EQ(e["target_layout"], "NHWC");
  EXPECT_EQ(e["differences"][0]["target_position"], 1);
  EXPECT_EQ(e["differences"][0]["source_position"], 2);
  EXPECT_EQ(e["target_shape_expected"], json({1, 224, 224, 3}));
}

TEST(InputChecksID, RankDifference) {
  auto src = input_only_model({1, 3, 224, 224}), tgt = input_only_model({3, 224, 224});
  auto r = check_input_dimensions(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(localize::evidence_json((*r)[0])["rank_differs"].get<bool>());
}

// ---- TSS: input transpose ---------------------------------------------------------------------

TEST(InputChecksTSS, TransposeSwappingHAndWIsFound) {
  auto src = first_conv_model(std::nullopt);
  auto tgt = first_conv_model(std::vector<int64_t>{0, 3, 2, 1});  // same shape, H and W swapped
  auto r = check_input_structure(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const Finding& f = (*r)[0];
  EXPECT_EQ(f.type(), FaultType::kTSS);
  EXPECT_EQ(f.target_node, "to_nchw");
  EXPECT_EQ(f.source_node, "conv");
  const json& e = localize::evidence_json(f);
  EXPECT_EQ(e["target_structure"], json({"N", "C", "W", "H"}));
  EXPECT_EQ(e["source_structure"], json({"N", "C", "H", "W"}));
  EXPECT_EQ(e["transpose"]["perm"], json({0, 3, 2, 1}));
  EXPECT_EQ(e["transpose"]["correct_perm"], json({0, 3, 1, 2}));
  EXPECT_TRUE(e["transpose"]["needs_change"].get<bool>());
  EXPECT_EQ(e["perm_to_source"], json({0, 1, 3, 2}));
  EXPECT_TRUE(e["tied_nodes"].empty());
}

TEST(InputChecksTSS, CorrectTransposeAndIdenticalModelsGiveNothing) {
  auto nchw = first_conv_model(std::nullopt);
  auto nhwc = first_conv_model(std::vector<int64_t>{0, 3, 1, 2});
  for (const auto* pair : {&nhwc, &nchw}) {
    auto r = check_input_structure(nchw, *pair);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->empty());
  }
  auto reverse = check_input_structure(nhwc, nchw);  // an NHWC Source works the same way
  ASSERT_TRUE(reverse.ok());
  EXPECT_TRUE(reverse->empty());
}

TEST(InputChecksTSS, GatherOnWrongAxisIsATiedNode) {
  auto src = fetafix::testing::channel_normalising_model(3);  // C of NHWC
  auto tgt = fetafix::testing::channel_normalising_model(2);  // W: the stale axis of a converter
  auto r = check_input_structure(src, tgt);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const json e = localize::evidence_json((*r)[0]);
  EXPECT_EQ((*r)[0].target_node, "gather_0");  // what a repair edits first
  EXPECT_EQ(e["transpose"]["node"], "to_nchw");
  EXPECT_EQ(e["transpose"]["correct_perm"], json({0, 3, 1, 2}));  // right once the Gathers are
  EXPECT_FALSE(e["transpose"]["needs_change"].get<bool>());
  EXPECT_NE((*r)[0].summary.find("3 node(s)"), std::string::npos) << (*r)[0].summary;
  size_t gathers = 0;
  for (const auto& t : e["tied_nodes"]) {
    if (t["op"] != "Gather") {
      EXPECT_FALSE(t.value("needs_change", false)) << t.dump();  // wrong only because of the Gathers
      continue;
    }
    ++gathers;
    EXPECT_TRUE(t["mismatch"].get<bool>());
    EXPECT_EQ(t["logical_axes"], json({"W"}));
    EXPECT_EQ(t["source_logical_axes"], json({"C"}));
    EXPECT_EQ(t["value"], json({2}));
    EXPECT_EQ(t["corrected_value"], 3);
    EXPECT_TRUE(t["needs_change"].get<bool>());
  }
  EXPECT_EQ(gathers, 3u);
  // The matching model: nothing.
  auto same = check_input_structure(src, fetafix::testing::channel_normalising_model(3));
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty());
}

TEST(InputChecksTSS, ExplicitLayoutOverridesShapeGuess) {
  // [1,3,8,3]: both positions hold 3; the guess is NCHW, the caller knows better.
  GraphBuilder g("ambiguous", 13);
  std::string x = g.input("image", DType::kFloat32, {1, 3, 8, 3});
  x = g.node("Transpose", "t", {x}, {Attr::ints("perm", {0, 3, 1, 2})});
  g.initializer("w", random_tensor({4, 3, 1, 1}, 3));
  g.node("Conv", "conv", {x, "w"}, {}, "out");
  g.output("out", DType::kFloat32, {});
  auto tgt = g.build();
  auto src = first_conv_model(std::nullopt);
  auto guessed = check_input_structure(src, tgt);
  ASSERT_TRUE(guessed.ok());
  EXPECT_EQ(guessed->size(), 1u);  // read as NCHW, the Transpose scrambles it
  auto told = check_input_structure(src, tgt, InputLayouts{std::nullopt, data::Layout::kNHWC});
  ASSERT_TRUE(told.ok());
  EXPECT_TRUE(told->empty());
}

// ---- TSS: flatten structure ---------------------------------------------------------------------

TEST(InputChecksTSS, NhwcOrderedFlattenIsFound) {
  auto src = flatten_head_model(std::nullopt);
  auto tgt = flatten_head_model(std::vector<int64_t>{0, 2, 3, 1});
  const auto image = gradient_image(20, 16);
  for (bool with_matches : {false, true}) {
    std::vector<match::NodeMatch> matches;
    if (with_matches) {
      match::NodeMatch conv;
      conv.source_node = conv.target_node = "conv";
      conv.confidence = 1.0;
      matches.push_back(conv);
    }
    auto r = check_flatten_structure({&src, "s", preset("torch")}, {&tgt, "t", preset("torch")}, image, matches,
                                     {1, 1e-4});
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 1u);
    const Finding& f = (*r)[0];
    EXPECT_EQ(f.type(), FaultType::kTSS);
    EXPECT_EQ(f.source_node, "flatten");
    EXPECT_EQ(f.target_node, "flatten");
    const json& e = localize::evidence_json(f);
    EXPECT_EQ(e["source_shape"], json({1, 4, 8, 8}));
    EXPECT_EQ(e["target_shape"], json({1, 8, 8, 4}));
    EXPECT_EQ(e["perm_to_source"], json({0, 3, 1, 2}));
    EXPECT_EQ(e["target_structure"], json({0, 2, 3, 1}));
    EXPECT_EQ(e["perm_basis"], "values");  // [0,3,2,1] fits the shape too; the values decide
    EXPECT_LT(e["value_error"].get<double>(), 1e-6);
    EXPECT_EQ(e["paired_by"], with_matches ? "match:conv" : "order");
  }
}

TEST(InputChecksTSS, UnitDimsAndIdenticalModelsGiveNoFlattenFinding) {
  const auto image = gradient_image(20, 16);
  // [1,4,1,1] vs [1,1,1,4]: another shape, the same element order.
  auto src = flatten_head_model(std::nullopt, true);
  auto tgt = flatten_head_model(std::vector<int64_t>{0, 2, 3, 1}, true);
  auto r = check_flatten_structure({&src, "s", preset("torch")}, {&tgt, "t", preset("torch")}, image, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
  auto plain = flatten_head_model(std::nullopt);
  auto same = check_flatten_structure({&plain, "s", preset("torch")}, {&plain, "t", preset("torch")}, image, {});
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_TRUE(same->empty());
}

// ---- real model (skipped when ../shared/assets is absent) ----------------------------------------

TEST(InputChecksAssets, MobileNetV2AgainstItselfAndWithAPlantedInputTranspose) {
  FETAFIX_REQUIRE_ASSET(model_path, "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx");
  FETAFIX_REQUIRE_ASSET(image_dir, "images/original-fetafix-test");
  auto loaded = model::load_model(model_path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const onnx::ModelProto& m = loaded->proto;
  const data::Image photo = data::decode_image(data::list_images(image_dir).value().front()).value();

  auto id = check_input_dimensions(m, m);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_TRUE(id->empty());
  auto structure = check_input_structure(m, m);
  ASSERT_TRUE(structure.ok()) << structure.error().message;
  EXPECT_TRUE(structure->empty());
  auto flatten = check_flatten_structure({&m, "s", preset("uint8")}, {&m, "t", preset("uint8")}, photo, {});
  ASSERT_TRUE(flatten.ok()) << flatten.error().message;
  EXPECT_TRUE(flatten->empty());

  // tf2onnx's NHWC -> NCHW Transpose before the first Conv, planted with H and W swapped:
  // silent at 224x224.
  onnx::ModelProto planted = m;
  int transposes = 0;
  for (auto& node : *planted.mutable_graph()->mutable_node()) {
    if (node.op_type() != "Transpose") continue;
    ASSERT_EQ(model::get_ints(node, "perm").value(), std::vector<int64_t>({0, 3, 1, 2}));
    model::set_ints(node, "perm", {0, 3, 2, 1});
    ++transposes;
    break;
  }
  ASSERT_EQ(transposes, 1);
  auto found = check_input_structure(m, planted);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(localize::evidence_json((*found)[0])["transpose"]["correct_perm"], json({0, 3, 1, 2}));
  EXPECT_EQ(localize::evidence_json((*found)[0])["target_structure"], json({"N", "C", "W", "H"}));

  // PP: the Target fed BGR bytes; the Source's uint8 RGB preset is the cure.
  data::Preset bgr = preset("uint8");
  bgr.name = "uint8_bgr";
  bgr.channels = data::ChannelOrder::kBGR;
  PreprocessingCheckOptions o = quiet_pp_options();
  o.compare.threads = 2;
  o.presets = {"torch", "uint8"};
  auto pp = measure_preprocessing({&m, "s", preset("uint8")}, {&m, "t", bgr}, image_dir, o);
  ASSERT_TRUE(pp.ok()) << pp.error().message;
  EXPECT_FALSE(pp->trials[3].measured);  // torch makes float32; the input takes uint8
  ASSERT_TRUE(pp->best.has_value());
  EXPECT_EQ(pp->trials[*pp->best].role, "source");
  EXPECT_EQ(pp->trials[*pp->best].disagreeing, 0u);
  EXPECT_GT(pp->trials[0].disagreeing, 0u);
  EXPECT_EQ(preprocessing_findings(*pp).size(), 1u);
}

}  // namespace fetafix::localize
