// `fetafix apply PATCH TARGET -o OUT`: replays a repair patch on the Target it was made for.
#include <cstdio>
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
#include "runtime/validate.h"

namespace fetafix::cli {
namespace {

struct ApplyArgs {
  std::string patch, target, output;
  bool no_cleanup = false;
};

int run_apply(const ApplyArgs& a) {
  namespace fs = std::filesystem;
  RunFiles files;
  files.input("the patch", a.patch);
  files.input("the Target model", a.target);
  files.output("-o", a.output);
  if (auto st = check_run_files(files); !st.ok()) return fail(st.error());
  auto patch = repair::load_patch(a.patch);
  if (!patch.ok()) return fail(patch.error());
  auto target = model::load_model(a.target);
  if (!target.ok()) return fail(target.error());
  onnx::ModelProto patched = target->proto;
  if (auto st = repair::apply_patch(*patch, patched); !st.ok())
    return fail(make_error("patch '{}' does not apply to '{}': {}", a.patch, a.target, st.error().message));
  if (!a.no_cleanup) model::cleanup_model(patched);  // as `fetafix repair` does before writing
  // A patch may set values no model can hold (5 pads on a 2-D Conv, a weight of the wrong shape):
  // what ONNX Runtime cannot load is never written.
  auto warnings = runtime::validate_written_model(patched, &target->proto, a.output);
  if (!warnings.ok())
    return fail(make_error("patch '{}' makes an invalid model of '{}': {}", a.patch, a.target, warnings.error().message));
  for (const auto& w : *warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  if (auto st = model::save_model(patched, a.output, {fs::path(a.patch), fs::path(a.target)}); !st.ok())
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
      "repaired model byte for byte; the result must load in ONNX Runtime before it is written.\n"
      "Exit code: 0 written, 2 bad patch, bad model or a patch that does not apply or makes an invalid model.");
  cmd->add_option("patch", args->patch, "Patch file (JSON, schema fetafix.patch/1)")->required();
  cmd->add_option("target", args->target, "Target ONNX model the patch was made for")->required();
  cmd->add_option("-o,--output", args->output, "Repaired ONNX model to write (never an input)")
      ->required()->check(non_empty_path());
  cmd->add_flag("--no-cleanup", args->no_cleanup,
                "Keep what the patched model no longer uses (for a repair run with --no-cleanup)");
  cmd->callback([&runner, args] { runner.action = [args] { return run_apply(*args); }; });
}

}  // namespace fetafix::cli
