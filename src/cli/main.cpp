// fetafix command line. Each subcommand lives in its own file; this one wires them up and
// maps every failure to a one-line message and a documented exit code (docs/cli.md).
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "common/exit_codes.h"

int main(int argc, char** argv) {
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
  try {
    return runner.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fetafix: internal error: %s\n", e.what());
    return fetafix::kExitInternal;
  }
}
