#include "match/weight_compare.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/tensor.h"

namespace fetafix::match {

DenseWeight transpose(const DenseWeight& w, const std::vector<int64_t>& perm) {
  const size_t rank = w.shape.size();
  DenseWeight out;
  out.shape.resize(rank);
  for (size_t i = 0; i < rank; ++i) out.shape[i] = w.shape[static_cast<size_t>(perm[i])];
  out.values.resize(w.values.size());
  if (w.values.empty()) return out;
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t i = rank; i-- > 1;) in_strides[i - 1] = in_strides[i] * w.shape[i];
  // Stride in the input of each output axis, then walk the output in row-major order.
  std::vector<int64_t> stride_of_out(rank), index(rank, 0);
  for (size_t i = 0; i < rank; ++i) stride_of_out[i] = in_strides[static_cast<size_t>(perm[i])];
  int64_t src = 0;
  for (size_t n = 0; n < out.values.size(); ++n) {
    out.values[n] = w.values[static_cast<size_t>(src)];
    for (size_t ax = rank; ax-- > 0;) {
      if (++index[ax] < out.shape[ax]) { src += stride_of_out[ax]; break; }
      src -= stride_of_out[ax] * (index[ax] - 1);
      index[ax] = 0;
    }
  }
  return out;
}

std::vector<int64_t> compose_permutations(const std::vector<int64_t>& first, const std::vector<int64_t>& then) {
  // transpose(transpose(x, first), then) == transpose(x, c) with c[i] = first[then[i]].
  std::vector<int64_t> c(then.size());
  for (size_t i = 0; i < then.size(); ++i) c[i] = first[static_cast<size_t>(then[i])];
  return c;
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

std::vector<std::vector<int64_t>> fitting_permutations(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<std::vector<int64_t>> fits;
  if (a.size() != b.size() || a.size() > 6) return fits;
  std::vector<int64_t> perm(a.size());
  std::iota(perm.begin(), perm.end(), 0);
  do {
    bool ok = true;
    for (size_t i = 0; i < perm.size() && ok; ++i) ok = a[static_cast<size_t>(perm[i])] == b[i];
    if (ok) fits.push_back(perm);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return fits;  // identity is the lexicographically first, so it leads when it fits
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  if (na <= 0 || nb <= 0) return 0;
  return dot / std::sqrt(na * nb);
}

// Row-major index arithmetic for "slice k along axis": outer x size x inner blocks.
static void split_at_axis(const std::vector<int64_t>& shape, int64_t axis, int64_t& outer, int64_t& size,
                          int64_t& inner) {
  outer = 1; inner = 1;
  size = shape[static_cast<size_t>(axis)];
  for (int64_t i = 0; i < axis; ++i) outer *= shape[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < shape.size(); ++i) inner *= shape[i];
}

std::optional<DenseWeight> scale_along_axis(const DenseWeight& w, int64_t axis, const std::vector<float>& factors) {
  if (axis < 0 || axis >= static_cast<int64_t>(w.shape.size())) return std::nullopt;
  int64_t outer, size, inner;
  split_at_axis(w.shape, axis, outer, size, inner);
  if (size != static_cast<int64_t>(factors.size())) return std::nullopt;
  DenseWeight out = w;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < size; ++k)
      for (int64_t i = 0; i < inner; ++i) out.values[static_cast<size_t>((o * size + k) * inner + i)] *= factors[static_cast<size_t>(k)];
  return out;
}

DenseWeight normalize_along_axis(const DenseWeight& w, int64_t axis) {
  if (axis < 0 || axis >= static_cast<int64_t>(w.shape.size())) return w;
  int64_t outer, size, inner;
  split_at_axis(w.shape, axis, outer, size, inner);
  std::vector<double> sq(static_cast<size_t>(size), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < size; ++k)
      for (int64_t i = 0; i < inner; ++i) {
        const double v = w.values[static_cast<size_t>((o * size + k) * inner + i)];
        sq[static_cast<size_t>(k)] += v * v;
      }
  std::vector<float> factors(static_cast<size_t>(size));
  for (size_t k = 0; k < factors.size(); ++k) factors[k] = sq[k] > 0 ? static_cast<float>(1.0 / std::sqrt(sq[k])) : 0.0f;
  return *scale_along_axis(w, axis, factors);
}

std::vector<int64_t> shape_signature(const std::vector<int64_t>& shape) {
  std::vector<int64_t> sig;
  for (int64_t d : shape)
    if (d != 1) sig.push_back(d);
  std::sort(sig.begin(), sig.end());
  return sig;
}

std::optional<LayoutMatch> best_layout_match(const DenseWeight& a, const DenseWeight& b) {
  if (a.values.size() != b.values.size() || a.values.empty()) return std::nullopt;
  if (a.shape.size() != b.shape.size()) {
    auto squeeze = [](const DenseWeight& w) {
      DenseWeight s{w.values, {}};
      for (int64_t d : w.shape)
        if (d != 1) s.shape.push_back(d);
      return s;
    };
    auto inner = best_layout_match(squeeze(a), squeeze(b));
    if (inner) inner->permutation.clear();
    return inner;
  }
  std::optional<LayoutMatch> best;
  for (const auto& perm : fitting_permutations(a.shape, b.shape)) {
    const double sim = is_identity(perm) ? cosine(a.values, b.values) : cosine(transpose(a, perm).values, b.values);
    // Strictly better only: permutations that merely swap size-1 dims tie with the earlier one.
    if (!best || sim > best->similarity + 1e-9) best = LayoutMatch{sim, perm};
  }
  return best;
}

}  // namespace fetafix::match
