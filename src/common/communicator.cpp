#include "common/communicator.h"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace fetafix {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<std::string> all_gather(std::string_view mine) const override { return {std::string(mine)}; }
  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) const override { return to_each; }
  void broadcast(std::string&, int) const override {}
};

template <class T>
void sum_in_rank_order(const Communicator& comm, std::span<T> values) {
  if (comm.size() == 1) return;
  const std::string mine(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  const auto all = comm.all_gather(mine);
  std::fill(values.begin(), values.end(), T{0});
  for (const auto& part : all)
    for (size_t i = 0; i < values.size(); ++i) {
      T v;
      std::memcpy(&v, part.data() + i * sizeof(T), sizeof(T));
      values[i] += v;
    }
}

}  // namespace

void Communicator::all_reduce_sum(std::span<int64_t> values) const { sum_in_rank_order(*this, values); }
void Communicator::all_reduce_sum(std::span<double> values) const { sum_in_rank_order(*this, values); }

bool Communicator::all_true(bool mine) const {
  if (size() == 1) return mine;
  int64_t failures = mine ? 0 : 1;
  all_reduce_sum(std::span<int64_t>(&failures, 1));
  return failures == 0;
}

const Communicator& single_process() {
  static const SingleProcess comm;
  return comm;
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int threads_per_rank(const Communicator& comm) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int share = std::max(1, cores / std::max(1, comm.node_size()));
  return std::max(1, std::min(usable_cpus(), share));
}

}  // namespace fetafix
