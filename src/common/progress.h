// Progress on long work: a redrawn bar with rate and ETA on a terminal, a plain line
// every 10% otherwise (logs, CI), nothing when quiet. Writes to stderr only, so stdout
// stays clean for results.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>

namespace fetafix {

enum class ProgressMode { kAuto, kBar, kLines, kQuiet };

class Progress {
 public:
  Progress(std::string label, size_t total, ProgressMode mode = ProgressMode::kAuto, std::string unit = "img");
  ~Progress();
  void advance(size_t n = 1);  // thread-safe
  void finish();               // idempotent; prints the final state

 private:
  void draw(bool final);
  std::string label_, unit_;
  size_t total_, done_ = 0;
  ProgressMode mode_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = 0;
  bool finished_ = false;
  std::mutex mu_;
};

}  // namespace fetafix
