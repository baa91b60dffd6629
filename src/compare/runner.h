// Runs one model over samples, batching them when the model allows it. A sample is fed as one
// tensor per model input, each with a batch of 1 (data/samples.h); its outputs come back as
// one tensor per model output, again a batch of 1.
//
// Samples are stacked along dim 0 only when every input of the model has a dynamic first dim
// (or all share one fixed batch > 1, which is then filled by repeating the last sample), the
// samples' tensors have equal shapes, and their dim 0 is 1. A model whose inputs disagree on
// the batch dim — an RNN state of [layers, batch, hidden] beside [batch, time, features], an
// input fixed at a batch of 1 — runs sample by sample. If a stacked run returns an output whose
// dim 0 is not the batch, the runner cannot tell the samples apart: it reruns them one at a
// time and stops stacking for that model.
//
// A batch also stops growing at kMaxBatchInputBytes of input (or the tensor limit,
// --max-tensor-bytes, when lower): past that, a larger batch only
// grows ONNX Runtime's memory arena (page faults on first use, in every fresh session) without
// running faster. PaddleOCR's text detector at 640x640 (4.9 MB per sample), plain ONNX Runtime,
// 2 cores, warm sessions: 0.179 CPU s per image at batch 1, 0.198 at 2, 0.238 at 8; fresh
// sessions: 0.256 at batch 1, 0.733 at 8 (bench_compare ocr-det --images 16, docs/tasks.md).
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/tensor.h"
#include "runtime/session.h"

namespace fetafix::compare {

inline constexpr size_t kMaxBatchInputBytes = size_t{8} << 20;  // 8 float 224x224 images; one 640x640

using Feed = std::vector<Tensor>;           // one sample's inputs, in model input order
using SampleOutputs = std::vector<Tensor>;  // one sample's outputs, in model output order

class BatchRunner {
 public:
  BatchRunner(const runtime::Session& session, std::string label, size_t batch_size);

  // Every sample's outputs, in order.
  Result<std::vector<SampleOutputs>> run(std::span<const Feed* const> samples) const;
  // Inputs already stacked ([count, ...] each; count = dim 0 of the first).
  Result<std::vector<SampleOutputs>> run_stacked(const std::vector<Tensor>& inputs) const;

  // Can this model take several samples in one run at all?
  bool model_stacks() const { return model_stacks_ && splits_.load(); }
  size_t batch_size() const { return batch_; }
  // Samples per run for samples of `sample_bytes` input each: the batch size, kept under
  // kMaxBatchInputBytes and the tensor limit (a model's fixed batch is kept as it is; its size was
  // checked against the tensor limit when the model was loaded).
  size_t batch_for(size_t sample_bytes) const;

 private:
  Result<std::vector<SampleOutputs>> run_group(std::span<const Feed* const> samples) const;

  const runtime::Session& session_;
  std::string label_;
  size_t batch_ = 1;
  int64_t fixed_batch_ = 0;   // every input's fixed dim 0, when > 1
  bool model_stacks_ = false;
  mutable std::atomic<bool> splits_{true};  // outputs so far carried the batch first
};

// Every sample's inputs for one model, kept for many runs (the evaluator's Target inputs):
// stacked [n, ...] per input when all samples stack, else sample by sample.
struct FeedTable {
  std::vector<Tensor> stacked;
  std::vector<Feed> rows;

  static FeedTable from(std::vector<Feed> feeds);
  size_t size() const;
  bool is_stacked() const { return !stacked.empty(); }
  Feed row(size_t i) const;
  std::vector<Tensor> gather(std::span<const size_t> rows) const;  // stacked tables only
};

// Runs `runner`'s model on rows `rows` of the table (every row when empty), in batches.
Result<std::vector<SampleOutputs>> run_table(const BatchRunner& runner, const FeedTable& table,
                                             std::span<const size_t> rows);

// The samples' tensors stacked along dim 0, input by input; empty when they cannot stack
// (different shapes, or a dim 0 other than 1).
std::vector<Tensor> stack_feeds(std::span<const Feed* const> samples);

// Rows `rows` of an [n, ...] tensor, in that order.
Tensor gather_rows(const Tensor& all, std::span<const size_t> rows);

}  // namespace fetafix::compare
