#pragma once

#include <functional>

#include <CLI/App.hpp>

#include "common/communicator.h"
#include "common/result.h"

namespace fetafix::cli {

// The ranks this process runs with (`mpirun -np R fetafix ...`, docs/scaling.md); main sets them
// before any command runs. Only rank 0 writes files and prints.
const Communicator& ranks();
void set_ranks(const Communicator& comm);
// An output check, made by the rank that writes (rank 0) only: other ranks' filesystems may
// differ, and a rank that stopped alone would leave the others waiting.
Status on_root(Status check);

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
