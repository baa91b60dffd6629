// Layout-aware comparison of two weight tensors (float values, row-major): the building block
// that lets matching see through OIHW/HWIO, Gemm transB and folded BatchNormalization.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace fetafix::match {

struct DenseWeight {
  std::vector<float> values;
  std::vector<int64_t> shape;
};

// out[i] indexes input axis perm[i] (numpy.transpose semantics).
DenseWeight transpose(const DenseWeight& w, const std::vector<int64_t>& perm);
std::vector<int64_t> compose_permutations(const std::vector<int64_t>& first, const std::vector<int64_t>& then);
bool is_identity(const std::vector<int64_t>& perm);

// Every permutation p with transpose(shape_of_a, p) == shape_b, identity first when it fits,
// the rest in lexicographic order. Empty when the ranks differ or no permutation fits.
std::vector<std::vector<int64_t>> fitting_permutations(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// Cosine similarity of two equally long vectors; 0 when either is all zeros.
double cosine(const std::vector<float>& a, const std::vector<float>& b);

// Multiplies every slice along `axis` by factors[k]; nullopt when sizes disagree.
std::optional<DenseWeight> scale_along_axis(const DenseWeight& w, int64_t axis, const std::vector<float>& factors);
// Each slice along `axis` scaled to unit L2 norm: invariant to per-channel scaling.
DenseWeight normalize_along_axis(const DenseWeight& w, int64_t axis);

// Shape without its size-1 dims, sorted: the shape "up to permutation".
std::vector<int64_t> shape_signature(const std::vector<int64_t>& shape);

struct LayoutMatch {
  double similarity = 0;              // cosine after the best permutation
  std::vector<int64_t> permutation;   // b = transpose(a, permutation); empty when compared squeezed
};

// The best cosine over the permutations that map a's shape onto b's. When the ranks differ but
// the element counts agree, compares with size-1 dims dropped (no permutation reported).
// nullopt when element counts differ or no layout fits.
std::optional<LayoutMatch> best_layout_match(const DenseWeight& a, const DenseWeight& b);

}  // namespace fetafix::match
