#include "common/pairing.h"

#include <algorithm>
#include <map>

namespace fetafix {

std::string quoted_names(const std::vector<std::string>& names, size_t max_shown) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < max_shown; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > max_shown) s += fmt::format(" and {} more", names.size() - max_shown);
  return s;
}

std::string NamePairing::describe(const std::vector<std::string>& source, const std::vector<std::string>& target) const {
  std::string s;
  bool renamed = false;
  for (size_t i = 0; i < target_of_source.size(); ++i) renamed |= source[i] != target[target_of_source[i]];
  for (size_t i = 0; i < target_of_source.size(); ++i) {
    s += i ? ", " : "";
    s += renamed ? fmt::format("'{}' -> '{}'", source[i], target[target_of_source[i]]) : fmt::format("'{}'", source[i]);
  }
  return s + (by_name ? " (by name)" : " (by order)");
}

Result<NamePairing> pair_by_name_or_order(const std::vector<std::string>& source, const std::vector<std::string>& target,
                                          const std::string& what, const std::string& source_label,
                                          const std::string& target_label) {
  if (source.size() != target.size())
    return make_error("{} has {} {} ({}) and {} has {} ({}): they cannot be paired", source_label, source.size(), what,
                      quoted_names(source), target_label, target.size(), quoted_names(target));
  NamePairing p;
  p.target_of_source.resize(source.size());
  p.source_of_target.resize(target.size());
  std::map<std::string, size_t> target_index;
  for (size_t i = 0; i < target.size(); ++i) target_index.emplace(target[i], i);
  p.by_name = target_index.size() == target.size() &&
              std::all_of(source.begin(), source.end(), [&](const std::string& n) { return target_index.count(n) > 0; });
  for (size_t i = 0; i < source.size(); ++i) {
    p.target_of_source[i] = p.by_name ? target_index.at(source[i]) : i;
    p.source_of_target[p.target_of_source[i]] = i;
  }
  return p;
}

}  // namespace fetafix
