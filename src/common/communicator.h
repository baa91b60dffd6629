// Ranks that share the samples of one job and agree on every decision (docs/scaling.md).
//
// A pass over the samples (compare, the evaluator's scores) runs on each rank's share; what the
// decisions read — per-sample verdicts, counts, distances — is exchanged so that every rank holds
// the whole result and takes the same next step. The interface is the handful of collectives
// that needs, plus those the activation analysis will need when it is sharded (all_to_all: each
// layer's per-sample statistics to the rank that owns the layer; sums of counts). Every call is
// collective: each rank of the group must make it, in the same order, or the job hangs.
//
// The single-process communicator (single_process()) does nothing and costs nothing; the MPI one
// lives in src/mpi (built when OpenMPI is found); tests use an in-process group of threads.
// Byte payloads are std::string: a contiguous buffer that carries its size.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fetafix {

// What the collectives cost this rank so far (the CLI and the benchmarks print it).
struct CommunicationStats {
  uint64_t calls = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  double wait_seconds = 0;      // waiting for the slowest rank to arrive (load imbalance)
  double transfer_seconds = 0;  // moving the data once every rank is there
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }
  // Ranks on this machine (they share its cores), and this rank's place among them.
  virtual int node_size() const { return 1; }
  virtual int node_rank() const { return 0; }

  // Every rank's bytes, in rank order, on every rank.
  virtual std::vector<std::string> all_gather(std::string_view mine) const = 0;
  // Rank r sends to_each[d] to rank d (to_each.size() == size()); returns what each rank sent
  // this one, in rank order.
  virtual std::vector<std::string> all_to_all(const std::vector<std::string>& to_each) const = 0;
  // `root`'s bytes on every rank.
  virtual void broadcast(std::string& bytes, int root = 0) const = 0;

  // Element-wise sums on every rank. Integers: exact. Doubles: summed in rank order on every
  // rank, so every rank gets the same bits (not those of one process summing sample by sample:
  // decisions that must match a single process are taken on gathered per-sample values).
  void all_reduce_sum(std::span<int64_t> values) const;
  void all_reduce_sum(std::span<double> values) const;
  // True on every rank when `mine` is true on every rank.
  bool all_true(bool mine) const;

  const CommunicationStats& stats() const { return stats_; }

 protected:
  mutable CommunicationStats stats_;
};

// The communicator of a process that works alone: rank 0 of 1.
const Communicator& single_process();

// CPU threads this process may use: its CPU affinity (what mpirun or taskset bound it to),
// else every core.
int usable_cpus();

// Threads per rank that fill this machine without oversubscribing it: the usable CPUs shared by
// the ranks on it (when they are not bound to disjoint cores already), at least 1.
int threads_per_rank(const Communicator& comm);

}  // namespace fetafix
