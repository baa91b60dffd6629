// fetafix command line. Each subcommand lives in its own file; this one wires them up and
// maps every failure to a one-line message and a documented exit code (docs/cli.md).
#include <cstdio>
#include <exception>
#include <memory>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/result.h"
#include "mpi/job.h"

namespace {

// Ranks other than 0 print nothing: every rank holds the same results, and one copy is enough.
void silence() {
  std::fflush(stdout);
  std::fflush(stderr);
  (void)std::freopen("/dev/null", "w", stdout);
  (void)std::freopen("/dev/null", "w", stderr);
}

}  // namespace

int main(int argc, char** argv) {
  const fetafix::mpi::Job job(argc, argv);
  if (!job.error().empty()) {
    std::fprintf(stderr, "fetafix: %s\n", job.error().c_str());
    return fetafix::kExitBadInput;
  }
  fetafix::cli::set_ranks(job.comm());
  if (!job.comm().is_root()) silence();
  CLI::App app{"fetafix: find and repair the faults a converter introduces into a model.\n"
               "Compares a Source ONNX model with its converted Target on a folder of images."};
  app.set_version_flag("--version", FETAFIX_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();
  fetafix::cli::CommandRunner runner;
  fetafix::cli::add_compare_command(app, runner);
  fetafix::cli::add_localize_command(app, runner);
  fetafix::cli::add_repair_command(app, runner);
  fetafix::cli::add_apply_command(app, runner);
  fetafix::cli::add_inject_command(app, runner);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fetafix: %s (see --help)\n", e.what());
    return fetafix::kExitBadInput;
  }
  // Commands that do not read samples have nothing to share: rank 0 does them alone.
  const bool sharded = app.got_subcommand("compare") || app.got_subcommand("localize") || app.got_subcommand("repair");
  if (!sharded && !job.comm().is_root()) return fetafix::kExitOk;
  try {
    const int code = runner.run();
    // What the ranks exchanged, after a run that finished (a failed one says only why).
    const bool finished = code != fetafix::kExitBadInput && code != fetafix::kExitInternal;
    if (job.comm().size() > 1 && finished)
      std::fprintf(stderr, "fetafix: mpi: %s\n", job.describe_communication().c_str());
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetafix: internal error: %s\n", e.what());
    return fetafix::kExitInternal;
  }
}
