#include "inject/corpus.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "inject/architectures.h"
#include "inject/dequantize.h"
#include "inject/inject.h"
#include "inject/task_corpus.h"
#include "model/model.h"

namespace fetafix::inject {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kMobileNetAsset = "models/mobilenet_v2_1.0_224_int8_per_tensor.onnx";
constexpr const char* kPaddleAsset = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx";

// PaddleOCR's text-direction classifier is fed 48x192 stretched photos scaled to [-1, 1].
json paddle_preset() {
  return {{"name", "paddle-ocr-cls"},
          {"width", 192},
          {"height", 48},
          {"layout", "NCHW"},
          {"crop", "stretch"},
          {"filter", "bilinear"},
          {"scale", 1.0 / 255.0},
          {"mean", {0.5, 0.5, 0.5}},
          {"std", {0.5, 0.5, 0.5}}};
}

struct BaseModel {
  onnx::ModelProto model;
  std::string preset;      // a built-in preset name, or "preset.json" (written beside the case)
  json preset_file;        // the file's content when preset == "preset.json"
  std::string description;
};

class BaseModels {
 public:
  explicit BaseModels(const CorpusOptions& o) : o_(o) {}

  // The base model, built once; nullopt with `skipped` set when an asset it needs is absent.
  Result<const BaseModel*> get(const std::string& name, std::string& skipped) {
    if (auto it = cache_.find(name); it != cache_.end()) return it->second.get();
    auto made = make(name, skipped);
    if (!made.ok()) return made.error();
    if (!*made) return static_cast<const BaseModel*>(nullptr);
    return (cache_[name] = std::make_unique<BaseModel>(std::move(**made))).get();
  }

 private:
  Result<std::optional<BaseModel>> make(const std::string& name, std::string& skipped) {
    if (name == "mobilenetv2") {
      const fs::path path = o_.assets / kMobileNetAsset;
      if (o_.assets.empty() || !fs::exists(path)) {
        skipped = fmt::format("asset {} not found", kMobileNetAsset);
        return std::optional<BaseModel>();
      }
      FETAFIX_ASSIGN_OR_RETURN(auto qdq, model::load_model(path));
      FETAFIX_ASSIGN_OR_RETURN(auto f, dequantize_qdq(qdq.proto));
      return std::optional<BaseModel>(BaseModel{
          std::move(f), "uint8", nullptr,
          "float MobileNetV2 with real ImageNet weights, derived from the int8 QDQ asset (weights dequantized, "
          "activation quantization replaced by its Clip); uint8 NHWC input"});
    }
    if (name == "paddleocr") {
      const fs::path path = o_.assets / kPaddleAsset;
      if (o_.assets.empty() || !fs::exists(path)) {
        skipped = fmt::format("asset {} not found", kPaddleAsset);
        return std::optional<BaseModel>();
      }
      FETAFIX_ASSIGN_OR_RETURN(auto m, model::load_model(path));
      return std::optional<BaseModel>(BaseModel{
          std::move(m.proto), "preset.json", paddle_preset(),
          "PaddleOCR text-direction classifier (paddle2onnx, opset 9, weights in Constant nodes), fed 48x192 "
          "photos scaled to [-1, 1]"});
    }
    FETAFIX_ASSIGN_OR_RETURN(auto task_base, make_task_base(name, o_, skipped));
    if (task_base) {
      if (!skipped.empty()) return std::optional<BaseModel>();
      const bool images = !task_base->preset_file.is_null();
      return std::optional<BaseModel>(BaseModel{std::move(task_base->model), images ? "preset.json" : "raw",
                                                std::move(task_base->preset_file), std::move(task_base->description)});
    }
    const bool resnet = name == "resnet101v2" || name == "resnet101v2-normalized";
    const bool inception = name == "inceptionv3" || name == "inceptionv3-nhwc";
    if (!resnet && !inception) return make_error("unknown base model '{}'", name);
    FETAFIX_ASSIGN_OR_RETURN(const std::vector<fs::path>* photo_list, calibration_photos(skipped));
    const auto& photos = *photo_list;
    if (photos.empty()) return std::optional<BaseModel>();
    ArchitectureOptions a;
    a.width = resnet ? o_.resnet_width : o_.inception_width;
    a.input_block = name == "resnet101v2" ? InputBlock::kNone
                    : name == "inceptionv3-nhwc" ? InputBlock::kNhwc
                                                 : InputBlock::kNchw;
    FETAFIX_ASSIGN_OR_RETURN(auto m, resnet ? build_resnet101_v2(a) : build_inception_v3(a));
    FETAFIX_ASSIGN_OR_RETURN(const data::Preset torch, data::preset_by_name("torch"));
    auto calibrated = calibrate_on_photos(m, photos, torch);
    if (!calibrated.ok()) return make_error("{}: calibration: {}", name, calibrated.error().message);
    std::string block = a.input_block == InputBlock::kNone   ? ""
                        : a.input_block == InputBlock::kNchw ? ", with torchvision's in-graph input normalisation"
                                                             : ", NHWC input with the in-graph input normalisation "
                                                               "and a Transpose to NCHW after it";
    return std::optional<BaseModel>(BaseModel{
        std::move(m), "torch", nullptr,
        fmt::format("{} (Keras block structure), width {}, deterministic weights, BatchNorms calibrated on {} "
                    "photos{}",
                    resnet ? "ResNet101 v2" : "InceptionV3", a.width, photos.size(), block)});
  }

