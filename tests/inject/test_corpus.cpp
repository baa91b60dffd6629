// The built architectures, their calibration on real photos, and the corpus: deterministic
// bytes, ground truth that matches the models' diff, and benign cases that compute the same on
// real photos. Narrow widths and few photos keep it to seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "compare/compare.h"
#include "compare/comparator.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "inject/architectures.h"
#include "inject/corpus.h"
#include "inject_helpers.h"
#include "support/assets.h"
#include "support/cli.h"

namespace fetafix::inject {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Real photos: the ImageNet samples when the assets are there, else Debian's mate backgrounds.
fs::path real_photos() {
  if (!fetafix::testing::assets_dir().empty()) {
    const fs::path imagenet = fetafix::testing::assets_dir() / "images" / "imagenet-samples";
    if (fs::is_directory(imagenet)) return imagenet;
  }
  const fs::path mate = "/usr/share/backgrounds/mate/nature";
  return fs::is_directory(mate) ? mate : fs::path();
}

#define REQUIRE_REAL_PHOTOS(var)                                                                    \
  const fs::path var = real_photos();                                                              \
  if (var.empty()) GTEST_SKIP() << "no real photos (../shared/assets or /usr/share/backgrounds/mate)"

std::vector<fs::path> some_photos(const fs::path& dir, size_t count) {
  auto all = data::list_images(dir);
  EXPECT_TRUE(all.ok());
  std::vector<fs::path> out;
  if (!all.ok()) return out;
  const size_t n = std::min(count, all->size());
  for (size_t k = 0; k < n; ++k) out.push_back((*all)[k * all->size() / n]);
  return out;
}

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const auto& n : m.graph().node()) counts[n.op_type()]++;
  return counts;
}

// Each photo preprocessed as `preset_spec` binds to the model's input, run one at a time.
std::vector<Tensor> run_on_photos(const onnx::ModelProto& model, const std::vector<fs::path>& photos,
                                  const std::string& preset_spec) {
  auto preset = data::resolve_preset(preset_spec);
  EXPECT_TRUE(preset.ok()) << preset_spec;
  runtime::SessionOptions so;
  so.threads = 1;
  auto session = runtime::Session::create(model, so);
  EXPECT_TRUE(session.ok()) << session.error().message;
  std::vector<Tensor> out;
  if (!preset.ok() || !session.ok()) return out;
  const auto& in = (*session)->inputs()[0];
  auto bound = data::bind_preset_to_input(*preset, in.shape, in.dtype, in.name);
  EXPECT_TRUE(bound.ok()) << bound.error().message;
  if (!bound.ok()) return out;
  for (const auto& p : photos) {
    auto image = data::decode_image(p);
    EXPECT_TRUE(image.ok());
    auto r = (*session)->run({data::preprocess(*image, *bound)});
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) out.push_back((*r)[0]);
  }
  return out;
}

int64_t top1(const Tensor& scores) {
  const auto v = scores.to_float();
  return std::max_element(v.begin(), v.end()) - v.begin();
}

TEST(Architectures, ResNet101V2HasTheKerasBlockStructure) {
  ArchitectureOptions o;
  o.width = 0.0625;
  auto m = build_resnet101_v2(o);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto ops = op_counts(*m);
  EXPECT_EQ(ops["Conv"], 104);               // stem + 33 blocks x 3 + 4 projection shortcuts
  EXPECT_EQ(ops["BatchNormalization"], 100);  // 33 x (preact, _1, _2) + post
  EXPECT_EQ(ops["Pad"], 35);                  // conv1_pad, pool1_pad, one per block
  EXPECT_EQ(ops["Add"], 33);
  EXPECT_EQ(ops["MaxPool"], 4);               // pool1 + the strided blocks' 1x1 shortcuts
  EXPECT_EQ(ops["Gemm"], 1);
  const auto out = testing::run_model(*m, uniform_tensor({1, 3, 224, 224}, 1, -1, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{1, 1000}));
  // The in-graph normalisation block, NCHW or NHWC.
  o.input_block = InputBlock::kNhwc;
  auto nhwc = build_resnet101_v2(o);
  ASSERT_TRUE(nhwc.ok());
  auto nhwc_ops = op_counts(*nhwc);
  EXPECT_EQ(nhwc_ops["Gather"], 3);
  EXPECT_EQ(nhwc_ops["Unsqueeze"], 3);
  EXPECT_EQ(nhwc_ops["Transpose"], 1);
  EXPECT_EQ(nhwc_ops["Concat"], 1);
}

