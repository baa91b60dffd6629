#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/fs.h"
#include "compare/compare.h"
#include "model/model.h"

namespace fetafix::cli {
namespace fs = std::filesystem;

namespace {

struct CompareArgs {
  std::string source_path, target_path, images;
  std::string source_preprocess = "auto", target_preprocess = "auto";
  std::string source_override, target_override;
  int top_k = 5;
  std::optional<int64_t> label_offset;
  int threads = 0;
  int batch_size = 8;
  std::string json_path;
  bool strict = false, quiet = false;
};

int fail(const Error& e) {
  std::fprintf(stderr, "fetafix: %s\n", e.message.c_str());
  return e.exit_code;
}

// DType of the first graph input that is not an initializer.
DType image_input_dtype(const onnx::ModelProto& m) {
  for (const auto& in : m.graph().input()) {
    bool is_init = false;
    for (const auto& init : m.graph().initializer()) is_init |= init.name() == in.name();
    if (!is_init) return static_cast<DType>(in.type().tensor_type().elem_type());
  }
  return DType::kUndefined;
}

// "auto" picks by the model's input type: raw bytes for uint8 inputs (quantized models),
// the torch preset otherwise.
Result<data::Preset> make_preset(const std::string& spec, const std::string& overrides, const onnx::ModelProto& m,
                                 const char* flag) {
  std::string name = spec;
  if (name == "auto") name = image_input_dtype(m) == DType::kUInt8 ? "uint8" : "torch";
  auto preset = data::resolve_preset(name);
  if (!preset.ok()) return Error{fmt::format("{}: {}", flag, preset.error().message), kExitBadInput};
  if (!overrides.empty()) {
    auto j = nlohmann::json::parse(overrides, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return make_error("{}-override: not a JSON object: {}", flag, overrides);
    FETAFIX_TRY_STATUS(data::apply_overrides(*preset, j));
  }
  return preset;
}

int run_compare(const CompareArgs& a) {
  const fs::path json_path = a.json_path;
  if (!a.json_path.empty()) {
    for (const auto& input : {a.source_path, a.target_path})
      if (same_file(json_path, input)) return fail(make_error("{}: refusing to overwrite an input model", a.json_path));
    if (auto st = check_writable(json_path); !st.ok()) return fail(st.error());
  }
  auto source = model::load_model(a.source_path);
  if (!source.ok()) return fail(source.error());
  auto target = model::load_model(a.target_path);
  if (!target.ok()) return fail(target.error());
  auto sp = make_preset(a.source_preprocess, a.source_override, source->proto, "--source-preprocess");
  if (!sp.ok()) return fail(sp.error());
  auto tp = make_preset(a.target_preprocess, a.target_override, target->proto, "--target-preprocess");
  if (!tp.ok()) return fail(tp.error());

  compare::CompareOptions opt;
  opt.top_k = a.top_k;
  opt.label_offset = a.label_offset;
  opt.threads = a.threads;
  opt.batch_size = a.batch_size;
  opt.strict = a.strict;
  opt.progress = a.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto;
  auto result = compare::compare_models({&source->proto, a.source_path, *sp}, {&target->proto, a.target_path, *tp},
                                        a.images, opt);
  if (!result.ok()) return fail(result.error());
  for (const auto& w : result->warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << compare::format_report(*result);
  if (!a.json_path.empty()) {
    if (auto st = write_file_atomic(json_path, compare::to_json(*result).dump(2) + "\n"); !st.ok()) return fail(st.error());
    std::cout << "JSON written to " << a.json_path << "\n";
  }
  return result->summary.disagreeing == 0 ? kExitOk : kExitDifferent;
}

}  // namespace

void add_compare_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Run Source and Target on every image of a folder and report where their top-1 labels differ.\n"
      "Exit code: 0 no image disagrees, 1 some disagree, 2 bad usage or bad input.");
  cmd->add_option("SOURCE", args->source_path, "Source model (.onnx)")->required();
  cmd->add_option("TARGET", args->target_path, "Target (converted) model (.onnx)")->required();
  cmd->add_option("--images", args->images, "Folder of .jpg/.jpeg/.png images (searched recursively)")->required();
  cmd->add_option("--source-preprocess", args->source_preprocess,
                  "Preset for the Source: torch, tf (inception), caffe, raw, uint8, auto, or a JSON preset file. "
                  "auto = uint8 for a uint8 input, torch otherwise")
      ->capture_default_str();
  cmd->add_option("--target-preprocess", args->target_preprocess, "Preset for the Target (same choices)")
      ->capture_default_str();
  cmd->add_option("--source-preprocess-override", args->source_override,
                  "JSON object of preset fields to change, e.g. '{\"crop\":\"stretch\",\"width\":299}'");
  cmd->add_option("--target-preprocess-override", args->target_override, "Same, for the Target");
  cmd->add_option("--top-k", args->top_k, "Length of the label lists compared")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--label-offset", args->label_offset,
                  "Target label - offset = Source label (1 for a 1001-class Target with a background class)");
  cmd->add_option("--threads", args->threads, "ONNX Runtime threads per model (0 = one per core)")
      ->capture_default_str()->check(CLI::Range(0, 256));
  cmd->add_option("--batch-size", args->batch_size, "Images per inference call")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--json", args->json_path, "Also write a per-image JSON report here (docs/compare-json.md)");
  cmd->add_flag("--strict", args->strict, "Fail on the first image that cannot be decoded instead of skipping it");
  cmd->add_flag("--quiet,-q", args->quiet, "No progress output");
  cmd->callback([&runner, args] { runner.action = [args] { return run_compare(*args); }; });
}

}  // namespace fetafix::cli