  Result<const std::vector<fs::path>*> calibration_photos(std::string& skipped) {
    if (!photos_) {
      photos_.emplace();
      if (!o_.calibration_photos.empty() && fs::is_directory(o_.calibration_photos)) {
        FETAFIX_ASSIGN_OR_RETURN(auto all, data::list_images(o_.calibration_photos));
        const size_t n = std::min(o_.calibration_count, all.size());
        for (size_t k = 0; k < n; ++k) photos_->push_back(all[k * all.size() / n]);  // evenly spaced
      }
    }
    if (photos_->empty()) skipped = "no calibration photos (--calibration-photos)";
    return &*photos_;
  }

  const CorpusOptions& o_;
  std::optional<std::vector<fs::path>> photos_;
  std::map<std::string, std::unique_ptr<BaseModel>> cache_;
};

// Expected counts per fault type: weights and hyperparameters per layer (as the paper's Table 2
// counts them), every other fault once per injection. Benign rewrites expect nothing.
json expected_counts(const json& truth) {
  json counts = json::object();
  for (const auto& e : truth["injections"]) {
    const std::string type = e["type"];
    if (type == "benign") continue;
    const size_t n = (type == "WB" || type == "LH") ? e["nodes"].size() : 1;
    counts[type] = counts.value(type, 0) + n;
  }
  return counts;
}

}  // namespace