TEST(Architectures, InceptionV3HasTheKerasBlockStructure) {
  ArchitectureOptions o;
  o.width = 0.0625;
  o.input_block = InputBlock::kNchw;
  auto m = build_inception_v3(o);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto ops = op_counts(*m);
  EXPECT_EQ(ops["Conv"], 94);
  EXPECT_EQ(ops["BatchNormalization"], 94);
  EXPECT_EQ(ops["Concat"], 11 + 4 + 1);  // mixed0-10, the E blocks' inner pairs, the input block
  EXPECT_EQ(ops["MaxPool"], 4);          // two in the stem, one in each reduction block
  EXPECT_EQ(ops["AveragePool"], 9);      // one per A, C and E block
  EXPECT_EQ(ops["Gather"], 3);
  // 299 -> 35 (mixed0-2) -> 17 (mixed3-7) -> 8 (mixed8-10).
  auto shapes = runtime::observe_value_shapes(*m, {uniform_tensor({1, 3, 299, 299}, 2, -1, 1)}, 1, "inception");
  ASSERT_TRUE(shapes.ok()) << shapes.error().message;
  EXPECT_EQ(shapes->at("mixed2").shape[2], 35);
  EXPECT_EQ(shapes->at("mixed7").shape[2], 17);
  EXPECT_EQ(shapes->at("mixed10").shape[2], 8);
  EXPECT_EQ(shapes->at("mixed10").shape[1], 20 + 2 * 24 + 2 * 24 + 12);  // 320, 2x384, 2x384, 192 over 16
  EXPECT_FALSE(build_inception_v3([] {
                 ArchitectureOptions small;
                 small.image_size = 64;
                 return small;
               }())
                   .ok());
}

TEST(Architectures, CalibratedOnRealPhotosTopOneVaries) {
  REQUIRE_REAL_PHOTOS(dir);
  const auto photos = some_photos(dir, 12);
  ASSERT_GE(photos.size(), 8u);
  ArchitectureOptions o;
  o.width = 0.0625;
  auto m = build_resnet101_v2(o);
  ASSERT_TRUE(m.ok());
  const auto uncalibrated = run_on_photos(*m, photos, "torch");
  auto report = calibrate_on_photos(*m, photos, *data::preset_by_name("torch"));
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->batch_norms, 100u);
  EXPECT_TRUE(report->classifier_standardized);
  std::set<int64_t> before, after;
  for (const auto& s : uncalibrated) before.insert(top1(s));
  const auto calibrated = run_on_photos(*m, photos, "torch");
  for (const auto& s : calibrated) after.insert(top1(s));
  EXPECT_GE(after.size(), photos.size() / 2) << "calibrated top-1 labels barely vary";
  EXPECT_GT(after.size(), before.size());

  // The first BN now normalises what it sees on these photos: mean ~0 and variance ~1 per channel.
  runtime::SessionOptions so;
  so.threads = 1;
  so.capture = {"conv2_block1_preact_bn"};
  auto session = runtime::Session::create(*m, so);
  ASSERT_TRUE(session.ok());
  const auto& in = (*session)->inputs()[0];
  auto bound = data::bind_preset_to_input(*data::preset_by_name("torch"), in.shape, in.dtype, in.name);
  ASSERT_TRUE(bound.ok());
  std::vector<double> sum, sum_sq;
  double count = 0;
  for (const auto& p : photos) {
    auto out = (*session)->run({data::preprocess(*data::decode_image(p), *bound)});
    ASSERT_TRUE(out.ok());
    const Tensor& y = out->back();
    const int64_t c = y.shape[1], hw = y.shape[2] * y.shape[3];
    sum.resize(c, 0), sum_sq.resize(c, 0);
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < hw; ++i) {
        const double v = y.data<float>()[k * hw + i];
        sum[k] += v, sum_sq[k] += v * v;
      }
    count += static_cast<double>(hw);
  }
  auto beta = model::get_weight(*m, "conv2_block1_preact_bn/beta");
  ASSERT_TRUE(beta.ok());
  for (size_t k = 0; k < sum.size(); ++k) {
    const double mean = sum[k] / count, var = sum_sq[k] / count - mean * mean;
    EXPECT_NEAR(mean, beta->data<float>()[k], 1e-3) << "channel " << k;  // gamma 1: y = x-hat + beta
    EXPECT_NEAR(var, 1.0, 1e-2) << "channel " << k;
  }

  // Deterministic: the same build and photos give the same bytes.
  auto again = build_resnet101_v2(o);
  ASSERT_TRUE(calibrate_on_photos(*again, photos, *data::preset_by_name("torch")).ok());
  EXPECT_EQ(model::serialize_model(*again), model::serialize_model(*m));
}

