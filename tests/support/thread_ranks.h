// An MPI job in one process, for tests: R communicators over shared memory, each used by its own
// thread. Sharded code runs on them exactly as on mpirun's ranks (the same collectives, in the
// same order), so a test can check in milliseconds that R ranks give what one process gives.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/communicator.h"

namespace fetafix::testing {

class ThreadRanks {
 public:
  explicit ThreadRanks(int size);
  ~ThreadRanks();

  int size() const;
  const Communicator& rank(int r) const;

  // Runs work(comm) for every rank at once, each on its own thread; returns each rank's result.
  template <class F>
  auto run(F work) const {
    using R = decltype(work(rank(0)));
    std::vector<R> results(static_cast<size_t>(size()));
    std::vector<std::thread> threads;
    for (int r = 0; r < size(); ++r) threads.emplace_back([&, r] { results[static_cast<size_t>(r)] = work(rank(r)); });
    for (auto& t : threads) t.join();
    return results;
  }

  struct Shared;  // the slots and the barrier the ranks share

 private:
  std::shared_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Communicator>> ranks_;
};

}  // namespace fetafix::testing
