// fetafix-corpus OUTDIR: writes the evaluation corpus (src/inject/corpus.h, docs/corpus.md):
// one folder per case with source.onnx, target.onnx and case.json.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "inject/corpus.h"

using namespace fetafix;

namespace {

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// scripts/make_ocr_samples.sh with the corpus' photos: FIRST=first, its messages kept quiet
// unless it fails.
Status render_with_script(const std::filesystem::path& assets, const std::string& kind, const std::filesystem::path& dir,
                          int count, int first, int size) {
  const std::string script = std::string(FETAFIX_SOURCE_DIR) + "/scripts/make_ocr_samples.sh";
  const std::string command =
      fmt::format("FETAFIX_ASSETS={} FIRST={} bash {} {} {} {} {} 2>/dev/null", shell_quoted(assets.string()), first,
                  shell_quoted(script), kind, shell_quoted(dir.string()), count, size);
  if (std::system(command.c_str()) != 0) return make_error("{}: failed: {}", script, command);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes the evaluation corpus: Source/Target pairs with planted faults (docs/corpus.md)"};
  inject::CorpusOptions o;
  std::string output, assets, photos;
  bool list = false;
  app.add_option("output", output, "folder to write the cases into (e.g. <build>/corpus)");
  app.add_option("--assets", assets, "the shared assets folder (default: $FETAFIX_ASSETS, else ../shared/assets "
                                     "beside the source tree)");
  app.add_option("--calibration-photos", photos,
                 "photos that calibrate the built models' BatchNorms (default: <assets>/images/imagenet-samples, "
                 "else /usr/share/backgrounds/mate/nature)");
  app.add_option("--calibration-count", o.calibration_count, "photos used, evenly spaced (default 32)");
  app.add_option("--resnet-width", o.resnet_width, "ResNet101 v2 channel multiplier (default 0.25)");
  app.add_option("--inception-width", o.inception_width, "InceptionV3 channel multiplier (default 0.25)");
  std::string ocr_models;
  app.add_option("--ocr-models", ocr_models, "the PP-OCRv4 models of the task cases (default: $FETAFIX_OCR_MODELS, "
                                             "else third_party/ocr-models of the source tree)");
  app.add_option("--task-samples", o.task_samples, "samples in each half of a task case's data (default 16)");
  app.add_option("--cases", o.only, "only these cases (names, comma-separated)")->delimiter(',');
  app.add_flag("--list", list, "print the cases and exit");
  CLI11_PARSE(app, argc, argv);

  if (list) {
    for (const auto& c : inject::corpus_cases()) {
      std::string faults;
      for (const auto& f : c.faults) faults += (faults.empty() ? "" : " ") + f;
      std::printf("%-36s %-6s %-22s %s\n", c.name.c_str(), c.kind.c_str(), c.model.c_str(), faults.c_str());
    }
    return 0;
  }
  if (output.empty()) {
    std::fprintf(stderr, "fetafix-corpus: give the output folder (or --list)\n");
    return 2;
  }
  o.output = output;
  if (assets.empty()) {
    const char* env = std::getenv("FETAFIX_ASSETS");
    assets = env ? env : FETAFIX_DEFAULT_ASSETS;
  }
  o.assets = assets;
  if (photos.empty()) {
    const std::filesystem::path imagenet = o.assets / "images" / "imagenet-samples";
    photos = !assets.empty() && std::filesystem::is_directory(imagenet) ? imagenet.string()
                                                                         : "/usr/share/backgrounds/mate/nature";
  }
  o.calibration_photos = photos;
  if (ocr_models.empty()) {
    const char* env = std::getenv("FETAFIX_OCR_MODELS");
    ocr_models = env && *env ? env : std::string(FETAFIX_SOURCE_DIR) + "/third_party/ocr-models";
  }
  o.ocr_models = ocr_models;
  o.render_ocr_samples = [&](const std::string& kind, const std::filesystem::path& dir, int count, int first,
                             int size) { return render_with_script(o.assets, kind, dir, count, first, size); };
  auto statuses = inject::write_corpus(o);
  if (!statuses.ok()) {
    std::fprintf(stderr, "fetafix-corpus: %s\n", statuses.error().message.c_str());
    return 2;
  }
  size_t written = 0;
  for (const auto& s : *statuses) {
    if (s.written) ++written;
    else std::printf("skipped %s: %s\n", s.name.c_str(), s.skipped_reason.c_str());
  }
  std::printf("wrote %zu of %zu cases to %s (calibration photos: %s)\n", written, statuses->size(), output.c_str(),
              photos.c_str());
  return 0;
}
