// fetafix inject: plants known converter faults (or harmless rewrites) into a model and writes
// the ground truth beside it (docs/inject.md).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "inject/inject.h"
#include "model/model.h"
#include "runtime/validate.h"

namespace fetafix::cli {
namespace {

namespace fs = std::filesystem;

struct InjectArgs {
  std::string model, output, truth;
  std::vector<std::string> faults;
  uint64_t seed = 0;
};

int run_inject(const InjectArgs& a) {
  const fs::path model_path = a.model, output = a.output;
  const fs::path truth = a.truth.empty() ? fs::path(output).replace_extension(".truth.json") : fs::path(a.truth);
  RunFiles files;
  files.input("the input model", model_path);
  files.output("-o", output);
  files.output("--truth", truth);
  if (auto st = check_run_files(files); !st.ok()) return fail(st.error());
  std::vector<inject::FaultSpec> specs;
  for (const auto& text : a.faults) {
    auto spec = inject::parse_fault_spec(text);
    if (!spec.ok()) return fail(spec.error());
    specs.push_back(std::move(spec).value());
  }
  // load_model refuses invalid models (a cycle, a negative dim): no faulted copy of one is made.
  auto model = model::load_model(model_path);
  if (!model.ok()) return fail(model.error());
  auto result = inject::inject(model->proto, specs, a.seed);
  if (!result.ok()) return fail(make_error("{}: {}", model_path.string(), result.error().message));
  auto warnings = runtime::validate_written_model(result->model, &model->proto, output.string(),
                                                  runtime::CheckerPolicy::kWarnOnly);
  if (!warnings.ok()) return fail(make_error("{}: the faults make a model that cannot be written: {}",
                                             model_path.string(), warnings.error().message));
  for (const auto& w : *warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  result->ground_truth["model"] = model_path.string();
  result->ground_truth["output"] = output.string();
  const std::string bytes = model::serialize_model(result->model);
  if (bytes.empty()) return fail(make_error("{}: the model is over protobuf's 2 GB limit", output.string()));
  PendingOutputs outputs;
  Status st = outputs.add(output, bytes);
  if (st.ok()) st = outputs.add(truth, json_text(result->ground_truth));
  if (st.ok()) st = outputs.commit();
  if (!st.ok()) return fail(st.error());
  for (const auto& entry : result->ground_truth["injections"])
    std::cout << entry["spec"].get<std::string>() << ": " << entry["description"].get<std::string>() << "\n";
  std::cout << "model written to " << output.string() << "\nground truth written to " << truth.string() << "\n";
  return kExitOk;
}

}  // namespace

void add_inject_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<InjectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inject",
      "Plant known converter faults (or harmless rewrites) into MODEL and write the ground truth:\n"
      "what was changed, as a replayable edit list. Spec grammar and faults: docs/inject.md.\n"
      "Exit code: 0 written, 2 bad usage or bad input.");
  cmd->add_option("model", args->model, "The ONNX model to change (never overwritten)")->required();
  cmd->add_option("-o,--output", args->output, "Where to write the changed model")->required()->check(non_empty_path());
  cmd->add_option("--fault", args->faults,
                  "TYPE:FAULT[=VALUE][:KEY=VALUE]..., repeatable, applied in order (e.g. wb:fp16, "
                  "lh:drop-pads:node=conv1, benign:fold-bn)")
      ->required();
  cmd->add_option("--truth", args->truth, "Ground-truth JSON (default: OUTPUT with extension .truth.json)")
      ->check(non_empty_path());
  cmd->add_option("--seed", args->seed, "Seed for node=random")->capture_default_str();
  cmd->callback([&runner, args] { runner.action = [args] { return run_inject(*args); }; });
}

}  // namespace fetafix::cli
