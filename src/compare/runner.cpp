#include "compare/runner.h"

#include <cstring>

#include "common/limits.h"

namespace fetafix::compare {

namespace {

bool same_shapes(const Feed& a, const Feed& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape != b[i].shape || a[i].dtype != b[i].dtype) return false;
  return true;
}

bool batch_of_one(const Feed& f) {
  for (const auto& t : f)
    if (t.shape.empty() || t.shape[0] != 1) return false;
  return true;
}

// Row `r` of an [n, ...] tensor as a [1, ...] tensor.
Tensor row_of(const Tensor& all, size_t r) {
  std::vector<int64_t> shape = all.shape;
  shape[0] = 1;
  Tensor out(all.dtype, shape);
  std::memcpy(out.bytes.data(), all.bytes.data() + r * out.bytes.size(), out.bytes.size());
  return out;
}

}  // namespace

Tensor gather_rows(const Tensor& all, std::span<const size_t> rows) {
  std::vector<int64_t> shape = all.shape;
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out(all.dtype, shape);
  const size_t row_bytes = all.shape[0] ? all.bytes.size() / static_cast<size_t>(all.shape[0]) : 0;
  for (size_t j = 0; j < rows.size(); ++j)
    std::memcpy(out.bytes.data() + j * row_bytes, all.bytes.data() + rows[j] * row_bytes, row_bytes);
  return out;
}

std::vector<Tensor> stack_feeds(std::span<const Feed* const> samples) {
  if (samples.empty() || !batch_of_one(*samples[0])) return {};
  for (const Feed* f : samples)
    if (!same_shapes(*f, *samples[0])) return {};
  std::vector<Tensor> stacked;
  for (size_t i = 0; i < samples[0]->size(); ++i) {
    std::vector<int64_t> shape = (*samples[0])[i].shape;
    shape[0] = static_cast<int64_t>(samples.size());
    Tensor t((*samples[0])[i].dtype, shape);
    const size_t row = (*samples[0])[i].bytes.size();
    for (size_t s = 0; s < samples.size(); ++s) std::memcpy(t.bytes.data() + s * row, (*samples[s])[i].bytes.data(), row);
    stacked.push_back(std::move(t));
  }
  return stacked;
}

BatchRunner::BatchRunner(const runtime::Session& session, std::string label, size_t batch_size)
    : session_(session), label_(std::move(label)), batch_(std::max<size_t>(batch_size, 1)) {
  const auto& inputs = session.inputs();
  bool dynamic = !inputs.empty(), fixed = !inputs.empty();
  for (const auto& in : inputs) {
    dynamic = dynamic && !in.shape.empty() && in.shape[0] < 0;
    fixed = fixed && !in.shape.empty() && in.shape[0] > 1 && in.shape[0] == inputs[0].shape[0];
  }
  if (fixed) fixed_batch_ = inputs[0].shape[0];
  model_stacks_ = dynamic || fixed;
  if (fixed_batch_) batch_ = static_cast<size_t>(fixed_batch_);
}

size_t BatchRunner::batch_for(size_t sample_bytes) const {
  if (fixed_batch_ > 1 || sample_bytes == 0) return batch_;
  // A stacked input is a tensor fetafix allocates: it also stays under the tensor limit.
  const uint64_t cap = std::min<uint64_t>(kMaxBatchInputBytes, resource_limits().max_tensor_bytes);
  return static_cast<size_t>(std::clamp<uint64_t>(cap / sample_bytes, 1, batch_));
}

Result<std::vector<SampleOutputs>> BatchRunner::run_stacked(const std::vector<Tensor>& inputs) const {
  const size_t count = inputs.empty() || inputs[0].shape.empty() ? 0 : static_cast<size_t>(inputs[0].shape[0]);
  size_t padded = count;
  std::vector<Tensor> padded_inputs;
  const std::vector<Tensor>* feed = &inputs;
  if (fixed_batch_ > 1 && count % static_cast<size_t>(fixed_batch_)) {
    padded = (count / fixed_batch_ + 1) * fixed_batch_;
    std::vector<size_t> rows(padded);
    for (size_t r = 0; r < padded; ++r) rows[r] = std::min(r, count - 1);  // repeat the last sample
    for (const auto& t : inputs) padded_inputs.push_back(gather_rows(t, rows));
    feed = &padded_inputs;
  }
  FETAFIX_ASSIGN_OR_RETURN(auto outs, session_.run(*feed));
  std::vector<SampleOutputs> per_sample(count);
  for (size_t o = 0; o < outs.size(); ++o) {
    const Tensor& t = outs[o];
    if (t.shape.empty() || t.shape[0] != static_cast<int64_t>(padded)) {
      if (count == 1 && padded == 1) {  // one sample: the output is its own, whatever its shape
        per_sample[0].push_back(t);
        continue;
      }
      splits_ = false;
      return make_error("{}: output '{}' has shape {} for a batch of {}: its first dim is not the batch", label_,
                        session_.outputs()[o].name, shape_to_string(t.shape), padded);
    }
    for (size_t r = 0; r < count; ++r) per_sample[r].push_back(row_of(t, r));
  }
  return per_sample;
}

