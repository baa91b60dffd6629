#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "report/cli_support.h"
#include "report/report.h"

namespace fetafix::cli {
namespace {

struct CompareArgs {
  PairArgs pair;
  std::string report;
};

int run_compare(const CompareArgs& args) {
  const PairArgs& a = args.pair;
  const report::Stopwatch clock;
  if (auto st = on_root(report::check_output_path(args.report, {a.source_path, a.target_path}, "--report")); !st.ok())
    return fail(st.error());
  auto pair = load_pair(a);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  auto result = compare::compare_models(p.source_side, p.target_side, a.samples_dir(), p.compare);
  if (!result.ok()) return fail(result.error());
  if (!args.report.empty() && (result->summary.task != "label" || !result->image_input))
    return fail(make_error("--report: the HTML report shows label tasks on images in this version; use --json for "
                           "the {} task", result->summary.task));
  const int exit_code = result->summary.disagreeing == 0 ? kExitOk : kExitDifferent;
  if (!ranks().is_root()) return exit_code;  // every rank has the result; rank 0 writes it
  for (const auto& w : result->warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << compare::format_report(*result);
  if (!a.json_path.empty()) {
    if (auto st = write_file_atomic(a.json_path, compare::to_json(*result).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"); !st.ok()) return fail(st.error());
    std::cout << "JSON written to " << a.json_path << "\n";
  }
  if (!args.report.empty()) {
    report::ReportInput in;
    in.command = "compare";
    in.source = p.source_side;
    in.target = p.target_side;
    in.image_dir = a.samples_dir();
    in.before = &*result;
    in.exit_code = exit_code;
    in.seconds = clock.seconds();
    if (auto st = report::write_report(args.report, in); !st.ok()) return fail(st.error());
    std::cout << "Report written to " << args.report << "\n";
  }
  return exit_code;
}

}  // namespace

void add_compare_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Run Source and Target on every sample of a folder and report where their outputs disagree: top-1 labels by\n"
      "default, or detections, masks, CTC text or raw tensors with --task (docs/cli.md).\n"
      "Exit code: 0 no sample disagrees, 1 some disagree, 2 bad usage or bad input.");
  add_pair_options(cmd, args->pair, PairScope::kAnyModel);
  cmd->add_option("--report", args->report, "Also write a self-contained HTML report here (docs/report.md)");
  cmd->callback([&runner, args] { runner.action = [args] { return run_compare(*args); }; });
}

}  // namespace fetafix::cli
