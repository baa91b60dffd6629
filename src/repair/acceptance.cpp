// The acceptance phase of the repair loop: the current score, the screening subset, and the rule
// that keeps an edit (docs/repair.md, "Fast evaluation").
#include <algorithm>

#include <fmt/format.h>

#include "repair/loop.h"

namespace fetafix::repair::detail {

std::vector<size_t> seeded_sample(std::vector<size_t> items, size_t keep, uint64_t salt) {
  if (items.size() <= keep) return items;
  uint64_t x = 0x9E3779B97F4A7C15ull * (salt + 1);
  for (size_t i = items.size() - 1; i > 0; --i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64: the same subset on every run
    std::swap(items[i], items[x % (i + 1)]);
  }
  items.resize(keep);
  std::sort(items.begin(), items.end());
  return items;
}

void Acceptance::set_current(compare::CandidateScore score, const onnx::ModelProto& working) {
  current_ = std::move(score);
  if (o_.partial_execution) (void)eval_.set_base(working, o_.partial_budget_bytes);
  choose_screen();
}

void Acceptance::choose_screen() {
  std::vector<size_t> disagreeing, agreeing;
  for (size_t i = 0; i < current_.agree.size(); ++i) (current_.agree[i] ? agreeing : disagreeing).push_back(i);
  screen_.clear();
  const size_t n = current_.agree.size();
  // A screen is worth it only when it is much smaller than the whole set.
  if (o_.allow_equal || disagreeing.empty() ||
      std::min(disagreeing.size(), o_.screen_disagreeing) + std::min(agreeing.size(), o_.screen_agreeing) > n / 2)
    return;
  auto a = seeded_sample(disagreeing, o_.screen_disagreeing, 11);
  auto b = seeded_sample(agreeing, o_.screen_agreeing, 12);
  screen_ = a;
  screen_.insert(screen_.end(), b.begin(), b.end());
  std::sort(screen_.begin(), screen_.end());
  screen_disagreeing_ = a.size();
}

bool Acceptance::acceptable(const compare::CandidateScore& s, std::string& reason) const {
  size_t regressions = 0;
  for (size_t i = 0; i < s.agree.size(); ++i) regressions += current_.agree[i] && !s.agree[i];
  if (s.disagreeing < current_.disagreeing) {
    if (o_.regression == RegressionPolicy::kStrict && regressions) {
      reason = fmt::format("{} image(s) that agreed would disagree", regressions);
      return false;
    }
    return true;
  }
  if (o_.allow_equal && s.disagreeing == current_.disagreeing && regressions == 0 &&
      s.distance < current_.distance - 1e-9)
    return true;
  reason = s.disagreeing == current_.disagreeing ? "no change in disagreement"
                                                 : fmt::format("disagreement would rise to {}", s.disagreeing);
  return false;
}

std::optional<size_t> Acceptance::screen_score(const onnx::ModelProto& working) {
  auto s = eval_.score(working, screen_);
  if (!s.ok()) return std::nullopt;
  return s->disagreeing;
}

bool Acceptance::passes_screen(const onnx::ModelProto& working, size_t& screened) {
  if (screen_.empty()) return true;
  auto s = eval_.score(working, screen_);
  if (!s.ok()) return true;  // let the full run report why it does not run
  screened = s->disagreeing;
  return s->disagreeing < screen_disagreeing_;
}

}  // namespace fetafix::repair::detail
