// A localized fault: what kind, where in both models, and the evidence for it.
// Every check (input-based, layer-based) reports these; localize groups, ranks and prints
// them; repair turns them into edits.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fetafix::localize {

enum class FaultType { kPP, kID, kTSS, kWB, kLH, kCG };

inline std::string_view fault_type_name(FaultType t) {
  switch (t) {
    case FaultType::kPP: return "PP";
    case FaultType::kID: return "ID";
    case FaultType::kTSS: return "TSS";
    case FaultType::kWB: return "WB";
    case FaultType::kLH: return "LH";
    case FaultType::kCG: return "CG";
  }
  return "?";
}

// Whether Source and Target compute the same function on real activations where the
// finding is (LH and CG findings; see the equivalence filter).
enum class Equivalence { kNotChecked, kEquivalent, kDivergent };

inline std::string_view equivalence_name(Equivalence e) {
  switch (e) {
    case Equivalence::kNotChecked: return "not_checked";
    case Equivalence::kEquivalent: return "equivalent";
    case Equivalence::kDivergent: return "divergent";
  }
  return "?";
}

struct Finding {
  FaultType type = FaultType::kWB;
  std::string source_node;   // node names in each model; empty where the fault has no node
  std::string target_node;   //   (PP, or an input-level ID finding)
  std::string summary;       // one line a person reads, e.g. "pads [1,1,1,1] in Source, missing in Target"
  // Machine-readable details, specific to the check (documented in docs/localize-json.md);
  // repair reads what it needs from here (attribute name and both values, tensor names, ...).
  nlohmann::json evidence = nlohmann::json::object();
  Equivalence equivalence = Equivalence::kNotChecked;
  int layer_rank = -1;       // 0-based rank of the layer in activation analysis; -1 if none
};

}  // namespace fetafix::localize
