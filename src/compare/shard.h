// Sharding a pass over the samples across the ranks of a Communicator (docs/scaling.md).
//
// A rank owns whole blocks of `block` consecutive samples (the batch size), dealt round-robin:
// with 2 ranks and batches of 8, rank 0 holds samples 0-7, 16-23, ..., rank 1 holds 8-15, 24-31,
// .... Each rank then runs exactly the batches one process would have run on those samples (the
// same inputs stacked together: the same output bits, whatever the executor's kernels do with a
// batch), and a subset (repair's screening) spreads over the ranks about evenly.
//
// After a pass each rank holds the results of its own samples; merge_rows exchanges them so that
// every rank holds every result, in sample order — what makes the ranks take the same decisions.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "common/bytes.h"
#include "common/communicator.h"
#include "common/result.h"
#include "compare/verdict_codec.h"

namespace fetafix::compare {

class Shard {
 public:
  Shard() = default;  // no samples
  Shard(size_t samples, size_t block, const Communicator& comm);

  size_t samples() const { return samples_; }
  int owner(size_t sample) const { return static_cast<int>((sample / block_) % static_cast<size_t>(ranks_)); }
  bool mine(size_t sample) const { return owner(sample) == rank_; }
  // This rank's samples, ascending.
  const std::vector<size_t>& owned() const { return owned_; }
  // Where a sample of this rank sits in owned().
  size_t local(size_t sample) const;
  // The samples of `rows` this rank owns, as positions in owned(), in the order of `rows`.
  std::vector<size_t> local_rows(std::span<const size_t> rows) const;
  // owned() as positions: 0, 1, ..., owned().size() - 1.
  std::vector<size_t> all_local_rows() const;

 private:
  size_t samples_ = 0, block_ = 1;
  int rank_ = 0, ranks_ = 1;
  std::vector<size_t> owned_;
};

// 0, 1, ..., n - 1.
std::vector<size_t> every_sample(size_t n);

// One rank's part of a pass: a result per row it holds (in the pass's order), or the error that
// stopped it and the sample where it happened.
template <class T>
struct RankPart {
  std::vector<T> items;
  std::optional<Error> error;
  size_t error_sample = 0;

  // Keeps the error of the earliest sample.
  void fail(size_t sample, Error e) {
    if (error && error_sample <= sample) return;
    error = std::move(e);
    error_sample = sample;
  }
};

namespace detail {
Error undecodable_part(int rank);
}

// Every rank's part merged, on every rank: the results of `rows` (global sample indices, each
// held by its owner) in `rows`' order; or, when a rank failed, the error of the earliest sample
// any rank failed at (the one a single process would have stopped at first). `put(ByteWriter&,
// const T&)` and `get(ByteReader&, T&)` move one item. Collective.
template <class T, class Put, class Get>
Result<std::vector<T>> merge_rows(const Communicator& comm, const Shard& shard, std::span<const size_t> rows,
                                  RankPart<T> mine, Put put, Get get) {
  if (comm.size() == 1) {
    if (mine.error) return *mine.error;
    return std::move(mine.items);
  }
  ByteWriter w;
  w.put(static_cast<uint8_t>(mine.error ? 1 : 0));
  if (mine.error) {
    w.put(static_cast<uint64_t>(mine.error_sample));
    encode(w, *mine.error);
  } else {
    for (const auto& item : mine.items) put(w, item);
  }
  const std::vector<std::string> parts = comm.all_gather(w.bytes());
  std::vector<ByteReader> readers;
  RankPart<T> merged;
  for (const auto& part : parts) {
    ByteReader& in = readers.emplace_back(part);
    if (in.get<uint8_t>() == 0) continue;
    const auto sample = in.get<uint64_t>();
    Error e;
    decode(in, e);
    merged.fail(static_cast<size_t>(sample), std::move(e));
  }
  if (merged.error) return *merged.error;
  merged.items.resize(rows.size());
  for (size_t j = 0; j < rows.size(); ++j) get(readers[static_cast<size_t>(shard.owner(rows[j]))], merged.items[j]);
  for (size_t r = 0; r < readers.size(); ++r)
    if (!readers[r].done()) return detail::undecodable_part(static_cast<int>(r));
  return std::move(merged.items);
}

// The same with the codec of compare/verdict_codec.h (Verdict, ...) or of a number.
template <class T>
Result<std::vector<T>> merge_rows(const Communicator& comm, const Shard& shard, std::span<const size_t> rows,
                                  RankPart<T> mine) {
  if constexpr (std::is_arithmetic_v<T>)
    return merge_rows(comm, shard, rows, std::move(mine), [](ByteWriter& w, T v) { w.put(v); },
                      [](ByteReader& r, T& v) { v = r.get<T>(); });
  else
    return merge_rows(comm, shard, rows, std::move(mine), [](ByteWriter& w, const T& v) { encode(w, v); },
                      [](ByteReader& r, T& v) { decode(r, v); });
}

// The first error any rank had (by rank), or ok on every rank. For steps that fail the same way
// everywhere or nowhere, but must not leave a rank waiting for the others when they do not.
Status agree(const Communicator& comm, const Status& mine);

}  // namespace fetafix::compare
