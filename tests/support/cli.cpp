#include "support/cli.h"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fetafix::testing {

std::string fetafix_bin() {
  const char* bin = std::getenv("FETAFIX_BIN");
  return bin ? bin : "";
}

std::string slurp(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string shell_quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

CliRun run_fetafix(const std::string& args, const std::filesystem::path& scratch_dir) {
  const auto out = scratch_dir / "stdout.txt", err = scratch_dir / "stderr.txt";
  const std::string cmd = shell_quoted(fetafix_bin()) + " " + args + " >" + shell_quoted(out) + " 2>" + shell_quoted(err);
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

}  // namespace fetafix::testing
