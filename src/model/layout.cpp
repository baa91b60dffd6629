#include "model/layout.h"

#include <cstring>
#include <numeric>

namespace fetafix::model {

std::vector<int64_t> permuted_shape(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm) {
  std::vector<int64_t> out(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) out[i] = shape[static_cast<size_t>(perm[i])];
  return out;
}

std::vector<int64_t> inverse_permutation(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  return inv;
}

Tensor transpose(const Tensor& t, const std::vector<int64_t>& perm) {
  const size_t rank = t.shape.size();
  Tensor out(t.dtype, permuted_shape(t.shape, perm));
  const size_t elem = dtype_size(t.dtype);
  const int64_t n = t.numel();
  if (n == 0) return out;
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t i = rank; i-- > 1;) in_strides[i - 1] = in_strides[i] * t.shape[i];
  // Walk the output in row-major order, keeping the matching input offset incrementally.
  std::vector<int64_t> index(rank, 0);
  int64_t in_offset = 0;
  for (int64_t o = 0; o < n; ++o) {
    std::memcpy(out.bytes.data() + static_cast<size_t>(o) * elem, t.bytes.data() + static_cast<size_t>(in_offset) * elem,
                elem);
    for (size_t d = rank; d-- > 0;) {
      const int64_t stride = in_strides[static_cast<size_t>(perm[d])];
      if (++index[d] < out.shape[d]) {
        in_offset += stride;
        break;
      }
      in_offset -= stride * (index[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

std::optional<std::vector<int64_t>> layout_alignment(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
  if (from.size() != to.size()) return std::nullopt;
  std::vector<std::vector<int64_t>> candidates;
  std::vector<int64_t> identity(from.size());
  std::iota(identity.begin(), identity.end(), 0);
  candidates.push_back(identity);
  if (from.size() == 4) {
    candidates.push_back({0, 2, 3, 1});
    candidates.push_back({0, 3, 1, 2});
  } else if (from.size() == 3) {
    candidates.push_back({0, 2, 1});
  }
  for (const auto& p : candidates)
    if (permuted_shape(from, p) == to) return p;
  return std::nullopt;
}

Tensor float_tensor(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  Tensor t(DType::kFloat32, shape);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

}  // namespace fetafix::model
