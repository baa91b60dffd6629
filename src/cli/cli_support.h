// What compare, localize and repair share beside their run files (cli/run_files.h, which checks
// every input and output before any work starts): a wall clock for the report's run time.
#pragma once

#include <chrono>

namespace fetafix::cli {

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace fetafix::cli
