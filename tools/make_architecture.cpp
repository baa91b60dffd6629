// fetafix-architecture: writes ResNet101 v2 or InceptionV3 with deterministic weights, its
// BatchNorm statistics calibrated on a photo folder (src/inject/architectures.h, docs/corpus.md).
#include <algorithm>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "data/image.h"
#include "data/preprocess.h"
#include "inject/architectures.h"
#include "model/model.h"

using namespace fetafix;

int main(int argc, char** argv) {
  CLI::App app{"Writes ResNet101 v2 or InceptionV3 with deterministic weights calibrated on photos"};
  std::string architecture, output, photos_dir, block = "none", preset_name = "torch";
  inject::ArchitectureOptions options;
  size_t photo_count = 32;
  app.add_option("architecture", architecture, "resnet101v2 or inceptionv3")->required();
  app.add_option("output", output, "the model to write")->required();
  app.add_option("--width", options.width, "channel multiplier (default 1)");
  app.add_option("--size", options.image_size, "input height and width (default: the architecture's)");
  app.add_option("--classes", options.classes, "output classes (default 1000)");
  app.add_option("--seed", options.seed, "weight seed (default 1)");
  app.add_option("--input-block", block, "none, nchw or nhwc: in-graph per-channel normalisation (default none)");
  app.add_option("--calibrate", photos_dir, "photo folder whose first --photos images calibrate the BatchNorms");
  app.add_option("--photos", photo_count, "how many photos calibrate (default 32)");
  app.add_option("--preset", preset_name, "preprocessing the model is fed (default torch)");
  CLI11_PARSE(app, argc, argv);

  if (block == "none") options.input_block = inject::InputBlock::kNone;
  else if (block == "nchw") options.input_block = inject::InputBlock::kNchw;
  else if (block == "nhwc") options.input_block = inject::InputBlock::kNhwc;
  else {
    std::fprintf(stderr, "fetafix-architecture: --input-block: '%s' is not none, nchw or nhwc\n", block.c_str());
    return 2;
  }
  Result<onnx::ModelProto> model = make_error("unknown architecture '{}' (resnet101v2, inceptionv3)", architecture);
  if (architecture == "resnet101v2") model = inject::build_resnet101_v2(options);
  else if (architecture == "inceptionv3") model = inject::build_inception_v3(options);
  if (!model.ok()) {
    std::fprintf(stderr, "fetafix-architecture: %s\n", model.error().message.c_str());
    return 2;
  }
  if (!photos_dir.empty()) {
    auto files = data::list_images(photos_dir);
    auto preset = data::resolve_preset(preset_name);
    if (!files.ok() || !preset.ok()) {
      std::fprintf(stderr, "fetafix-architecture: %s\n",
                   (!files.ok() ? files.error() : preset.error()).message.c_str());
      return 2;
    }
    files->resize(std::min(files->size(), photo_count));
    auto report = inject::calibrate_on_photos(*model, *files, *preset);
    if (!report.ok()) {
      std::fprintf(stderr, "fetafix-architecture: %s: %s\n", photos_dir.c_str(), report.error().message.c_str());
      return 2;
    }
    std::printf("calibrated %zu BatchNorms on %zu photos\n", report->batch_norms, report->photos);
  }
  if (auto st = model::save_model(*model, output); !st.ok()) {
    std::fprintf(stderr, "fetafix-architecture: %s\n", st.error().message.c_str());
    return 2;
  }
  std::printf("wrote %s\n", output.c_str());
  return 0;
}
