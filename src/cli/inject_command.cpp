// fetafix inject: plants known converter faults (or harmless rewrites) into a model and writes
// the ground truth beside it (docs/inject.md).
#include <filesystem>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "inject/inject.h"
#include "model/model.h"

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
  if (same_file(output, model_path)) return fail(make_error("-o {}: refusing to overwrite the input model", output.string()));
  if (same_file(truth, model_path)) return fail(make_error("--truth {}: refusing to overwrite the input model", truth.string()));
  if (same_file(truth, output)) return fail(make_error("--truth {}: the same file as -o", truth.string()));
  for (const auto& p : {output, truth})
    if (auto st = check_writable(p); !st.ok()) return fail(st.error());
  std::vector<inject::FaultSpec> specs;
  for (const auto& text : a.faults) {
    auto spec = inject::parse_fault_spec(text);
    if (!spec.ok()) return fail(spec.error());
    specs.push_back(std::move(spec).value());
  }
  auto model = model::load_model(model_path);
  if (!model.ok()) return fail(model.error());
  auto result = inject::inject(model->proto, specs, a.seed);
  if (!result.ok()) return fail(make_error("{}: {}", model_path.string(), result.error().message));
  result->ground_truth["model"] = model_path.string();
  result->ground_truth["output"] = output.string();
  if (auto st = model::save_model(result->model, output, {model_path}); !st.ok()) return fail(st.error());
  if (auto st = write_file_atomic(truth, result->ground_truth.dump(2) + "\n"); !st.ok()) return fail(st.error());
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
  cmd->add_option("-o,--output", args->output, "Where to write the changed model")->required();
  cmd->add_option("--fault", args->faults,
                  "TYPE:FAULT[=VALUE][:KEY=VALUE]..., repeatable, applied in order (e.g. wb:fp16, "
                  "lh:drop-pads:node=conv1, benign:fold-bn)")
      ->required();
  cmd->add_option("--truth", args->truth, "Ground-truth JSON (default: OUTPUT with extension .truth.json)");
  cmd->add_option("--seed", args->seed, "Seed for node=random")->capture_default_str();
  cmd->callback([&runner, args] { runner.action = [args] { return run_inject(*args); }; });
}

}  // namespace fetafix::cli
