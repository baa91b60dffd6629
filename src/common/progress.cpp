#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace fetafix {

static std::string format_duration(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  int t = static_cast<int>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02}", t / 60, t % 60);
}

Progress::Progress(std::string label, size_t total, ProgressMode mode, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), mode_(mode) {
  if (mode_ == ProgressMode::kAuto) mode_ = isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kLines;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(size_t n) {
  std::lock_guard lock(mu_);
  done_ += n;
  if (mode_ == ProgressMode::kQuiet || finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (mode_ == ProgressMode::kBar) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) { last_draw_ = now; draw(false); }
  } else if (total_ > 0) {
    int decile = static_cast<int>(10 * done_ / total_);
    if (decile > last_decile_ && done_ < total_) { last_decile_ = decile; draw(false); }
  }
}

void Progress::finish() {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (mode_ != ProgressMode::kQuiet && done_ > 0) draw(true);
}

void Progress::draw(bool final) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? done_ / elapsed : 0;
  double eta = rate > 0 && total_ >= done_ ? (total_ - done_) / rate : -1;
  if (mode_ == ProgressMode::kBar) {
    constexpr int kWidth = 30;
    int filled = total_ ? static_cast<int>(kWidth * done_ / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string line = fmt::format("\r{} [{}] {}/{} {:.1f} {}/s {} {}", label_, bar, done_, total_, rate, unit_,
                                   final ? "in" : "ETA", format_duration(final ? elapsed : eta));
    std::fputs(line.c_str(), stderr);
    if (final) std::fputc('\n', stderr);
  } else {
    std::fputs(fmt::format("{}: {}/{} {} ({:.0f}%), {:.1f} {}/s, {} {}\n", label_, done_, total_, unit_,
                           total_ ? 100.0 * done_ / total_ : 100.0, rate, unit_, final ? "took" : "ETA",
                           format_duration(final ? elapsed : eta)).c_str(), stderr);
  }
  std::fflush(stderr);
}

}  // namespace fetafix