Result<std::vector<SampleOutputs>> BatchRunner::run_group(std::span<const Feed* const> samples) const {
  if (samples.size() > 1 || fixed_batch_ > 1) {
    std::vector<Tensor> stacked = stack_feeds(samples);
    if (!stacked.empty()) {
      auto result = run_stacked(stacked);
      if (result.ok() || splits_ || fixed_batch_ > 1) return result;
      // The outputs do not carry the batch first: run the group again, sample by sample.
    }
  }
  std::vector<SampleOutputs> out;
  for (const Feed* f : samples) {
    FETAFIX_ASSIGN_OR_RETURN(auto outs, session_.run(*f));
    out.push_back(std::move(outs));
  }
  return out;
}

Result<std::vector<SampleOutputs>> BatchRunner::run(std::span<const Feed* const> samples) const {
  std::vector<SampleOutputs> out;
  out.reserve(samples.size());
  size_t i = 0;
  while (i < samples.size()) {
    size_t j = i + 1;
    size_t bytes = 0;
    for (const auto& t : *samples[i]) bytes += t.bytes.size();
    const size_t batch = batch_for(bytes);
    if (model_stacks() && batch_of_one(*samples[i]))
      while (j < samples.size() && j - i < batch && same_shapes(*samples[j], *samples[i])) ++j;
    FETAFIX_ASSIGN_OR_RETURN(auto group, run_group(samples.subspan(i, j - i)));
    for (auto& g : group) out.push_back(std::move(g));
    i = j;
  }
  return out;
}

FeedTable FeedTable::from(std::vector<Feed> feeds) {
  FeedTable t;
  std::vector<const Feed*> ptrs;
  for (const auto& f : feeds) ptrs.push_back(&f);
  t.stacked = stack_feeds(ptrs);
  if (t.stacked.empty()) t.rows = std::move(feeds);
  return t;
}

size_t FeedTable::size() const {
  return is_stacked() ? static_cast<size_t>(stacked[0].shape[0]) : rows.size();
}

std::vector<Tensor> FeedTable::gather(std::span<const size_t> which) const {
  std::vector<Tensor> out;
  for (const auto& t : stacked) out.push_back(gather_rows(t, which));
  return out;
}

Feed FeedTable::row(size_t i) const {
  if (!is_stacked()) return rows.at(i);
  const size_t one[] = {i};
  return gather(one);
}

Result<std::vector<SampleOutputs>> run_table(const BatchRunner& runner, const FeedTable& table,
                                             std::span<const size_t> rows) {
  std::vector<size_t> all;
  if (rows.empty()) {
    all.resize(table.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    rows = all;
  }
  std::vector<SampleOutputs> out;
  out.reserve(rows.size());
  size_t row_bytes = 0;
  if (table.is_stacked())
    for (const auto& t : table.stacked) row_bytes += t.bytes.size() / table.size();
  const size_t batch = runner.batch_for(row_bytes);
  for (size_t first = 0; first < rows.size(); first += batch) {
    const auto chunk = rows.subspan(first, std::min(batch, rows.size() - first));
    if (table.is_stacked() && runner.model_stacks()) {
      auto outs = runner.run_stacked(table.gather(chunk));
      if (outs.ok() || runner.model_stacks()) {
        if (!outs.ok()) return outs.error();
        for (auto& o : *outs) out.push_back(std::move(o));
        continue;
      }
    }
    std::vector<Feed> feeds;  // sample by sample (the runner stacks what it can)
    for (size_t i : chunk) feeds.push_back(table.row(i));
    std::vector<const Feed*> ptrs;
    for (const auto& f : feeds) ptrs.push_back(&f);
    FETAFIX_ASSIGN_OR_RETURN(auto outs, runner.run(ptrs));
    for (auto& o : outs) out.push_back(std::move(o));
  }
  return out;
}

}  // namespace fetafix::compare
