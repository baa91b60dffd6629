// Pairs the inputs (or outputs) of a Source model with those of its converted Target: by
// name when both sides use the same names, else by position. Converters often keep names
// ("input", "logits") but may rename them ("input_1" -> "serving_default_input_1:0"), and
// they keep the order, so the order is the fallback, and the caller prints which rule was used.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace fetafix {

struct NamePairing {
  bool by_name = false;
  std::vector<size_t> target_of_source;  // target index for each source index
  std::vector<size_t> source_of_target;  // source index for each target index

  // "a -> x, b -> y (by order)"; "a, b (by name)" when every name is the same.
  std::string describe(const std::vector<std::string>& source, const std::vector<std::string>& target) const;
};

// `what` names the things paired in errors ("inputs", "outputs"); the labels name the models.
// Errors: the two sides have different counts (so neither rule applies).
Result<NamePairing> pair_by_name_or_order(const std::vector<std::string>& source, const std::vector<std::string>& target,
                                          const std::string& what, const std::string& source_label,
                                          const std::string& target_label);

// "'a', 'b' and 3 more": quoted names for one-line messages.
std::string quoted_names(const std::vector<std::string>& names, size_t max_shown = 6);

}  // namespace fetafix