std::string slurp(const fs::path& p) { return fetafix::testing::slurp(p); }

class Corpus : public ::testing::Test {
 protected:
  static CorpusOptions options(const fs::path& out, const fs::path& photos, std::vector<std::string> only) {
    CorpusOptions o;
    o.output = out;
    o.assets = fetafix::testing::assets_dir();
    o.calibration_photos = photos;
    o.calibration_count = 8;
    o.resnet_width = 0.0625;
    o.inception_width = 0.0625;
    o.only = std::move(only);
    return o;
  }
};

TEST_F(Corpus, SameOptionsGiveTheSameBytes) {
  REQUIRE_REAL_PHOTOS(photos);
  const std::vector<std::string> subset{"resnet101v2-tss-gather-axis", "inceptionv3-id-tss",
                                        "resnet101v2-lh-pads-and-pad-nodes", "mobilenetv2-lh-drop-pads",
                                        "paddleocr-wb-int8-tensor"};
  const fs::path a = fetafix::testing::temp_dir("corpus_a"), b = fetafix::testing::temp_dir("corpus_b");
  auto first = write_corpus(options(a, photos, subset));
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = write_corpus(options(b, photos, subset));
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_EQ(first->size(), subset.size());
  const bool assets = !fetafix::testing::assets_dir().empty();
  size_t written = 0;
  for (const auto& s : *first) {
    const bool needs_assets = s.name.rfind("mobilenetv2", 0) == 0 || s.name.rfind("paddleocr", 0) == 0;
    EXPECT_EQ(s.written, assets || !needs_assets) << s.name << ": " << s.skipped_reason;
    if (!s.written) continue;
    ++written;
    for (const char* file : {"source.onnx", "target.onnx", "case.json"}) {
      const std::string x = slurp(a / s.name / file), y = slurp(b / s.name / file);
      EXPECT_FALSE(x.empty()) << s.name << "/" << file;
      EXPECT_TRUE(x == y) << s.name << "/" << file << " differs between two runs";
    }
  }
  EXPECT_GE(written, 3u);
  EXPECT_EQ(slurp(a / "index.json"), slurp(b / "index.json"));
  EXPECT_FALSE(write_corpus(options(a, photos, {"no-such-case"})).ok());
}

// The task cases (issue 11) name their task and carry their own samples, written once per sample
// set, byte for byte the same on a second run (.npz included); on those samples the Target of a
// fault case disagrees with its Source under the case's task, a benign one does not. The built
// models need no asset; the PP-OCRv4 cases are skipped here (no --ocr-models), with the reason.
TEST_F(Corpus, TaskCasesCarryTheirTaskAndSamples) {
  const std::vector<std::string> subset{"convdet-lh-clip-max", "convdet-fold-bn", "audio-wb-int8-tensor",
                                        "audio-weights-as-constants", "ppocrdet-wb-fp16"};
  const fs::path a = fetafix::testing::temp_dir("corpus_tasks_a"), b = fetafix::testing::temp_dir("corpus_tasks_b");
  CorpusOptions o = options(a, {}, subset);
  o.task_samples = 6;
  auto first = write_corpus(o);
  ASSERT_TRUE(first.ok()) << first.error().message;
  o.output = b;
  ASSERT_TRUE(write_corpus(o).ok());
  ASSERT_EQ(first->size(), subset.size());
  for (const auto& s : *first)  // statuses come in the corpus' order
    if (s.name == "ppocrdet-wb-fp16") {
      EXPECT_FALSE(s.written);
      EXPECT_NE(s.skipped_reason.find("OCR model"), std::string::npos) << s.skipped_reason;
    }
  size_t checked = 0;
  for (const auto& s : *first) {
    if (!s.written) continue;
    ++checked;
    SCOPED_TRACE(s.name);
    const json c = json::parse(slurp(a / s.name / "case.json"));
    ASSERT_TRUE(c["task"].is_string());
    ASSERT_TRUE(c["data"].is_object());
    EXPECT_EQ(c["data"]["samples"], 6);
    for (const char* half : {"detection", "validation"}) {
      const fs::path dir = a / s.name / c["data"][half].get<std::string>();
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
      EXPECT_EQ(files.size(), 6u) << dir;
      for (const auto& f : files)
        EXPECT_TRUE(slurp(f) == slurp(b / fs::relative(f, a))) << f << " differs between two runs";
    }
    EXPECT_TRUE(slurp(a / s.name / "target.onnx") == slurp(b / s.name / "target.onnx"));
    // The case's own task on its detection samples.
    auto source = model::load_model(a / s.name / "source.onnx");
    auto target = model::load_model(a / s.name / "target.onnx");
    ASSERT_TRUE(source.ok() && target.ok());
    const std::string preset_name = c["source_preprocess"];
    auto preset = data::resolve_preset(preset_name == "preset.json" ? (a / s.name / "preset.json").string() : preset_name);
    ASSERT_TRUE(preset.ok()) << preset.error().message;
    compare::CompareOptions co;
    auto task = compare::ComparatorRegistry::instance().parse(c["task"].get<std::string>());
    ASSERT_TRUE(task.ok()) << task.error().message;
    co.task = *task;
    const compare::ModelSide source_side{&source->proto, "source.onnx", *preset},
        target_side{&target->proto, "target.onnx", *preset};
    auto r = compare::compare_models(source_side, target_side, a / s.name / c["data"]["detection"].get<std::string>(), co);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->summary.images_compared, 6u);
    if (c["kind"] == "benign") EXPECT_EQ(r->summary.disagreeing, 0u) << compare::format_report(*r);
    else EXPECT_GT(r->summary.disagreeing, 0u) << compare::format_report(*r);
  }
  EXPECT_EQ(checked, 4u);  // the built models need no asset
}

