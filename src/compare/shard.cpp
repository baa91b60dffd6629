#include "compare/shard.h"

#include <fmt/format.h>

namespace fetafix::compare {

Shard::Shard(size_t samples, size_t block, const Communicator& comm)
    : samples_(samples), block_(std::max<size_t>(block, 1)), rank_(comm.rank()), ranks_(comm.size()) {
  for (size_t i = 0; i < samples_; ++i)
    if (mine(i)) owned_.push_back(i);
}

size_t Shard::local(size_t sample) const {
  const size_t stride = block_ * static_cast<size_t>(ranks_);
  return sample / stride * block_ + sample % block_;
}

std::vector<size_t> Shard::local_rows(std::span<const size_t> rows) const {
  std::vector<size_t> out;
  for (size_t i : rows)
    if (mine(i)) out.push_back(local(i));
  return out;
}

std::vector<size_t> Shard::all_local_rows() const { return every_sample(owned_.size()); }

std::vector<size_t> every_sample(size_t n) {
  std::vector<size_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = i;
  return rows;
}

namespace detail {
Error undecodable_part(int rank) {
  return Error{fmt::format("internal error: the results of rank {} did not decode (ranks running different fetafix "
                           "builds?)", rank),
               ErrorKind::kInternal};
}
}  // namespace detail

Status agree(const Communicator& comm, const Status& mine) {
  if (comm.size() == 1) return mine;
  ByteWriter w;
  w.put(static_cast<uint8_t>(mine.ok() ? 0 : 1));
  if (!mine.ok()) encode(w, mine.error());
  for (const auto& part : comm.all_gather(w.bytes())) {
    ByteReader in(part);
    if (in.get<uint8_t>() == 0) continue;
    Error e;
    decode(in, e);
    return e;
  }
  return {};
}

}  // namespace fetafix::compare
