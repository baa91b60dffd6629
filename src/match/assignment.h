// One-to-one assignment maximising the total score (Hungarian method, O(n^3)).
#pragma once

#include <vector>

namespace fetafix::match {

// score[i][j] for row i and column j (rows may differ in count from columns). Pairs scoring
// below `floor` are worth no more than leaving both sides unassigned, and are left out.
// Returns, for each row, its column or -1. Deterministic: ties go to the lower indices.
std::vector<int> assign_max_score(const std::vector<std::vector<double>>& score, double floor);

}  // namespace fetafix::match