// Every written case: the Target differs from the Source exactly where its ground truth says,
// and case.json carries what the evaluation needs.
TEST_F(Corpus, CasesMatchTheirGroundTruth) {
  REQUIRE_REAL_PHOTOS(photos);
  std::vector<std::string> names;
  for (const auto& c : corpus_cases())
    if (c.kind != "benign") names.push_back(c.name);
  const fs::path out = fetafix::testing::temp_dir("corpus_truth");
  auto written = write_corpus(options(out, photos, names));
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_GE(corpus_cases().size() - names.size(), 5u);  // benign cases
  size_t single = 0, multi = 0;
  for (const auto& c : corpus_cases()) {
    single += c.kind == "single";
    multi += c.kind == "multi";
  }
  EXPECT_GE(single, 15u);
  EXPECT_GE(multi, 5u);
  for (const auto& s : *written) {
    if (!s.written) continue;
    const json c = json::parse(slurp(out / s.name / "case.json"));
    EXPECT_EQ(c["name"], s.name);
    EXPECT_FALSE(c["expected"].empty()) << s.name;
    auto source = model::load_model(out / s.name / "source.onnx");
    auto target = model::load_model(out / s.name / "target.onnx");
    ASSERT_TRUE(source.ok() && target.ok()) << s.name;
    InjectionResult r{target->proto, c["ground_truth"]};
    r.ground_truth["replayable"] = false;  // case.json leaves the edit list out
    SCOPED_TRACE(s.name);
    testing::expect_truth_matches_diff(source->proto, r);
  }
}

// Benign cases compute what their Source does on real photos (both fed the same preset).
TEST_F(Corpus, BenignCasesAgreeOnRealPhotos) {
  REQUIRE_REAL_PHOTOS(photos);
  std::vector<std::string> names;
  for (const auto& c : corpus_cases())
    if (c.kind == "benign" && c.samples.empty()) names.push_back(c.name);  // task cases: their own samples
  const fs::path out = fetafix::testing::temp_dir("corpus_benign");
  auto written = write_corpus(options(out, photos, names));
  ASSERT_TRUE(written.ok()) << written.error().message;
  const auto sample = some_photos(photos, 6);
  size_t checked = 0;
  for (const auto& s : *written) {
    if (!s.written) continue;
    SCOPED_TRACE(s.name);
    const json c = json::parse(slurp(out / s.name / "case.json"));
    std::string preset = c["source_preprocess"];
    if (preset == "preset.json") preset = (out / s.name / "preset.json").string();
    auto source = model::load_model(out / s.name / "source.onnx");
    auto target = model::load_model(out / s.name / "target.onnx");
    ASSERT_TRUE(source.ok() && target.ok());
    const auto a = run_on_photos(source->proto, sample, preset);
    const auto b = run_on_photos(target->proto, sample, preset);
    ASSERT_EQ(a.size(), sample.size());
    ASSERT_EQ(b.size(), sample.size());
    for (size_t k = 0; k < a.size(); ++k) {
      // Relative to the largest probability: float rounding over ~100 layers stays well under it.
      testing::expect_close(a[k], b[k], 1e-3, s.name + " on " + sample[k].filename().string());
      EXPECT_EQ(top1(a[k]), top1(b[k]));
    }
    ++checked;
  }
  EXPECT_GE(checked, 3u);
}

}  // namespace
}  // namespace fetafix::inject
