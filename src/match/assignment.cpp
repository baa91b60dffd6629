#include "match/assignment.h"

#include <algorithm>
#include <limits>

namespace fetafix::match {

std::vector<int> assign_max_score(const std::vector<std::vector<double>>& score, double floor) {
  const size_t rows = score.size();
  const size_t cols = rows ? score[0].size() : 0;
  std::vector<int> row_to_col(rows, -1);
  if (rows == 0 || cols == 0) return row_to_col;
  // Square cost matrix: a score under the floor costs the same as a dummy (unassigned) pairing,
  // which is what lets counts differ.
  const size_t n = std::max(rows, cols);
  auto cost = [&](size_t i, size_t j) -> double {
    if (i >= rows || j >= cols) return -floor;
    return -std::max(score[i][j], floor);
  };
  // Shortest augmenting paths with potentials (1-based, row 0 / column 0 are sentinels).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<size_t> p(n + 1, 0), way(n + 1, 0);
  for (size_t i = 1; i <= n; ++i) {
    p[0] = i;
    size_t j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<bool> used(n + 1, false);
    do {
      used[j0] = true;
      const size_t i0 = p[j0];
      double delta = inf;
      size_t j1 = 0;
      for (size_t j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      for (size_t j = 0; j <= n; ++j) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; }
        else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const size_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  for (size_t j = 1; j <= n; ++j) {
    const size_t i = p[j] - 1, c = j - 1;
    if (i < rows && c < cols && score[i][c] >= floor) row_to_col[i] = static_cast<int>(c);
  }
  return row_to_col;
}

}  // namespace fetafix::match
