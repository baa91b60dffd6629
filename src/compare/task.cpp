#include "compare/task.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace fetafix::compare {

namespace {

std::optional<double> parse_number(const std::string& s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_integer(const std::string& s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  return std::nullopt;
}

std::string option_keys(const std::vector<OptionDoc>& options) {
  std::string s;
  for (const auto& o : options) s += (s.empty() ? "" : ", ") + o.key;
  return s.empty() ? "none" : s;
}

const char* type_words(OptionType t) {
  switch (t) {
    case OptionType::kNumber: return "a number";
    case OptionType::kInteger: return "a whole number";
    case OptionType::kBool: return "true or false";
    case OptionType::kText: return "text";
  }
  return "?";
}

}  // namespace

bool TaskSpec::has(const std::string& key) const {
  return std::any_of(options.begin(), options.end(), [&](const auto& kv) { return kv.first == key; });
}

std::optional<std::string> TaskSpec::get(const std::string& key) const {
  std::optional<std::string> v;
  for (const auto& [k, value] : options)
    if (k == key) v = value;
  return v;
}

std::vector<std::string> TaskSpec::all(const std::string& key) const {
  std::vector<std::string> v;
  for (const auto& [k, value] : options)
    if (k == key) v.push_back(value);
  return v;
}

double TaskSpec::number(const std::string& key, double fallback) const {
  auto v = get(key);
  auto n = v ? parse_number(*v) : std::nullopt;
  return n.value_or(fallback);
}

int64_t TaskSpec::integer(const std::string& key, int64_t fallback) const {
  auto v = get(key);
  auto n = v ? parse_integer(*v) : std::nullopt;
  return n.value_or(fallback);
}

bool TaskSpec::flag(const std::string& key, bool fallback) const {
  auto v = get(key);
  auto b = v ? parse_bool(*v) : std::nullopt;
  return b.value_or(fallback);
}

std::string TaskSpec::text(const std::string& key, const std::string& fallback) const {
  return get(key).value_or(fallback);
}

bool TaskSpec::is(const std::string& key, const std::string& word) const { return get(key) == word; }

void TaskSpec::set_default(const std::string& key, const std::string& value) {
  if (!has(key)) options.emplace_back(key, value);
}

std::string TaskSpec::to_string() const {
  std::string s = kind;
  for (size_t i = 0; i < options.size(); ++i) s += (i ? "," : ":") + options[i].first + "=" + options[i].second;
  return s;
}

nlohmann::json TaskSpec::to_json() const {
  nlohmann::json opts = nlohmann::json::object();
  for (const auto& [k, v] : options) {
    if (!opts.contains(k)) opts[k] = v;
    else if (opts[k].is_array()) opts[k].push_back(v);
    else opts[k] = nlohmann::json::array({opts[k], v});
  }
  return {{"kind", kind}, {"options", std::move(opts)}};
}

Result<TaskSpec> split_task(const std::string& text) {
  TaskSpec t;
  const size_t colon = text.find(':');
  t.kind = text.substr(0, colon);
  if (t.kind.empty()) return make_error("--task '{}': the kind is missing (e.g. --task tensor)", text);
  if (colon == std::string::npos) return t;
  const std::string rest = text.substr(colon + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    if (comma == std::string::npos) comma = rest.size();
    const std::string item = rest.substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error("--task {}: '{}' is not key=value (options are comma-separated: {}:key=value,key=value)",
                        t.kind, item, t.kind);
    t.options.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    start = comma + 1;
  }
  return t;
}

Status validate_task(const TaskSpec& task, const std::vector<OptionDoc>& options) {
  for (const auto& [key, value] : task.options) {
    auto doc = std::find_if(options.begin(), options.end(), [&](const OptionDoc& o) { return o.key == key; });
    if (doc == options.end())
      return make_error("--task {}: unknown option '{}' (options: {})", task.kind, key, option_keys(options));
    if (!doc->repeatable && task.all(key).size() > 1)
      return make_error("--task {}: option '{}' is given more than once", task.kind, key);
    if (std::find(doc->also_allowed.begin(), doc->also_allowed.end(), value) != doc->also_allowed.end()) continue;
    bool ok = true;
    switch (doc->type) {
      case OptionType::kNumber: ok = parse_number(value).has_value(); break;
      case OptionType::kInteger: ok = parse_integer(value).has_value(); break;
      case OptionType::kBool: ok = parse_bool(value).has_value(); break;
      case OptionType::kText:
        ok = !value.empty() &&
             (doc->choices.empty() || std::find(doc->choices.begin(), doc->choices.end(), value) != doc->choices.end());
        break;
    }
    if (ok) continue;
    std::string expected = doc->choices.empty() ? type_words(doc->type) : "one of " + fmt::format("{}", fmt::join(doc->choices, ", "));
    for (const auto& w : doc->also_allowed) expected += " or '" + w + "'";
    return make_error("--task {}: {}={} is not valid ({} expected)", task.kind, key, value, expected);
  }
  return {};
}

}  // namespace fetafix::compare
