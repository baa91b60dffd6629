#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "cli/cli_support.h"
#include "common/json_text.h"
#include "report/report.h"

namespace fetafix::cli {
namespace {

struct CompareArgs {
  PairArgs pair;
  std::string report;
};

int run_compare(const CompareArgs& args) {
  const PairArgs& a = args.pair;
  const Stopwatch clock;
  RunFiles files = pair_run_files(a);
  files.output("--report", args.report);
  if (auto st = on_root(check_run_files(files)); !st.ok()) return fail(st.error());
  auto pair = load_pair(a);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  auto result = compare::compare_models(p.source_side, p.target_side, a.samples_dir(), p.compare);
  if (!result.ok()) return fail(result.error());
  // Known only once the task is resolved; still before any output is written.
  if (!args.report.empty() && (result->summary.task != "label" || !result->image_input))
    return fail(make_error("--report: the HTML report shows label tasks on images in this version; use --json for "
                           "the {} task", result->summary.task));
  const int exit_code = result->summary.disagreeing == 0 ? kExitOk : kExitDifferent;
  if (!ranks().is_root()) return exit_code;  // every rank has the result; rank 0 writes it
  // Every output is made before any is written: a failure leaves none behind.
  PendingOutputs outputs;
  if (!a.json_path.empty())
    if (auto st = outputs.add(a.json_path, json_text(compare::to_json(*result))); !st.ok()) return fail(st.error());
  if (!args.report.empty()) {
    report::ReportInput in;
    in.command = "compare";
    in.source = p.source_side;
    in.target = p.target_side;
    in.image_dir = a.samples_dir();
    in.before = &*result;
    in.exit_code = exit_code;
    in.seconds = clock.seconds();
    auto html = report::render_report(in);
    if (!html.ok()) return fail(html.error());
    if (auto st = outputs.add(args.report, *html); !st.ok()) return fail(st.error());
  }
  if (auto st = outputs.commit(); !st.ok()) return fail(st.error());
  for (const auto& w : result->warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << compare::format_report(*result);
  if (!a.json_path.empty()) std::cout << "JSON written to " << a.json_path << "\n";
  if (!args.report.empty()) std::cout << "Report written to " << args.report << "\n";
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
  add_pair_options(cmd, args->pair);
  cmd->add_option("--report", args->report, "Also write a self-contained HTML report here (docs/report.md)")
      ->check(non_empty_path());
  cmd->callback([&runner, args] { runner.action = [args] { return run_compare(*args); }; });
}

}  // namespace fetafix::cli
