// Running the real `fetafix` binary from tests ($FETAFIX_BIN, set by ctest).
#pragma once

#include <filesystem>
#include <string>

namespace fetafix::testing {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

// The binary's path, or "" when FETAFIX_BIN is unset (the test was not started by ctest).
std::string fetafix_bin();

// Runs `fetafix ARGS` (ARGS already shell-quoted) with stdout and stderr captured through
// files in `scratch_dir`.
CliRun run_fetafix(const std::string& args, const std::filesystem::path& scratch_dir);

// A file's whole content ("" if it cannot be read).
std::string slurp(const std::filesystem::path& path);

// 'path' quoted for the shell.
std::string shell_quoted(const std::filesystem::path& path);

}  // namespace fetafix::testing