namespace {

// The classification cases (label task, fed the evaluation's photos).
const std::vector<CorpusCase>& classification_cases() {
  // The crop and resize of the 'tf' preset, for cases whose Target expects 'tf' values.
  static const json kTfGeometry{{"crop", "central_fraction"}, {"antialias", false}};
  static const std::vector<CorpusCase> cases{
      // ---- one fault type each ----
      {"mobilenetv2-wb-int8-channel", "single", "mobilenetv2", {"wb:int8-channel"},
       "2 MobileNetV2 Keras-to-TFLite: WB 96/96", "int8 weights re-quantized with one scale per output channel (the Source already holds per-tensor int8 values)"},
      {"mobilenetv2-wb-fp16", "single", "mobilenetv2", {"wb:fp16"}, "5 MobileNetV2 TF-to-TFLite: WB 68/66",
       "float16 weight storage"},
      {"mobilenetv2-lh-drop-pads", "single", "mobilenetv2", {"lh:drop-pads"},
       "1/3 MobileNetV2 Keras-to-Torch, Torch-to-TF: LH", "onnxmltools #716: pads dropped from a Conv"},
      {"mobilenetv2-id-input-size", "single", "mobilenetv2", {"id:input-size=299"}, "9 ResNet101 Torch-to-TFLite: ID 1/1",
       "onnx2tflite #98: the input resized 224 -> 299, the graph left as it is"},
      {"resnet101v2-pp-caffe", "single", "resnet101v2", {"pp:preset=caffe"}, "9/10 ResNet101 Torch-to-TFLite/TF: PP 1/1",
       "the Target expects Keras 'caffe' preprocessing and is fed the Source's"},
      {"resnet101v2-wb-int8-tensor", "single", "resnet101v2", {"wb:int8-tensor"},
       "8 ResNet101 Keras-to-TFLite: WB 180/174", "int8 kernels on all 105 layers"},
      {"resnet101v2-lh-pads-and-pad-nodes", "single", "resnet101v2",
       {"benign:pad-into-conv", "lh:drop-pads:node=conv1_conv"}, "8/11 ResNet101: LH next to Pad nodes",
       "every ZeroPadding Pad merged into its Conv's pads (harmless), then the stem Conv's pads dropped"},
      {"resnet101v2-lh-dilations", "single", "resnet101v2", {"lh:dilations=2:node=conv1_conv"},
       "7 ResNet101 Keras-to-Torch: LH", "the stem Conv dilated"},
      {"resnet101v2-cg-add-pad", "single", "resnet101v2", {"cg:add-pad:node=conv1_conv"}, "11/13 ResNet101: CG 3/3, 1/1",
       "a Pad node added before the stem Conv"},
      {"resnet101v2-tss-input-transpose", "single", "resnet101v2", {"tss:input-transpose=0,3,2,1"},
       "13 ResNet101 TF-to-Keras: TSS 1/1", "onnxmltools #719: NHWC input, Transpose [0,3,2,1] for [0,3,1,2]"},
      {"resnet101v2-tss-gather-axis", "single", "resnet101v2-normalized", {"tss:gather-axis"},
       "14 InceptionV3 Torch-to-Keras: Gather/Unsqueeze axes", 
       "onnxmltools #719: NHWC input, the Transpose after the Gather/Unsqueeze/Mul/Add normalisation whose axes stay "
       "NCHW; on ResNet101 v2 with InceptionV3's in-graph normalisation because the Gathers then read 3 rows and "
       "InceptionV3's unpadded stem cannot run on 3 rows"},
      {"inceptionv3-wb-int8-channel", "single", "inceptionv3", {"wb:int8-channel"},
       "15 InceptionV3 TF-to-TFLite: WB 94/94", "int8 kernels, one scale per output channel, on all 95 layers"},
      {"inceptionv3-lh-drop-pads", "single", "inceptionv3", {"lh:drop-pads:node=conv2d_2"},
       "14 InceptionV3 Torch-to-Keras: LH 54/7", "onnxmltools #716: the stem's 'same' Conv loses its pads"},
      {"inceptionv3-id-tss", "single", "inceptionv3-nhwc", {"tss:input-transpose=0,3,2,1", "id:input-size=342"},
       "14 InceptionV3 Torch-to-Keras: ID 1/1, TSS 1/1",
       "an NHWC model made NCHW with a wrong Transpose before its Gather/Unsqueeze/Mul/Add normalisation, whose "
       "own Transpose must be corrected, and the input resized"},
      {"inceptionv3-pp-tf", "single", "inceptionv3", {"pp:preset=tf"}, "14 InceptionV3 Torch-to-Keras: PP 1/1",
       "the Target expects Keras 'tf' preprocessing and is fed the Source's (torch values with TF's crop: the graph "
       "cannot change the crop, so both sides use the one 'tf' implies)",
       kTfGeometry},
      {"inceptionv3-cg-add-pad", "single", "inceptionv3", {"cg:add-pad:node=conv2d"}, "CG: a Pad added",
       "a Pad node added before the first Conv"},
      {"paddleocr-wb-int8-tensor", "single", "paddleocr", {"wb:int8-tensor"},
       "the paper's unrepaired case: weights in Constant nodes", "int8 kernels stored in Constant nodes"},
      {"paddleocr-lh-clip-max", "single", "paddleocr", {"lh:clip-max-removed:node=all"}, "LH: clip bounds dropped",
       "every Clip loses its upper bound (hard-swish and ReLU6 become unbounded)"},
      // ---- several fault types ----
      {"mobilenetv2-torch-to-keras", "multi", "mobilenetv2",
       {"tss:input-transpose=0,3,2,1", "id:input-size=256", "lh:drop-pads"},
       "4 MobileNetV2 Torch-to-Keras: ID 1/1, TSS 1/1, LH 39/0", "input layout, input size and pads"},
      {"resnet101v2-keras-to-tflite", "multi", "resnet101v2",
       {"benign:bn-as-mul-add", "wb:int8-channel", "cg:add-pad:node=conv1_conv"},
       "8 ResNet101 Keras-to-TFLite: WB 180/174, LH 33/0, CG 37/0", "int8 weights among harmless BN rewrites, a Pad added"},
      {"inceptionv3-torch-to-keras", "multi", "inceptionv3-nhwc",
       {"pp:preset=tf", "tss:input-transpose=0,3,2,1", "id:input-size=342", "lh:drop-pads:node=conv2d_2"},
       "14 InceptionV3 Torch-to-Keras: PP 1/1, ID 1/1, TSS 1/1, LH 54/7", "the paper's four fault types of case 14",
       kTfGeometry},
      {"resnet101v2-tf-to-keras", "multi", "resnet101v2",
       {"tss:input-transpose=0,3,2,1", "id:input-size=256", "lh:dilations=2:node=conv1_conv", "cg:extra-output"},
       "13 ResNet101 TF-to-Keras: ID 1/1, TSS 1/1, LH 1/1, CG 1/1", "the four fault types of case 13"},
      {"paddleocr-multi", "multi", "paddleocr", {"wb:int8-channel", "lh:clip-max-removed:node=all"},
       "weights in Constant nodes", "int8 weights and unbounded Clips"},
      // ---- harmless rewrites: nothing to repair ----
      {"mobilenetv2-ort-optimized", "benign", "mobilenetv2", {"benign:ort-optimized"}, "benign",
       "ONNX Runtime's saved optimized model"},
      {"mobilenetv2-weights-as-constants", "benign", "mobilenetv2", {"benign:weights-as-constants"}, "benign",
       "paddle2onnx-style Constant weights"},
      {"resnet101v2-fold-bn-pad-into-conv", "benign", "resnet101v2", {"benign:fold-bn", "benign:pad-into-conv"},
       "benign", "BatchNorm folded into Conv, Pad nodes merged into pads"},
      {"inceptionv3-bn-as-mul-add", "benign", "inceptionv3", {"benign:bn-as-mul-add", "benign:conv-pads-to-pad-node"},
       "benign", "BatchNorm as Mul+Add, Conv pads as Pad nodes"},
      {"resnet101v2-nhwc", "benign", "resnet101v2", {"benign:nhwc"}, "benign", "NHWC input with the right Transpose"},
      {"paddleocr-opset12", "benign", "paddleocr", {"benign:opset=12"}, "benign",
       "opset 9 -> 12 (ONNX 1.12 cannot convert its Softmax to 13: the input shape is unknown)"},
  };
  return cases;
}

// A task case's sample set, written once into output/data/<kind>/ for every case that uses it;
// the case.json `data` entry (paths relative to the case folder), or null with `skipped` set.
class TaskSamples {
 public:
  explicit TaskSamples(const CorpusOptions& o) : o_(o) {}

