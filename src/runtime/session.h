// ONNX Runtime behind one small class: the single executor every comparison uses.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"

namespace fetafix::runtime {

struct SessionOptions {
  int threads = 0;        // intra-op threads; 0 = ONNX Runtime's default (one per core)
  bool optimize = true;   // graph optimizations; always off when anything is captured, so
                          // captured tensors are the model's own, not fused ones
  bool capture_all = false;            // expose every node output as an extra output
  std::vector<std::string> capture;    // or just these value names
  // Lets idle intra-op threads spin before sleeping. Off by default: on a small machine
  // the spinning threads of two sessions run alternately (Source, Target) steal each
  // other's cores (see docs/runtime.md for the measurements).
  bool allow_spinning = false;
  // When set, ONNX Runtime writes the model as its *basic* graph optimizations leave it (constant
  // folding, Identity removal, Conv+BatchNormalization fusion: standard ONNX ops only) to this
  // file while the session is created: how inject's benign:ort-optimized rewrite is made.
  std::string save_optimized_to;
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;  // as declared; -1 for a dynamic or unknown dim
};

class Session {
 public:
  // Builds a session from an in-memory model (no file is read or written). Errors name
  // `model_label` (usually the model's path) and say what ONNX Runtime refused.
  static Result<std::unique_ptr<Session>> create(const onnx::ModelProto& model, const SessionOptions& options,
                                                 const std::string& model_label = "model");
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<ValueInfo>& inputs() const;
  // The model's own outputs first (num_model_outputs() of them), then captured values
  // in the order asked for (capture_all: in topological node order).
  const std::vector<ValueInfo>& outputs() const;
  size_t num_model_outputs() const;
  // The batch size the model's first input demands, or 0 when its batch dim is dynamic.
  int64_t fixed_batch() const;

  // Runs a batch: inputs[i] is for inputs()[i], all with the same leading (batch) dim n.
  // A model with a fixed batch b is run in chunks of b (n must be a multiple of b; a model
  // with b=1 takes any n). Outputs are returned in outputs() order, concatenated along
  // dim 0 across chunks; a captured value whose dim 0 is not the batch is taken from the
  // first chunk. Safe to call from several threads.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) const;
  // The same, into `outputs`: a tensor already there whose dtype matches and whose storage is
  // large enough is reused (no allocation, no zeroing), so a caller running batch after batch
  // keeps its buffers. Worth it for large captures: a fresh block of many megabytes comes from
  // the kernel page by page on every call, which costs more than the copy itself.
  Status run_into(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const;

  // Shape of every output (captured ones included) as seen by the first run().
  std::map<std::string, std::vector<int64_t>> observed_shapes() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs the model once on `sample_inputs` with every intermediate value captured and
// returns the observed shape and dtype of each value (graph inputs included). This is how
// fetafix learns shapes: ONNX's shape inference stops at opset 17.
Result<std::map<std::string, ValueInfo>> observe_value_shapes(const onnx::ModelProto& model,
                                                               const std::vector<Tensor>& sample_inputs,
                                                               int threads = 0);
// The same, with errors naming `model_label` (usually the model's path).
Result<std::map<std::string, ValueInfo>> observe_value_shapes(const onnx::ModelProto& model,
                                                               const std::vector<Tensor>& sample_inputs,
                                                               int threads, const std::string& model_label);

// Whether ONNX Runtime can load `model` (graph resolution, type and shape inference, kernel
// creation; nothing is run). The error names `model_label` and says what ORT refused.
Status check_loadable(const onnx::ModelProto& model, const std::string& model_label);

// ONNX Runtime's version string, for reports.
std::string runtime_version();

}  // namespace fetafix::runtime
