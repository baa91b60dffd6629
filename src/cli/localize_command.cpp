#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/localize_options.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "localize/localize.h"
#include "report/cli_support.h"
#include "report/model_explorer.h"
#include "report/report.h"

namespace fetafix::cli {
namespace {

struct LocalizeCommandArgs {
  LocalizeArgs localize;
  std::string report, model_explorer;
};

int run_localize(LocalizeCommandArgs& args) {
  LocalizeArgs& a = args.localize;
  const report::Stopwatch clock;
  const std::vector<std::string> inputs{a.pair.source_path, a.pair.target_path};
  if (auto st = on_root(report::check_output_path(args.report, inputs, "--report")); !st.ok()) return fail(st.error());
  if (auto st = on_root(report::check_output_folder(args.model_explorer, inputs, "--model-explorer")); !st.ok())
    return fail(st.error());
  auto pair = load_pair(a.pair);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  finish_localize_options(a, p);
  const auto& o = a.options;
  auto result = localize::localize_faults(p.source_side, p.target_side, a.pair.images, o);
  if (!result.ok()) return fail(result.error());
  if (!ranks().is_root()) return result->fault_count() == 0 ? kExitOk : kExitDifferent;  // rank 0 writes
  for (const auto& w : result->detection.warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << localize::format_report(*result);
  if (!a.pair.json_path.empty()) {
    if (auto st = write_file_atomic(a.pair.json_path, localize::to_json(*result).dump(2) + "\n"); !st.ok())
      return fail(st.error());
    std::cout << "JSON written to " << a.pair.json_path << "\n";
  }
  const int exit_code = result->fault_count() == 0 ? kExitOk : kExitDifferent;
  if (!args.model_explorer.empty()) {
    auto files = report::write_model_explorer_files(args.model_explorer, p.source.proto, p.target.proto, *result,
                                                    result->findings);
    if (!files.ok()) return fail(files.error());
    std::cout << "Model Explorer mapping and node data written to " << args.model_explorer << "\n";
  }
  if (!args.report.empty()) {
    report::ReportInput in;
    in.command = "localize";
    in.source = p.source_side;
    in.target = p.target_side;
    in.image_dir = a.pair.images;
    in.localization = &*result;
    in.exit_code = exit_code;
    in.seconds = clock.seconds();
    if (auto st = report::write_report(args.report, in); !st.ok()) return fail(st.error());
    std::cout << "Report written to " << args.report << "\n";
  }
  return exit_code;
}

}  // namespace

void add_localize_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<LocalizeCommandArgs>();
  CLI::App* cmd = app.add_subcommand(
      "localize",
      "Find where Target differs from Source: preprocessing (PP), input dimensions (ID), tensor shape and\n"
      "structure (TSS), weights and biases (WB), layer hyperparameters (LH), computation graph (CG).\n"
      "Exit code: 0 nothing found, 1 faults found, 2 bad usage or bad input.");
  add_localize_options(cmd, args->localize);
  cmd->add_option("--report", args->report, "Also write a self-contained HTML report here (docs/report.md)");
  cmd->add_option("--model-explorer", args->model_explorer,
                  "Also write a node mapping and node data for Google's Model Explorer into this folder "
                  "(docs/model-explorer.md)");
  cmd->callback([&runner, args] { runner.action = [args] { return run_localize(*args); }; });
}

}  // namespace fetafix::cli
