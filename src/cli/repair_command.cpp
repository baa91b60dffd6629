#include <cstdio>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <onnx/checker.h>

#include "cli/commands.h"
#include "cli/localize_options.h"
#include "common/fs.h"
#include "repair/driver.h"

namespace fetafix::cli {
namespace {

struct RepairArgs {
  LocalizeArgs localize;
  repair::RepairOptions options;
  std::string output, patch, validate_images;
  bool strict_regressions = false;
};

Status check_output(const std::string& path, const PairArgs& pair, const char* what) {
  if (path.empty()) return {};
  for (const auto& input : {pair.source_path, pair.target_path})
    if (same_file(path, input)) return make_error("{}: refusing to overwrite an input model ({})", path, what);
  return check_writable(path);
}

// ONNX's checker knows opsets up to 17 / IR 8 here; newer models are only loaded by ONNX
// Runtime (which the repair already did on every kept edit).
void check_with_onnx(const onnx::ModelProto& m) {
  int64_t opset = 0;
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  if (opset > 17 || m.ir_version() > 8) return;
  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetafix: warning: ONNX's checker rejects the repaired model: %s\n", e.what());
  }
}

int run_repair(RepairArgs& a) {
  PairArgs& pair_args = a.localize.pair;
  for (auto [path, what] : {std::pair{a.output, "-o"}, std::pair{a.patch, "--patch"}})
    if (auto st = check_output(path, pair_args, what); !st.ok()) return fail(st.error());
  auto pair = load_pair(pair_args);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  finish_localize_options(a.localize, p);
  auto& o = a.options;
  o.localize = a.localize.options;
  o.regression = a.strict_regressions ? repair::RegressionPolicy::kStrict : repair::RegressionPolicy::kAllowIfTotalDrops;
  if (!a.validate_images.empty()) o.validation_images = a.validate_images;
  if (!pair_args.quiet) o.log = [](const std::string& line) { std::fprintf(stderr, "repair: %s\n", line.c_str()); };
  auto result = repair::repair_target(p.source_side, p.target_side, pair_args.images, o);
  if (!result.ok()) return fail(result.error());
  const auto& r = *result;
  check_with_onnx(r.repaired);
  if (auto st = model::save_model(r.repaired, a.output, {pair_args.source_path, pair_args.target_path}); !st.ok())
    return fail(st.error());
  if (!a.patch.empty())
    if (auto st = repair::save_patch(r.patch, a.patch); !st.ok()) return fail(st.error());
  if (!pair_args.json_path.empty())
    if (auto st = write_file_atomic(pair_args.json_path, repair::to_json(r).dump(2) + "\n"); !st.ok())
      return fail(st.error());
  std::cout << repair::format_report(r);
  std::cout << "Repaired model written to " << a.output << "\n";
  if (!a.patch.empty()) std::cout << "Patch written to " << a.patch << " (replay: fetafix apply PATCH TARGET -o OUT)\n";
  if (r.patch.preprocess)
    std::cout << "Feed the repaired Target with preset: " << r.patch.preprocess->to_json().dump() << "\n";
  if (r.final_disagreeing == 0) return kExitOk;
  return r.final_disagreeing < r.initial_disagreeing ? kExitDifferent : kExitNoImprovement;
}

}  // namespace

void add_repair_command(CLI::App& app, CommandRunner& runner) {
  auto args = std::make_shared<RepairArgs>();
  CLI::App* cmd = app.add_subcommand(
      "repair",
      "Localize the faults of Target and repair it greedily: an edit is kept only when label disagreement\n"
      "with Source on the images drops. Writes the repaired model, and optionally a replayable patch.\n"
      "Exit code: 0 fully repaired, 1 improved but not to 0, 3 no improvement, 2 bad usage or bad input.");
  add_localize_options(cmd, args->localize);
  cmd->add_option("-o,--output", args->output, "Repaired model (.onnx); never one of the inputs")->required();
  cmd->add_option("--patch", args->patch, "Also write the kept edits as a patch (JSON)");
  cmd->add_option("--validate-images", args->validate_images,
                  "Independent images: disagreement before and after, and images that newly disagree");
  cmd->add_option("--time-limit", args->options.time_limit_seconds, "Seconds before the repair stops")
      ->capture_default_str()->check(CLI::Range(1.0, 1e7));
  cmd->add_option("--max-rejections", args->options.max_rejections,
                  "Consecutive rejected edits of one fault type before it is given up")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--max-rounds", args->options.max_rounds, "Localize-and-repair rounds")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_flag("--allow-equal", args->options.allow_equal,
                "Also keep edits that leave disagreement equal but bring the probabilities closer");
  cmd->add_flag("--strict-regressions", args->strict_regressions,
                "Reject an edit that makes any agreeing image disagree, even if the total drops");
  cmd->callback([&runner, args] { runner.action = [args] { return run_repair(*args); }; });
}

}  // namespace fetafix::cli
