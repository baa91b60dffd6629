#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/pair_options.h"
#include "common/fs.h"
#include "localize/localize.h"

namespace fetafix::cli {
namespace {

struct LocalizeArgs {
  PairArgs pair;
  localize::LocalizeOptions options;
  std::string aggregation = "borda";
  std::vector<std::string> core_ops;
};

int run_localize(LocalizeArgs& a) {
  auto pair = load_pair(a.pair);
  if (!pair.ok()) return fail(pair.error());
  auto& p = **pair;
  auto& o = a.options;
  o.compare = p.compare;
  static const std::map<std::string, localize::ActivationAnalysisOptions::Aggregation> kAggregations{
      {"borda", localize::ActivationAnalysisOptions::Aggregation::kBorda},
      {"mean", localize::ActivationAnalysisOptions::Aggregation::kMeanFraction},
      {"max", localize::ActivationAnalysisOptions::Aggregation::kMaxFraction}};
  o.activation.aggregation = kAggregations.at(a.aggregation);
  if (!a.core_ops.empty()) {
    o.match.core_ops = {a.core_ops.begin(), a.core_ops.end()};
    o.layer_checks.core_ops = o.match.core_ops;
  }
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
  add_pair_options(cmd, args->pair);
  auto& o = args->options;
  cmd->add_option("--similar", o.activation.max_similar, "Activation analysis: similar images per repeat")
      ->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--dissimilar", o.activation.max_dissimilar, "Activation analysis: dissimilar images")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--repeats", o.activation.repeats, "Activation analysis: repeats with fresh similar samples")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--seed", o.activation.seed, "Seed of every sample drawn")->capture_default_str();
  cmd->add_option("--alpha", o.activation.alpha, "Kruskal-Wallis significance level")
      ->capture_default_str()->check(CLI::Range(1e-12, 1.0));
  cmd->add_option("--aggregation", args->aggregation, "How repeats combine into one ranking: borda, mean, max")
      ->capture_default_str()->check(CLI::IsMember({"borda", "mean", "max"}));
  cmd->add_option("--core-ops", args->core_ops, "Op types matched and ranked as layers (default Conv ConvTranspose Gemm MatMul)");
  cmd->add_option("--weight-atol", o.layer_checks.weight_atol, "WB: absolute tolerance per element (default exact)")
      ->capture_default_str();
  cmd->add_option("--weight-rtol", o.layer_checks.weight_rtol, "WB: relative tolerance per element")->capture_default_str();
  cmd->add_option("--equivalence-rtol", o.equivalence.rtol,
                  "Equivalence filter: outputs agree when max|S-T| <= rtol*max|S| + atol")->capture_default_str();
  cmd->add_option("--equivalence-atol", o.equivalence.atol, "Equivalence filter: absolute term")->capture_default_str();
  cmd->add_option("--probe-images", o.probe_images, "Images the equivalence filter runs subgraphs on")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->callback([&runner, args] { runner.action = [args] { return run_localize(*args); }; });
}

}  // namespace fetafix::cli
