// Real models with real weights: PaddleOCR's PP-OCRv4 text detector (a probability map) and
// recognizer (CTC over 6625 symbols), on text rendered on real photos. Each is compared with
// itself, with a Target whose change should not matter for the task, and with a broken one.
// Skips when scripts/setup.sh could not fetch the models, or without the photos.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "compare/comparator.h"
#include "compare/compare.h"
#include "model/model.h"
#include "support/assets.h"
#include "support/ocr.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

CompareOptions options(const std::string& task) {
  CompareOptions o;
  o.progress = ProgressMode::kQuiet;
  o.batch_size = 4;
  o.task = ComparatorRegistry::instance().parse(task).value();
  return o;
}

// What a reader of the line would check: the rendered words come first (PP-OCRv4 sometimes
// drops the space between English words or reads a mark of the photo after the text).
bool reads_as(std::string decoded, std::string rendered) {
  std::erase(decoded, ' ');
  std::erase(rendered, ' ');
  return decoded.rfind(rendered, 0) == 0;
}

// The model's final Softmax made an Identity: the same argmax, other values.
void drop_final_softmax(onnx::ModelProto& m) {
  for (auto& node : *m.mutable_graph()->mutable_node())
    if (node.op_type() == "Softmax" && node.output(0) == m.graph().output(0).name()) {
      node.set_op_type("Identity");
      node.clear_attribute();
    }
}

}  // namespace

TEST(OcrModels, RecognizerReadsTheRenderedTextAndTextTaskIgnoresAMissingSoftmax) {
  FETAFIX_REQUIRE_OCR_MODEL(rec_path, "ch_PP-OCRv4_rec_infer.onnx");
  const fs::path dir = testing::temp_dir("ocr_rec");
  const auto labels = testing::render_ocr_samples(dir / "samples", "rec", 6);
  if (labels.empty()) GTEST_SKIP() << "no photos or no ImageMagick to render OCR samples";
  testing::write_ppocr_charset(dir / "charset.txt");
  auto rec = model::load_model(rec_path);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  const data::Preset preset = testing::ppocr_rec_preset();
  const std::string text_task = "text:charset=" + (dir / "charset.txt").string();

  // The model against itself: every line agrees, and reads as rendered.
  auto same = compare_models({&rec->proto, "rec.onnx", preset}, {&rec->proto, "rec.onnx", preset}, dir / "samples",
                             options(text_task));
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->summary.disagreeing, 0u);
  size_t read_right = 0;
  for (size_t i = 0; i < labels.size(); ++i)
    read_right += reads_as(std::get<TextEvidence>(same->records[i].evidence).source_text, labels[i].second);
  EXPECT_GE(read_right, labels.size() - 1) << "PP-OCRv4 should read clean rendered text";

  // No final Softmax: the same text, different tensors.
  onnx::ModelProto logits = rec->proto;
  drop_final_softmax(logits);
  auto text = compare_models({&rec->proto, "rec.onnx", preset}, {&logits, "logits.onnx", preset}, dir / "samples",
                             options(text_task));
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->summary.disagreeing, 0u);
  auto tensor = compare_models({&rec->proto, "rec.onnx", preset}, {&logits, "logits.onnx", preset}, dir / "samples",
                               options("tensor"));
  ASSERT_TRUE(tensor.ok()) << tensor.error().message;
  EXPECT_EQ(tensor->summary.disagreeing, labels.size());

  // The classifier's weights negated: the argmax is now the least likely symbol.
  onnx::ModelProto broken = rec->proto;
  ASSERT_TRUE(testing::edit_constant(broken, "linear_85.w_0", -1.0f));
  auto bad = compare_models({&rec->proto, "rec.onnx", preset}, {&broken, "broken.onnx", preset}, dir / "samples",
                            options(text_task));
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  EXPECT_EQ(bad->summary.disagreeing, labels.size());
  EXPECT_GT(bad->summary.mean_distance, 0.5);
  const nlohmann::json j = to_json(*bad);
  EXPECT_TRUE(reads_as(j["samples"][0]["source_text"].get<std::string>(), labels[0].second)) << j["samples"][0];
}

TEST(OcrModels, DetectorProbabilityMapsAsMasks) {
  FETAFIX_REQUIRE_OCR_MODEL(det_path, "ch_PP-OCRv4_det_infer.onnx");
  const fs::path dir = testing::temp_dir("ocr_det");
  const auto labels = testing::render_ocr_samples(dir / "samples", "det", 3, 320);
  if (labels.empty()) GTEST_SKIP() << "no photos or no ImageMagick to render OCR samples";
  auto det = model::load_model(det_path);
  ASSERT_TRUE(det.ok()) << det.error().message;
  const data::Preset preset = testing::ppocr_det_preset(320);
  // A [N,1,H,W] map is not class scores: refused without --task.
  CompareOptions none = options("tensor");
  none.task = {};
  auto refused = compare_models({&det->proto, "det.onnx", preset}, {&det->proto, "det.onnx", preset}, dir / "samples", none);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("'sigmoid_0.tmp_0' [N,1,?,?] do not look like class scores"), std::string::npos)
      << refused.error().message;

  auto same = compare_models({&det->proto, "det.onnx", preset}, {&det->proto, "det.onnx", preset}, dir / "samples",
                             options("mask:threshold=0.3"));
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->summary.disagreeing, 0u);
  // The text is found: some pixels above the threshold in every sample.
  for (const auto& r : same->records) {
    const auto& e = std::get<MaskEvidence>(r.evidence);
    ASSERT_EQ(e.classes.size(), 2u) << r.file;
    EXPECT_GT(e.classes[1].source_pixels, 500) << r.file;
  }
  // The last transposed convolution negated: background becomes text.
  onnx::ModelProto broken = det->proto;
  ASSERT_TRUE(testing::edit_constant(broken, "conv2d_transpose_1.w_0", -1.0f));
  auto bad = compare_models({&det->proto, "det.onnx", preset}, {&broken, "broken.onnx", preset}, dir / "samples",
                            options("mask:threshold=0.3"));
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  EXPECT_EQ(bad->summary.disagreeing, labels.size());
}

}  // namespace fetafix::compare
