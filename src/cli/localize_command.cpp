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

namespace fetafix::cli {
namespace {

int run_localize(LocalizeArgs& a) {
  auto pair = load_pair(a.pair);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  finish_localize_options(a, p);
  const auto& o = a.options;
  auto result = localize::localize_faults(p.source_side, p.target_side, a.pair.images, o);
  if (!result.ok()) return fail(result.error());
  for (const auto& w : result->detection.warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << localize::format_report(*result);
  if (!a.pair.json_path.empty()) {
    if (auto st = write_file_atomic(a.pair.json_path, localize::to_json(*result).dump(2) + "\n"); !st.ok())
      return fail(st.error());
    std::cout << "JSON written to " << a.pair.json_path << "\n";
  }
  return result->fault_count() == 0 ? kExitOk : kExitDifferent;
}

}  // namespace

void add_localize_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<LocalizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "localize",
      "Find where Target differs from Source: preprocessing (PP), input dimensions (ID), tensor shape and\n"
      "structure (TSS), weights and biases (WB), layer hyperparameters (LH), computation graph (CG).\n"
      "Exit code: 0 nothing found, 1 faults found, 2 bad usage or bad input.");
  add_localize_options(cmd, *args);
  cmd->callback([&runner, args] { runner.action = [args] { return run_localize(*args); }; });
}

}  // namespace fetafix::cli
