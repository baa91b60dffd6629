// Tensor layouts: transposes of any dtype, and the permutations between layouts
// (NCHW <-> NHWC, a weight stored transposed). Shared by the checks that compare weights and
// the repairs that write them back in the Target's layout.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/tensor.h"

namespace fetafix::model {

// Row-major transpose of any dtype: out.shape[i] = t.shape[perm[i]].
Tensor transpose(const Tensor& t, const std::vector<int64_t>& perm);
std::vector<int64_t> permuted_shape(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm);
// q with transpose(transpose(t, p), q) == t.
std::vector<int64_t> inverse_permutation(const std::vector<int64_t>& perm);

// The permutation p with permuted_shape(from, p) == to, tried in this order: identity,
// NCHW->NHWC, NHWC->NCHW (rank 4), swap of the last two dims (rank 3). nullopt when none fits.
// Ambiguous when dims repeat (e.g. C == H == W): the first fit wins.
std::optional<std::vector<int64_t>> layout_alignment(const std::vector<int64_t>& from, const std::vector<int64_t>& to);

// float32 values as a tensor of `shape` (values.size() must equal its element count).
Tensor float_tensor(const std::vector<float>& values, const std::vector<int64_t>& shape);

}  // namespace fetafix::model
