// Getting activations in and out of the models, shared by the activation analysis and
// layer-local replay: batches of images taken from the caller's tensors, models cut down to what
// computes the captured values, and one model's activation read in the other model's layout
// (Source NCHW against Target NHWC, size-1 dims present on one side only).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/tensor.h"

namespace fetafix::localize {

// The images `rows` of an [N, ...] tensor as one batch, padded to a multiple of the model's fixed
// batch (fixed_batch > 1) by repeating the last image.
Tensor gather_rows(const Tensor& all, std::span<const size_t> rows, int64_t fixed_batch);

// The batch size the model's single image input fixes (its first non-initializer input's dim 0),
// or 0 when that dim is dynamic.
int64_t model_fixed_batch(const onnx::ModelProto& model);

// The model cut down to the nodes that compute `values` (with the initializers and graph inputs
// they read) and no graph outputs: a capture session adds `values` as outputs, and runs nothing
// else.
onnx::ModelProto model_computing(const onnx::ModelProto& model, const std::vector<std::string>& values);

// How to read a Target activation in the Source's layout, from the observed shapes (batch dim
// first in both): the permutation p of the shapes with size-1 dims after the batch dropped such
// that source_dim[i] == target_dim[p[i]]. Preference when several fit: identity, then
// channels-last -> channels-first, then channels-first -> channels-last, then the first in
// lexicographic order. nullopt when the shapes cannot be aligned.
std::optional<std::vector<int64_t>> align_target_layout(std::span<const int64_t> source_shape,
                                                        std::span<const int64_t> target_shape);

// Per image: where each element of the Source layout lives in the Target tensor.
class LayoutMap {
 public:
  // nullopt when align_target_layout finds no permutation.
  static std::optional<LayoutMap> create(std::span<const int64_t> source_shape, std::span<const int64_t> target_shape);

  bool identity() const { return permutation_.empty(); }
  const std::vector<int64_t>& permutation() const { return permutation_; }  // empty = identity
  int64_t elements() const { return elements_; }                           // per image

  // Calls f(source_index, target_offset) for source_index in [begin, end), in order.
  template <class F>
  void for_each(int64_t begin, int64_t end, F&& f) const {
    if (identity()) {
      for (int64_t e = begin; e < end; ++e) f(e, e);
      return;
    }
    const size_t rank = dims_.size();
    std::vector<int64_t> idx(rank, 0);
    int64_t rest = begin, toff = 0;
    for (size_t i = rank; i-- > 0;) {
      idx[i] = rest % dims_[i];
      rest /= dims_[i];
      toff += idx[i] * target_stride_[i];
    }
    for (int64_t e = begin; e < end; ++e) {
      f(e, toff);
      for (size_t i = rank; i-- > 0;) {  // odometer step over the Source layout
        toff += target_stride_[i];
        if (++idx[i] < dims_[i]) break;
        toff -= target_stride_[i] * dims_[i];
        idx[i] = 0;
      }
    }
  }

 private:
  std::vector<int64_t> permutation_;
  std::vector<int64_t> dims_;           // squeezed Source dims
  std::vector<int64_t> target_stride_;  // Target stride of each squeezed Source dim
  int64_t elements_ = 0;
};

}  // namespace fetafix::localize
