#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"fetafix: find and repair faults introduced by model converters"};
  app.set_version_flag("--version", "fetafix 0.1.0");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
