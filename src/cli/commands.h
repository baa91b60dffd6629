#pragma once

#include <functional>

#include <CLI/App.hpp>

namespace fetafix::cli {

// The parsed subcommand's action, run after parsing so parse errors and run errors share
// one exit path.
struct CommandRunner {
  std::function<int()> action;
  int run() const { return action ? action() : 0; }
};

void add_compare_command(CLI::App& app, CommandRunner& runner);
void add_localize_command(CLI::App& app, CommandRunner& runner);
void add_repair_command(CLI::App& app, CommandRunner& runner);
void add_apply_command(CLI::App& app, CommandRunner& runner);
void add_inject_command(CLI::App& app, CommandRunner& runner);

}  // namespace fetafix::cli
