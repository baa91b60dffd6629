#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/localize_options.h"
#include "cli/pair_options.h"
#include "cli/staged_outputs.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "compare/pair_setup.h"
#include "localize/localize.h"
#include "cli/cli_support.h"
#include "repair/impact.h"
#include "report/model_explorer.h"
#include "report/report.h"

namespace fetafix::cli {
namespace {

struct LocalizeCommandArgs {
  LocalizeArgs localize;
  std::string report, model_explorer;
  size_t impact_limit = repair::ImpactOptions{}.limit;
};

int run_localize(LocalizeCommandArgs& args) {
  LocalizeArgs& a = args.localize;
  const Stopwatch clock;
  RunFiles files = pair_run_files(a.pair);
  files.output("--report", args.report);
  files.output_folder("--model-explorer", args.model_explorer);
  if (auto st = on_root(check_run_files(files)); !st.ok()) return fail(st.error());
  auto pair = load_pair(a.pair);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  finish_localize_options(a, p);
  const auto& o = a.options;
  auto samples = compare::open_samples(a.pair.samples_dir(), o.compare);
  if (!samples.ok()) return fail(samples.error());
  auto result = localize::localize_faults(p.source_side, p.target_side, *samples, o);
  if (!result.ok()) return fail(result.error());
  // While samples disagree: each fault reverted alone (WB ones as one group), repair/impact.h.
  repair::ImpactOptions impact;
  impact.limit = args.impact_limit;
  if (!a.pair.quiet && ranks().is_root())
    impact.log = [](const std::string& line) { std::fprintf(stderr, "localize: %s\n", line.c_str()); };
  repair::add_fault_impact(p.source_side, p.target_side, *samples, o.compare, *result, impact);
  // Disagreement that no finding explains is no success either (docs/cli.md).
  const int exit_code = result->nothing_to_repair() ? kExitOk : kExitDifferent;
  if (!ranks().is_root()) return exit_code;  // every rank has the result; rank 0 writes it
  // Every output is made before any is written: a failure leaves none behind.
  PendingOutputs outputs;
  if (!a.pair.json_path.empty())
    if (auto st = outputs.add(a.pair.json_path, json_text(localize::to_json(*result))); !st.ok()) return fail(st.error());
  if (!args.model_explorer.empty())
    if (auto st = add_model_explorer_files(outputs, args.model_explorer, p.source.proto, p.target.proto, *result,
                                           result->findings);
        !st.ok())
      return fail(st.error());
  if (!args.report.empty()) {
    report::ReportInput in;
    in.command = "localize";
    in.source = p.source_side;
    in.target = p.target_side;
    in.image_dir = a.pair.samples_dir();
    in.localization = &*result;
    in.exit_code = exit_code;
    in.seconds = clock.seconds();
    auto html = report::render_report(in);
    if (!html.ok()) return fail(html.error());
    if (auto st = outputs.add(args.report, *html); !st.ok()) return fail(st.error());
  }
  if (auto st = outputs.commit(); !st.ok()) return fail(st.error());
  for (const auto& w : result->detection.warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  std::cout << localize::format_report(*result);
  if (!a.pair.json_path.empty()) std::cout << "JSON written to " << a.pair.json_path << "\n";
  if (!args.model_explorer.empty())
    std::cout << "Model Explorer mapping and node data written to " << args.model_explorer << "\n";
  if (!args.report.empty()) std::cout << "Report written to " << args.report << "\n";
  return exit_code;
}

}  // namespace

void add_localize_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<LocalizeCommandArgs>();
  CLI::App* cmd = app.add_subcommand(
      "localize",
      "Find where Target differs from Source: preprocessing (PP), input dimensions (ID), tensor shape and\n"
      "structure (TSS), weights and biases (WB), layer hyperparameters (LH), computation graph (CG).\n"
      "Exit code: 0 nothing found, 1 faults found (or images disagree and no check explains why), 2 bad usage or\n"
      "bad input.");
  add_localize_options(cmd, args->localize);
  cmd->add_option("--impact-limit", args->impact_limit,
                  "While samples disagree, revert each fault alone (WB faults together) and count the samples "
                  "whose outcome changes, for at most this many reverts (0 = off; docs/localize-json.md)")
      ->capture_default_str();
  cmd->add_option("--report", args->report, "Also write a self-contained HTML report here (docs/report.md)")
      ->check(non_empty_path());
  cmd->add_option("--model-explorer", args->model_explorer,
                  "Also write a node mapping and node data for Google's Model Explorer into this folder "
                  "(docs/model-explorer.md)")
      ->check(non_empty_path());
  cmd->callback([&runner, args] { runner.action = [args] { return run_localize(*args); }; });
}

}  // namespace fetafix::cli
