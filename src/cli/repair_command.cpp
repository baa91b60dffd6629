#include <cstdio>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/localize_options.h"
#include "cli/staged_outputs.h"
#include "common/fs.h"
#include "common/json_text.h"
#include "compare/pair_setup.h"
#include "repair/driver.h"
#include "repair/patch.h"
#include "repair/repair.h"
#include "cli/cli_support.h"
#include "report/model_explorer.h"
#include "report/report.h"
#include "repair/written_model.h"

namespace fetafix::cli {
namespace {

struct RepairArgs {
  LocalizeArgs localize;
  repair::RepairOptions options;
  std::string output, patch, validate_images, validate_data, report, model_explorer;
  bool strict_regressions = false;
  bool no_cleanup = false;
};

// Adds the --report page: it needs two more compares (the Target before and after the repair) for
// the top-k lists of its images table; everything else comes from the repair itself.
Status add_report(PendingOutputs& outputs, const RepairArgs& a, const LoadedPair& p, const repair::RepairResult& r,
                  const repair::RepairOptions& o, int exit_code, double seconds) {
  const PairArgs& pair_args = a.localize.pair;
  compare::CompareOptions co = o.localize.compare;
  co.progress = ProgressMode::kQuiet;
  co.comm = nullptr;  // rank 0 alone: the other ranks have finished
  if (o.log) o.log("comparing the Target before and after the repair for the report's top-k lists");
  FETAFIX_ASSIGN_OR_RETURN(auto before, compare::compare_models(p.source_side, p.target_side, pair_args.samples_dir(), co));
  compare::ModelSide repaired{&r.repaired, a.output, r.patch.preprocess ? *r.patch.preprocess : p.target_side.preset};
  FETAFIX_ASSIGN_OR_RETURN(auto after, compare::compare_models(p.source_side, repaired, pair_args.samples_dir(), co));
  report::ReportInput in;
  in.command = "repair";
  in.source = p.source_side;
  in.target = p.target_side;
  in.image_dir = pair_args.samples_dir();
  in.before = &before;
  in.after = &after;
  in.repair = &r;
  in.exit_code = exit_code;
  in.seconds = seconds;
  FETAFIX_ASSIGN_OR_RETURN(auto html, report::render_report(in));
  return outputs.add(a.report, html);
}

// Every output, made before any is written: the repaired model (repair/written_model.h), the
// patch, the log, the Model Explorer files and the report.
Status add_outputs(PendingOutputs& outputs, const RepairArgs& a, const LoadedPair& p, const repair::RepairResult& r,
                   const repair::RepairOptions& o, int exit_code, double seconds) {
  const PairArgs& pair_args = a.localize.pair;
  FETAFIX_ASSIGN_OR_RETURN(auto written, repair::written_model(r, p.target.proto, a.output, !a.no_cleanup));
  const auto& removed = written.removed;
  if (!pair_args.quiet && removed.removed() > 0)
    std::fprintf(stderr, "repair: removed what the repaired model no longer uses: %zu node(s), %zu initializer(s), "
                 "%zu value_info\n", removed.nodes_removed.size(), removed.initializers_removed.size(),
                 removed.value_info_removed.size());
  for (const auto& w : written.warnings) std::fprintf(stderr, "fetafix: warning: %s\n", w.c_str());
  FETAFIX_TRY_STATUS(outputs.add(a.output, written.bytes));
  if (!a.patch.empty()) FETAFIX_TRY_STATUS(outputs.add(a.patch, json_text(repair::patch_to_json(r.patch))));
  if (!pair_args.json_path.empty()) FETAFIX_TRY_STATUS(outputs.add(pair_args.json_path, json_text(repair::to_json(r))));
  if (a.report.empty() && a.model_explorer.empty()) return {};
  if (!a.model_explorer.empty()) {
    const auto summary = report::repair_localization_summary(r);
    FETAFIX_TRY_STATUS(add_model_explorer_files(outputs, a.model_explorer, p.source.proto, p.target.proto, summary,
                                                summary.findings));
  }
  if (!a.report.empty()) FETAFIX_TRY_STATUS(add_report(outputs, a, p, r, o, exit_code, seconds));
  return {};
}

void print_summary(const RepairArgs& a, const repair::RepairResult& r) {
  std::cout << repair::format_report(r);
  std::cout << "Repaired model written to " << a.output << "\n";
  if (!a.patch.empty()) std::cout << "Patch written to " << a.patch << " (replay: fetafix apply PATCH TARGET -o OUT)\n";
  if (r.patch.preprocess)
    std::cout << "Feed the repaired Target with preset: " << r.patch.preprocess->to_json().dump() << "\n";
  if (!a.localize.pair.json_path.empty()) std::cout << "Log written to " << a.localize.pair.json_path << "\n";
  if (!a.model_explorer.empty())
    std::cout << "Model Explorer mapping and node data written to " << a.model_explorer << "\n";
  if (!a.report.empty()) std::cout << "Report written to " << a.report << "\n";
}

// docs/cli.md: 0 fully repaired, 1 improved, 3 no improvement.
int exit_code_of(repair::RepairOutcome outcome) {
  switch (outcome) {
    case repair::RepairOutcome::kRepaired: return kExitOk;
    case repair::RepairOutcome::kImproved: return kExitDifferent;
    case repair::RepairOutcome::kNoImprovement: return kExitNoImprovement;
  }
  return kExitNoImprovement;
}

// --validate-images (only the images) or --validate-data (every sample kind) into o.validation.
Status open_validation(const RepairArgs& a, repair::RepairOptions& o) {
  if (a.validate_images.empty() && a.validate_data.empty()) return {};
  compare::CompareOptions co = o.localize.compare;
  co.samples.images_only = !a.validate_images.empty();
  FETAFIX_ASSIGN_OR_RETURN(o.validation, compare::open_samples(a.validate_images.empty() ? a.validate_data
                                                                                          : a.validate_images, co));
  return {};
}

int run_repair(RepairArgs& a) {
  const Stopwatch clock;
  PairArgs& pair_args = a.localize.pair;
  RunFiles files = pair_run_files(pair_args);
  files.sample_folder("--validate-images", a.validate_images, true);
  files.sample_folder("--validate-data", a.validate_data, false);
  files.output("-o", a.output);
  files.output("--patch", a.patch);
  files.output("--report", a.report);
  files.output_folder("--model-explorer", a.model_explorer);
  if (auto st = on_root(check_run_files(files)); !st.ok()) return fail(st.error());
  auto pair = load_pair(pair_args);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  finish_localize_options(a.localize, p);
  auto& o = a.options;
  o.localize = a.localize.options;
  o.regression = a.strict_regressions ? repair::RegressionPolicy::kStrict : repair::RegressionPolicy::kAllowIfTotalDrops;
  if (auto st = open_validation(a, o); !st.ok()) return fail(st.error());
  if (!pair_args.quiet) o.log = [](const std::string& line) { std::fprintf(stderr, "repair: %s\n", line.c_str()); };
  auto result = repair::repair_target(p.source_side, p.target_side, pair_args.samples_dir(), o);
  if (!result.ok()) return fail(result.error());
  const auto& r = *result;
  const int exit_code = exit_code_of(r.outcome());
  if (!ranks().is_root()) return exit_code;  // every rank took the same steps; rank 0 writes them
  PendingOutputs outputs;
  if (auto st = add_outputs(outputs, a, p, r, o, exit_code, clock.seconds()); !st.ok()) return fail(st.error());
  if (auto st = outputs.commit(); !st.ok()) return fail(st.error());
  print_summary(a, r);
  return exit_code;
}

}  // namespace

void add_repair_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<RepairArgs>();
  CLI::App* cmd = app.add_subcommand(
      "repair",
      "Localize the faults of Target and repair it greedily: an edit is kept only when disagreement with\n"
      "Source on the samples drops (the task's comparator decides, --task).\n"
      "Writes the repaired model, and optionally a replayable patch.\n"
      "Exit code: 0 fully repaired, 1 improved but not to 0, 3 no improvement, 2 bad usage or bad input.");
  add_localize_options(cmd, args->localize);
  cmd->add_option("-o,--output", args->output, "Repaired model (.onnx); never one of the inputs")
      ->required()->check(non_empty_path());
  cmd->add_option("--patch", args->patch, "Also write the kept edits as a patch (JSON)")->check(non_empty_path());
  auto* validate_images = cmd->add_option("--validate-images", args->validate_images,
                                          "Independent images: disagreement before and after, and images that "
                                          "newly disagree");
  cmd->add_option("--validate-data", args->validate_data,
                  "Independent samples of any kind (as --data): disagreement before and after")
      ->excludes(validate_images);
  cmd->add_option("--report", args->report,
                  "Also write a self-contained HTML report here (docs/report.md); compares the Target and the "
                  "repaired model on the images for its top-k lists")
      ->check(non_empty_path());
  cmd->add_option("--model-explorer", args->model_explorer,
                  "Also write a node mapping and node data for Google's Model Explorer into this folder "
                  "(docs/model-explorer.md)")
      ->check(non_empty_path());
  cmd->add_option("--time-limit", args->options.time_limit_seconds, "Seconds before the repair stops")
      ->capture_default_str()->check(CLI::Range(1.0, 1e7));
  cmd->add_option("--max-rejections", args->options.max_rejections,
                  "Consecutive rejected edits of one fault type before it is given up")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--max-rounds", args->options.max_rounds, "Localize-and-repair rounds")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_flag("--allow-equal", args->options.allow_equal,
                "Also keep edits that leave disagreement equal but bring the outputs closer");
  cmd->add_flag("--strict-regressions", args->strict_regressions,
                "Reject an edit that makes any agreeing image disagree, even if the total drops");
  cmd->add_flag("--no-cleanup", args->no_cleanup,
                "Keep what the repaired model no longer uses (unused weights, dead nodes, stale value_info); pass it "
                "to `fetafix apply` too to reproduce that model");
  cmd->add_flag("!--no-joint", args->options.joint_step,
                "Never apply a round's findings together when none is kept alone");
  cmd->callback([&runner, args] { runner.action = [args] { return run_repair(*args); }; });
}

}  // namespace fetafix::cli
