// The text form of one injection: `type:fault[=value][:key=value]...`, e.g. `wb:fp16`,
// `wb:int8-channel:layers=conv1,conv2`, `lh:strides=2:node=first`, `benign:fold-bn`.
// Grammar and meaning of each fault: docs/inject.md.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "localize/finding.h"

namespace fetafix::inject {

using localize::FaultType;

// What an injection plants: one of the paper's fault types, as localize reports them, or
// (nullopt) a rewrite that must not change what the model computes.
using InjectedType = std::optional<FaultType>;
std::string_view injected_type_name(InjectedType type);  // "PP", "ID", "TSS", "WB", "LH", "CG", "benign"

struct FaultSpec {
  std::string text;                          // as written, for reports
  InjectedType type = FaultType::kWB;
  bool benign() const { return !type.has_value(); }
  std::string fault;                         // "fp16", "drop-pads", "strides", ...
  std::string value;                         // after '=' in the fault part: "2", "0,3,2,1"; may be empty
  // node=/layers= (synonyms): node names, or the single word "all", "first" or "random".
  // Empty: the fault's own default (docs/inject.md).
  std::vector<std::string> nodes;
  std::map<std::string, std::string> options;  // any other key=value
};

// Checks the syntax and that `type:fault` is one fetafix knows; values are checked when injecting.
// Errors are one line naming the spec, e.g. "fault 'lh:foo': unknown fault 'foo' (known: ...)".
Result<FaultSpec> parse_fault_spec(std::string_view text);

// "type:fault" of every fault that can be injected now, sorted.
std::vector<std::string> supported_faults();

}  // namespace fetafix::inject
