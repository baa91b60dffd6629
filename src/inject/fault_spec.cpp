#include "inject/fault_spec.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace fetafix::inject {
namespace {

struct KnownFault {
  InjectedType type;
  std::string_view name;
  bool supported;
};

// Every fault of docs/inject.md; the unsupported ones are refused with a clear message.
constexpr std::array kKnownFaults{
    KnownFault{FaultType::kWB, "fp16", true},
    KnownFault{FaultType::kWB, "bf16", true},
    KnownFault{FaultType::kWB, "int8-tensor", true},
    KnownFault{FaultType::kWB, "int8-channel", true},
    KnownFault{FaultType::kLH, "drop-pads", true},
    KnownFault{FaultType::kLH, "strides", true},
    KnownFault{FaultType::kLH, "dilations", true},
    KnownFault{FaultType::kLH, "epsilon", true},
    KnownFault{FaultType::kLH, "clip-max-removed", true},
    KnownFault{FaultType::kLH, "activation", true},
    KnownFault{FaultType::kTSS, "input-transpose", true},
    KnownFault{FaultType::kTSS, "gather-axis", true},
    KnownFault{FaultType::kID, "input-size", true},
    KnownFault{FaultType::kCG, "extra-output", true},
    KnownFault{FaultType::kCG, "add-pad", true},
    KnownFault{FaultType::kCG, "transpose-pair", true},
    KnownFault{FaultType::kPP, "preset", true},
    KnownFault{std::nullopt, "fold-bn", true},
    KnownFault{std::nullopt, "bn-as-mul-add", true},
    KnownFault{std::nullopt, "pad-into-conv", true},
    KnownFault{std::nullopt, "conv-pads-to-pad-node", true},
    KnownFault{std::nullopt, "weights-as-constants", true},
    KnownFault{std::nullopt, "nhwc", true},
    KnownFault{std::nullopt, "ort-optimized", true},
    KnownFault{std::nullopt, "opset", true},
};

bool parse_type(std::string_view text, InjectedType& type) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "benign") {
    type = std::nullopt;
    return true;
  }
  for (FaultType t : localize::kAllFaultTypes) {
    std::string name(localize::fault_type_name(t));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == name) {
      type = t;
      return true;
    }
  }
  return false;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

}  // namespace

std::string_view injected_type_name(InjectedType type) {
  return type ? localize::fault_type_name(*type) : std::string_view("benign");
}

std::vector<std::string> supported_faults() {
  std::vector<std::string> names;
  for (const auto& f : kKnownFaults) {
    if (!f.supported) continue;
    std::string type(injected_type_name(f.type));
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    names.push_back(type + ":" + std::string(f.name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<FaultSpec> parse_fault_spec(std::string_view text) {
  FaultSpec spec;
  spec.text = std::string(text);
  const auto parts = split(text, ':');
  if (parts.size() < 2 || parts[1].empty())
    return make_error("fault '{}': expected TYPE:FAULT[=VALUE][:KEY=VALUE]... (e.g. wb:fp16, lh:strides=2:node=conv1)",
                      text);
  if (!parse_type(parts[0], spec.type))
    return make_error("fault '{}': unknown type '{}' (known: pp, id, tss, wb, lh, cg, benign)", text, parts[0]);
  const size_t eq = parts[1].find('=');
  spec.fault = parts[1].substr(0, eq);
  if (eq != std::string::npos) {
    spec.value = parts[1].substr(eq + 1);
    if (spec.value.empty()) return make_error("fault '{}': '=' with no value", text);
  }
  const auto known = std::find_if(kKnownFaults.begin(), kKnownFaults.end(),
                                  [&](const KnownFault& f) { return f.type == spec.type && f.name == spec.fault; });
  if (known == kKnownFaults.end()) {
    std::vector<std::string_view> names;
    for (const auto& f : kKnownFaults)
      if (f.type == spec.type) names.push_back(f.name);
    return make_error("fault '{}': unknown {} fault '{}' (known: {})", text, injected_type_name(spec.type), spec.fault,
                      fmt::join(names, ", "));
  }
  if (!known->supported) return make_error("fault '{}' is not supported yet", text);
  for (size_t i = 2; i < parts.size(); ++i) {
    const size_t option_eq = parts[i].find('=');
    if (option_eq == std::string::npos || option_eq == 0 || option_eq + 1 == parts[i].size())
      return make_error("fault '{}': option '{}' is not KEY=VALUE", text, parts[i]);
    const std::string key = parts[i].substr(0, option_eq), value = parts[i].substr(option_eq + 1);
    if (key == "node" || key == "layers" || key == "nodes") {
      if (!spec.nodes.empty()) return make_error("fault '{}': node/layers given twice", text);
      spec.nodes = split(value, ',');
      if (std::any_of(spec.nodes.begin(), spec.nodes.end(), [](const auto& n) { return n.empty(); }))
        return make_error("fault '{}': an empty node name in '{}'", text, value);
      const bool keyword = spec.nodes[0] == "all" || spec.nodes[0] == "first" || spec.nodes[0] == "random";
      if (keyword && spec.nodes.size() > 1)
        return make_error("fault '{}': '{}' cannot be combined with node names", text, spec.nodes[0]);
      continue;
    }
    if (!spec.options.emplace(key, value).second) return make_error("fault '{}': option '{}' given twice", text, key);
  }
  return spec;
}

}  // namespace fetafix::inject
