#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"

namespace fetafix::cli {
namespace {

int run_compare(const PairArgs& a) {
  auto pair = load_pair(a);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  auto result = compare::compare_models(p.source_side, p.target_side, a.images, p.compare);
  if (!result.ok()) return fail(result.error());
  for (const auto& w : result->warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << compare::format_report(*result);
  if (!a.json_path.empty()) {
    if (auto st = write_file_atomic(a.json_path, compare::to_json(*result).dump(2) + "\n"); !st.ok()) return fail(st.error());
    std::cout << "JSON written to " << a.json_path << "\n";
  }
  return result->summary.disagreeing == 0 ? kExitOk : kExitDifferent;
}

}  // namespace

void add_compare_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<PairArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Run Source and Target on every image of a folder and report where their top-1 labels differ.\n"
      "Exit code: 0 no image disagrees, 1 some disagree, 2 bad usage or bad input.");
  add_pair_options(cmd, *args);
  cmd->callback([&runner, args] { runner.action = [args] { return run_compare(*args); }; });
}

}  // namespace fetafix::cli
