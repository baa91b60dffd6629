// What compare, localize and repair share for --report and --model-explorer: the output checks
// made before any work starts (docs/cli.md: outputs never name an input), and a wall clock.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/result.h"

namespace fetafix::cli {

// An empty path passes. Otherwise it must not name one of `inputs` and its folder must be writable.
Status check_output_path(const std::string& path, const std::vector<std::string>& inputs, const char* flag);
// The same for a folder of outputs (created later if missing): it must not be an input file.
Status check_output_folder(const std::string& dir, const std::vector<std::string>& inputs, const char* flag);

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace fetafix::cli
