// Label metrics: top-k lists from class scores, and agreement between two models.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace fetafix::compare {

struct TopK {
  std::vector<int64_t> ids;    // best first; ties broken by the lower class id
  std::vector<float> scores;   // probabilities (softmax applied unless already a distribution)
};

// Scores that already form a probability distribution (all in [0,1], sum within
// kProbabilitySumTolerance of 1) are kept; anything else is treated as logits and
// softmaxed. The original FetaFix applied softmax twice to models ending in Softmax,
// flattening every certainty to ~0.001: that is what this avoids.
inline constexpr double kProbabilitySumTolerance = 1e-3;

// Ranked on the raw scores: higher first, NaN after every number, ties (NaNs included) by the
// lower class id, so the lists are the same on every run.
TopK top_k(std::span<const float> class_scores, int k);

// The scores as probabilities, by the same rule as top_k. Non-finite logits: NaN stays NaN
// (positive, printed "nan"), -inf becomes 0, and +inf logits share all the mass.
std::vector<float> probabilities(std::span<const float> class_scores);

// Shifts a Target label into the Source's numbering: source_id = target_id - offset.
// offset = 1 maps a 1001-class Target (0 = background) onto a 1000-class Source; a
// Target label that falls outside [0, source_classes) maps to -1 (matches nothing).
int64_t to_source_label(int64_t target_id, int64_t offset, int64_t source_classes);

// |A ∩ B| / k for two top-k lists (already in the same numbering).
double top_k_overlap(const std::vector<int64_t>& a, const std::vector<int64_t>& b, int k);

// --top-k and --label-offset (or a label task's top_k= and offset=) against the class counts.
// Errors (exit 2): a k asked for (`k_given`) that is larger than the smaller count (a default k
// is lowered to it instead: label_k); an offset that does not map the Target's labels onto the
// Source's, i.e. outside [min(0, T-S), max(0, T-S)] — only 0 when both have as many classes, 1
// for a 1001-class Target over a 1000-class Source.
Status check_label_options(int k, bool k_given, int64_t offset, int64_t source_classes, int64_t target_classes);

// The length of the lists compared: k, lowered to the smaller class count.
int label_k(int k, int64_t source_classes, int64_t target_classes);

}  // namespace fetafix::compare
