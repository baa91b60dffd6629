// Job and its communicator over MPI (Open MPI from Debian; any MPI-3 library would do). MPI is
// called from the thread that made the Job only (MPI_THREAD_FUNNELED): collectives happen
// between passes, never inside the worker threads.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "mpi/job.h"

namespace fetafix::mpi {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Payloads travel in pieces MPI's int counts can hold.
constexpr size_t kMaxPiece = size_t{1} << 30;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_dup(MPI_COMM_WORLD, &world_);
    MPI_Comm_rank(world_, &rank_);
    MPI_Comm_size(world_, &size_);
    MPI_Comm_split_type(world_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_);
    MPI_Comm_rank(node_, &node_rank_);
    MPI_Comm_size(node_, &node_size_);
  }
  ~MpiCommunicator() override {
    MPI_Comm_free(&node_);
    MPI_Comm_free(&world_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int node_size() const override { return node_size_; }
  int node_rank() const override { return node_rank_; }

  std::vector<std::string> all_gather(std::string_view mine) const override {
    const auto t = arrive();
    std::vector<long long> sizes(static_cast<size_t>(size_));
    long long n = static_cast<long long>(mine.size());
    MPI_Allgather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, world_);
    std::vector<std::string> out(static_cast<size_t>(size_));
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      out[r].resize(static_cast<size_t>(sizes[r]));
      total += sizes[r];
    }
    out[rank_] = std::string(mine);
    if (total <= INT_MAX) {
      std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
      std::string all(static_cast<size_t>(total), '\0');
      for (int r = 0, at = 0; r < size_; at += counts[r], ++r) {
        counts[r] = static_cast<int>(sizes[r]);
        displs[r] = at;
      }
      MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(), counts.data(), displs.data(),
                     MPI_BYTE, world_);
      for (int r = 0; r < size_; ++r) out[r] = all.substr(static_cast<size_t>(displs[r]), static_cast<size_t>(counts[r]));
    } else {  // over 2 GiB in all: each rank's part in turn
      for (int r = 0; r < size_; ++r) send_pieces(out[r], r);
    }
    depart(t, mine.size() * static_cast<size_t>(size_ - 1), static_cast<size_t>(total) - mine.size());
    return out;
  }

  std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) const override {
    const auto t = arrive();
    std::vector<long long> send_sizes(static_cast<size_t>(size_)), recv_sizes(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) send_sizes[r] = static_cast<long long>(to_each.at(static_cast<size_t>(r)).size());
    MPI_Alltoall(send_sizes.data(), 1, MPI_LONG_LONG, recv_sizes.data(), 1, MPI_LONG_LONG, world_);
    std::vector<std::string> out(static_cast<size_t>(size_));
    std::vector<MPI_Request> requests;
    size_t sent = 0, received = 0;
    // Every piece posted at once (each message in pieces MPI's int counts hold), then awaited:
    // no order of sends and receives can deadlock.
    for (int r = 0; r < size_; ++r) {
      std::string& recv = out[static_cast<size_t>(r)];
      recv.resize(static_cast<size_t>(recv_sizes[r]));
      if (r == rank_) {
        recv = to_each[static_cast<size_t>(r)];
        continue;
      }
      for (size_t at = 0; at < recv.size(); at += kMaxPiece)
        MPI_Irecv(recv.data() + at, static_cast<int>(std::min(kMaxPiece, recv.size() - at)), MPI_BYTE, r, 0, world_,
                  &requests.emplace_back());
      received += recv.size();
    }
    for (int r = 0; r < size_; ++r) {
      const std::string& send = to_each[static_cast<size_t>(r)];
      if (r == rank_) continue;
      for (size_t at = 0; at < send.size(); at += kMaxPiece)
        MPI_Isend(send.data() + at, static_cast<int>(std::min(kMaxPiece, send.size() - at)), MPI_BYTE, r, 0, world_,
                  &requests.emplace_back());
      sent += send.size();
    }
    MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
    depart(t, sent, received);
    return out;
  }

  void broadcast(std::string& bytes, int root) const override {
    const auto t = arrive();
    send_pieces(bytes, root);
    depart(t, rank_ == root ? bytes.size() * static_cast<size_t>(size_ - 1) : 0, rank_ == root ? 0 : bytes.size());
  }

 private:
  // Root's bytes onto every rank, size first.
  void send_pieces(std::string& bytes, int root) const {
    long long n = static_cast<long long>(bytes.size());
    MPI_Bcast(&n, 1, MPI_LONG_LONG, root, world_);
    bytes.resize(static_cast<size_t>(n));
    for (size_t at = 0; at < bytes.size(); at += kMaxPiece)
      MPI_Bcast(bytes.data() + at, static_cast<int>(std::min(kMaxPiece, bytes.size() - at)), MPI_BYTE, root, world_);
  }

  // Waits for every rank (the time is load imbalance, not communication), then starts the clock
  // of the transfer itself.
  Clock::time_point arrive() const {
    const auto t = Clock::now();
    MPI_Barrier(world_);
    stats_.wait_seconds += seconds_since(t);
    ++stats_.calls;
    return Clock::now();
  }
  void depart(Clock::time_point t, size_t sent, size_t received) const {
    stats_.transfer_seconds += seconds_since(t);
    stats_.bytes_sent += sent;
    stats_.bytes_received += received;
  }

  MPI_Comm world_ = MPI_COMM_NULL, node_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, node_rank_ = 0, node_size_ = 1;
};

}  // namespace

struct Job::Impl {
  std::unique_ptr<MpiCommunicator> comm;
};

Job::Job(int& argc, char**& argv) : impl_(std::make_unique<Impl>()) {
  if (launched_ranks() == 0) return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  impl_->comm = std::make_unique<MpiCommunicator>();
}

Job::~Job() {
  if (!impl_->comm) return;
  impl_->comm.reset();
  MPI_Finalize();
}

const Communicator& Job::comm() const { return impl_->comm ? *impl_->comm : single_process(); }

}  // namespace fetafix::mpi
