// Internal to the compare layer: the built-in comparator kinds, one file each
// (label_comparator.cpp, boxes_comparator.cpp, ...), registered by ComparatorRegistry::instance().
#pragma once

#include <algorithm>

#include "compare/comparator.h"

namespace fetafix::compare {

// The factory of a comparator class (constructed from its TaskSpec).
template <class T>
ComparatorFactory factory_of() {
  return [](const TaskSpec& task) -> Result<std::unique_ptr<Comparator>> { return std::unique_ptr<Comparator>(new T(task)); };
}

// A kind from its parts; `fits` says which outputs could be this task (for the message that
// asks for --task).
template <class T>
ComparatorKind kind_of(std::string name, std::string summary, std::vector<OptionDoc> options,
                       std::function<bool(const std::vector<runtime::ValueInfo>&)> fits) {
  return {std::move(name), std::move(summary), std::move(options), factory_of<T>(), std::move(fits)};
}

// A `fits` predicate: some output of a rank `rank_ok` accepts.
inline std::function<bool(const std::vector<runtime::ValueInfo>&)> any_output_with_rank(bool (*rank_ok)(size_t)) {
  return [rank_ok](const std::vector<runtime::ValueInfo>& outputs) {
    return std::any_of(outputs.begin(), outputs.end(), [&](const auto& o) { return rank_ok(o.shape.size()); });
  };
}

ComparatorKind label_comparator_kind();
ComparatorKind boxes_comparator_kind();
ComparatorKind mask_comparator_kind();
ComparatorKind text_comparator_kind();
ComparatorKind tensor_comparator_kind();

// The largest distance a comparator whose distances run in [0, 1] gives: outputs that could
// not be compared at all. The tensor comparator caps its relative L2 at kTensorDistanceCap.
inline constexpr double kMaxUnitDistance = 1.0;
inline constexpr double kTensorDistanceCap = 1000.0;

}  // namespace fetafix::compare
