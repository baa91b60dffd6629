// What "agree" means for a pair of models: `--task KIND[:key=value,...]`, e.g.
//   label:top_k=5,offset=1      boxes:scores=scores,boxes=boxes,iou=0.9
//   mask:threshold=0.3          text:blank=0,charset=keys.txt      tensor:output=a,output=b,rtol=1e-2
// The kind picks a comparator (compare/comparator.h); each kind declares its options, and a
// task string is checked against them before any model runs: an unknown kind, an unknown or
// repeated key, or a value of the wrong type is a one-line error naming the key and the options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace fetafix::compare {

enum class OptionType {
  kNumber,   // a finite decimal number
  kInteger,  // a whole number
  kBool,     // true or false
  kText,     // anything (an output name, a file)
};

struct OptionDoc {
  std::string key;
  OptionType type = OptionType::kText;
  std::string default_text;  // how the docs and --help show the default
  std::string help;
  bool repeatable = false;                 // may be given several times (tensor's output=)
  std::vector<std::string> also_allowed{}; // literal words accepted besides the type ("none")
  std::vector<std::string> choices{};      // kText only: the accepted values (empty = any)
};

struct TaskSpec {
  std::string kind;  // empty: no --task given; the outputs decide (compare/comparator.h)
  std::vector<std::pair<std::string, std::string>> options;  // in the order given

  bool has(const std::string& key) const;
  std::optional<std::string> get(const std::string& key) const;  // the last value given
  std::vector<std::string> all(const std::string& key) const;     // every value, in order
  // Typed readers; the values were checked when the task was parsed, so they cannot fail.
  double number(const std::string& key, double fallback) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string text(const std::string& key, const std::string& fallback = {}) const;
  // True when the key holds one of the also_allowed words (e.g. "none").
  bool is(const std::string& key, const std::string& word) const;

  void set_default(const std::string& key, const std::string& value);  // adds it unless given
  std::string to_string() const;  // "kind:key=value,..." (what the user would type)
  nlohmann::json to_json() const; // {"kind": ..., "options": {key: value or [values]}}
};

// Splits "KIND[:key=value,...]": syntax only (a kind, then comma-separated key=value pairs).
Result<TaskSpec> split_task(const std::string& text);

// Checks a task's keys and values against the options its kind declares.
Status validate_task(const TaskSpec& task, const std::vector<OptionDoc>& options);

}  // namespace fetafix::compare
