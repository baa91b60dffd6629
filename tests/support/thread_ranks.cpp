#include "support/thread_ranks.h"

#include <barrier>
#include <string>

namespace fetafix::testing {

// Each rank writes its slots, everyone waits, everyone reads, everyone waits again (so the next
// collective cannot overwrite what a slow rank has not read yet).
struct ThreadRanks::Shared {
  explicit Shared(int n) : size(n), sync(n), slots(static_cast<size_t>(n) * static_cast<size_t>(n)) {}
  int size;
  std::barrier<> sync;
  std::vector<std::string> slots;  // [from * size + to]
};

namespace {

class ThreadRank final : public Communicator {
 public:
  ThreadRank(std::shared_ptr<ThreadRanks::Shared> shared, int rank) : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }
  int node_size() const override { return shared_->size; }
  int node_rank() const override { return rank_; }

  std::vector<std::string> all_gather(std::string_view mine) const override {
    return exchange(std::vector<std::string>(static_cast<size_t>(size()), std::string(mine)));
  }
  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) const override {
    return exchange(to_each);
  }
  void broadcast(std::string& bytes, int root) const override {
    std::vector<std::string> send(static_cast<size_t>(size()));
    if (rank_ == root) send.assign(static_cast<size_t>(size()), bytes);
    bytes = exchange(send)[static_cast<size_t>(root)];
  }

 private:
  std::vector<std::string> exchange(const std::vector<std::string>& to_each) const {
    ++stats_.calls;
    const size_t n = static_cast<size_t>(size()), me = static_cast<size_t>(rank_);
    for (size_t to = 0; to < n; ++to) shared_->slots[me * n + to] = to_each[to];
    shared_->sync.arrive_and_wait();
    std::vector<std::string> got(n);
    for (size_t from = 0; from < n; ++from) got[from] = shared_->slots[from * n + me];
    shared_->sync.arrive_and_wait();
    return got;
  }

  std::shared_ptr<ThreadRanks::Shared> shared_;
  int rank_;
};

}  // namespace

ThreadRanks::ThreadRanks(int size) : shared_(std::make_shared<Shared>(size)) {
  for (int r = 0; r < size; ++r) ranks_.push_back(std::make_unique<ThreadRank>(shared_, r));
}

ThreadRanks::~ThreadRanks() = default;

int ThreadRanks::size() const { return shared_->size; }

const Communicator& ThreadRanks::rank(int r) const { return *ranks_.at(static_cast<size_t>(r)); }

}  // namespace fetafix::testing