  Result<json> data_for(const CorpusCase& c, std::string& skipped) {
    if (c.samples.empty()) return json(nullptr);
    auto [it, fresh] = written_.try_emplace(c.samples, std::string());
    if (fresh) FETAFIX_TRY_STATUS(write_task_samples(c.samples, o_, o_.output / "data" / c.samples, it->second));
    skipped = it->second;
    if (!skipped.empty()) return json(nullptr);
    const std::string base = "../data/" + c.samples;
    return json{{"detection", base + "/detection"}, {"validation", base + "/validation"}, {"samples", o_.task_samples}};
  }

 private:
  const CorpusOptions& o_;
  std::map<std::string, std::string> written_;  // sample set -> why it was skipped ("" = written)
};

// One case's folder: the Source, the Target with the case's faults injected, its preset when the
// case overrides the base's, and case.json with the ground truth (docs/corpus.md).
Status write_case(const CorpusCase& c, const BaseModel& base, const json& data, const fs::path& output) {
  std::vector<FaultSpec> specs;
  for (const auto& text : c.faults) {
    FETAFIX_ASSIGN_OR_RETURN(auto spec, parse_fault_spec(text));
    specs.push_back(std::move(spec));
  }
  auto injected = inject(base.model, specs, 0);
  if (!injected.ok()) return make_error("case '{}': {}", c.name, injected.error().message);
  json truth = injected->ground_truth;
  truth.erase("edits");
  for (auto& e : truth["injections"]) e.erase("edits");
  std::string preset = base.preset;
  json preset_file = base.preset_file;
  if (!c.preset_overrides.is_null()) {
    if (preset_file.is_null()) preset_file = {{"base", base.preset}};
    for (const auto& [key, value] : c.preset_overrides.items()) preset_file[key] = value;
    preset_file["name"] = base.preset + "-" + c.name;
    preset = "preset.json";
  }
  json expected_preprocess = nullptr;
  for (const auto& e : truth["injections"])
    if (e["type"] == "PP") expected_preprocess = e["details"]["target_preset"];
  const json case_json{{"format", "fetafix-corpus-case"},
                       {"version", 1},
                       {"name", c.name},
                       {"kind", c.kind},
                       {"model", c.model},
                       {"model_description", base.description},
                       {"paper_row", c.paper_row},
                       {"note", c.note},
                       {"faults", c.faults},
                       {"task", c.task.empty() ? json(nullptr) : json(c.task)},
                       {"data", data},
                       {"source_preprocess", preset},
                       {"target_preprocess", preset},
                       {"expected", expected_counts(truth)},
                       {"expected_preprocess", expected_preprocess},
                       {"ground_truth", truth}};
  const fs::path dir = output / c.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("{}: cannot create folder: {}", dir.string(), ec.message());
  FETAFIX_TRY_STATUS(write_file_atomic(dir / "source.onnx", model::serialize_model(base.model)));
  FETAFIX_TRY_STATUS(write_file_atomic(dir / "target.onnx", model::serialize_model(injected->model)));
  if (preset == "preset.json") FETAFIX_TRY_STATUS(write_file_atomic(dir / "preset.json", preset_file.dump(2) + "\n"));
  FETAFIX_TRY_STATUS(write_file_atomic(dir / "case.json", case_json.dump(2) + "\n"));
  return Status::Ok();
}

}  // namespace

