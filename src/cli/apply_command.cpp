// `fetafix apply PATCH TARGET -o OUT`: replays a repair patch on the Target it was made for.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "model/cleanup.h"
#include "model/model.h"
#include "repair/patch.h"

namespace fetafix::cli {
namespace {

struct ApplyArgs {
  std::string patch, target, output;
  bool no_cleanup = false;
};

int run_apply(const ApplyArgs& a) {
  namespace fs = std::filesystem;
  for (const auto& input : {a.patch, a.target})
    if (same_file(a.output, input)) return fail(make_error("output '{}' would overwrite the input '{}'", a.output, input));
  if (auto st = check_writable(a.output); !st.ok()) return fail(st.error());
  auto patch = repair::load_patch(a.patch);
  if (!patch.ok()) return fail(patch.error());
  auto target = model::load_model(a.target);
  if (!target.ok()) return fail(target.error());
  if (auto st = repair::apply_patch(*patch, target->proto); !st.ok())
    return fail(make_error("patch '{}' does not apply to '{}': {}", a.patch, a.target, st.error().message));
  if (!a.no_cleanup) model::cleanup_model(target->proto);  // as `fetafix repair` does before writing
  if (auto st = model::save_model(target->proto, a.output, {fs::path(a.patch), fs::path(a.target)}); !st.ok())
    return fail(st.error());
  std::cout << "applied " << patch->edits.size() << " edit(s) to " << a.target << " -> " << a.output << "\n";
  if (patch->preprocess)
    std::cout << "preprocess: feed the model with preset " << patch->preprocess->to_json().dump() << "\n";
  return kExitOk;
}

}  // namespace

void add_apply_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<ApplyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "apply",
      "Replay a repair patch (docs/repair-strategies.md) on the Target it was made for, reproducing the\n"
      "repaired model byte for byte. Exit code: 0 written, 2 bad patch, bad model or a patch that does not apply.");
  cmd->add_option("patch", args->patch, "Patch file (JSON, schema fetafix.patch/1)")->required();
  cmd->add_option("target", args->target, "Target ONNX model the patch was made for")->required();
  cmd->add_option("-o,--output", args->output, "Repaired ONNX model to write (never an input)")->required();
  cmd->add_flag("--no-cleanup", args->no_cleanup,
                "Keep what the patched model no longer uses (for a repair run with --no-cleanup)");
  cmd->callback([&runner, args] { runner.action = [args] { return run_apply(*args); }; });
}

}  // namespace fetafix::cli
