#include "cli/localize_options.h"

#include <CLI/CLI.hpp>

namespace fetafix::cli {

void add_localize_options(CLI::App* cmd, LocalizeArgs& args) {
  add_pair_options(cmd, args.pair);
  auto& o = args.options;
  cmd->add_option("--similar", o.activation.max_similar, "Activation analysis: similar images per repeat")
      ->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_option("--dissimilar", o.activation.max_dissimilar, "Activation analysis: dissimilar images")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--repeats", o.activation.repeats, "Activation analysis: repeats with fresh similar samples")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--seed", o.activation.seed, "Seed of every sample drawn")->capture_default_str();
  cmd->add_option("--alpha", o.activation.alpha, "Kruskal-Wallis significance level")
      ->capture_default_str()->check(CLI::Range(1e-12, 1.0));
  cmd->add_option("--aggregation", args.aggregation, "How repeats combine into one ranking: borda, mean, max")
      ->capture_default_str()->check(CLI::IsMember({"borda", "mean", "max"}));
  cmd->add_option("--core-ops", args.core_ops,
                  "Op types matched and ranked as layers (default Conv ConvTranspose Gemm MatMul)");
  cmd->add_option("--weight-atol", o.layer_checks.weight_atol, "WB: absolute tolerance per element (default exact)")
      ->capture_default_str();
  cmd->add_option("--weight-rtol", o.layer_checks.weight_rtol, "WB: relative tolerance per element")->capture_default_str();
  cmd->add_option("--equivalence-rtol", o.equivalence.rtol,
                  "Equivalence filter: outputs agree when max|S-T| <= rtol*max|S| + atol")->capture_default_str();
  cmd->add_option("--equivalence-atol", o.equivalence.atol, "Equivalence filter: absolute term")->capture_default_str();
  cmd->add_option("--replay-images", o.replay_images,
                  "Local replay: disagreeing images each layer's Target region is replayed on (0 = no replay)")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  cmd->add_option("--replay-tolerance", o.replay.tolerance,
                  "Local replay: relative L2 error above which a layer adds error by itself")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--probe-images", o.probe_images, "Images the equivalence filter runs subgraphs on")
      ->capture_default_str()->check(CLI::Range(1, 1000));
}

void finish_localize_options(LocalizeArgs& args, const LoadedPair& pair) {
  auto& o = args.options;
  o.compare = pair.compare;
  // The flag's values are checked by CLI11 (IsMember), so the name is always known.
  o.activation.aggregation = localize::aggregation_from_name(args.aggregation).value();
  if (!args.core_ops.empty()) localize::set_core_ops(o, args.core_ops);
}

}  // namespace fetafix::cli