const std::vector<CorpusCase>& corpus_cases() {
  static const std::vector<CorpusCase> cases = [] {
    std::vector<CorpusCase> all = classification_cases();
    all.insert(all.end(), task_corpus_cases().begin(), task_corpus_cases().end());
    return all;
  }();
  return cases;
}

Result<std::vector<CorpusCaseStatus>> write_corpus(const CorpusOptions& options) {
  for (const auto& wanted : options.only)
    if (std::none_of(corpus_cases().begin(), corpus_cases().end(), [&](const CorpusCase& c) { return c.name == wanted; }))
      return make_error("no corpus case named '{}'", wanted);
  std::error_code ec;
  fs::create_directories(options.output, ec);
  if (ec) return make_error("{}: cannot create folder: {}", options.output.string(), ec.message());
  BaseModels bases(options);
  TaskSamples samples(options);
  std::vector<CorpusCaseStatus> statuses;
  json index_cases = json::array();
  for (const auto& c : corpus_cases()) {
    if (!options.only.empty() && std::find(options.only.begin(), options.only.end(), c.name) == options.only.end())
      continue;
    CorpusCaseStatus status{c.name, false, ""};
    FETAFIX_ASSIGN_OR_RETURN(const BaseModel* base, bases.get(c.model, status.skipped_reason));
    json data = nullptr;
    if (base) {
      FETAFIX_ASSIGN_OR_RETURN(data, samples.data_for(c, status.skipped_reason));
    }
    if (!base || !status.skipped_reason.empty()) {
      statuses.push_back(status);
      index_cases.push_back({{"name", c.name}, {"kind", c.kind}, {"skipped", status.skipped_reason}});
      continue;
    }
    FETAFIX_TRY_STATUS(write_case(c, *base, data, options.output));
    status.written = true;
    statuses.push_back(status);
    index_cases.push_back({{"name", c.name}, {"kind", c.kind}, {"written", true}});
  }
  const json index{{"format", "fetafix-corpus"},
                   {"version", 1},
                   {"resnet_width", options.resnet_width},
                   {"inception_width", options.inception_width},
                   {"calibration_count", options.calibration_count},
                   {"cases", index_cases}};
  FETAFIX_TRY_STATUS(write_file_atomic(options.output / "index.json", index.dump(2) + "\n"));
  return statuses;
}

}  // namespace fetafix::inject
