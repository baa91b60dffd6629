// The analysis options `localize` and `repair` share.
#pragma once

#include <string>
#include <vector>

#include <CLI/App.hpp>

#include "cli/pair_options.h"
#include "localize/localize.h"

namespace fetafix::cli {

struct LocalizeArgs {
  PairArgs pair;
  localize::LocalizeOptions options;
  std::string aggregation = "borda";
  std::vector<std::string> core_ops;
};

void add_localize_options(CLI::App* cmd, LocalizeArgs& args);
// Fills args.options from the parsed flags and the loaded pair's compare options.
void finish_localize_options(LocalizeArgs& args, const LoadedPair& pair);

}  // namespace fetafix::cli
