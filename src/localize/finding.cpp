#include "localize/finding.h"

#include <fmt/format.h>

namespace fetafix::localize {
namespace {

// FNV-1a, 64 bits: fixed by definition, so ids are the same on every machine and run.
uint64_t fnv1a(std::string_view text, uint64_t h) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

FaultType Finding::type() const {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kType; }, evidence);
}

std::string_view Finding::check() const {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kCheck; }, evidence);
}

const JudgedRegions* Finding::regions() const {
  return std::visit(
      [](const auto& e) -> const JudgedRegions* {
        if constexpr (requires { e.regions; }) return &e.regions;
        else return nullptr;
      },
      evidence);
}

JudgedRegions* Finding::regions() { return const_cast<JudgedRegions*>(std::as_const(*this).regions()); }

std::string finding_id(FaultType type, std::string_view check, const std::string& source_node,
                       const std::string& target_node, const std::string& summary) {
  uint64_t h = 0xcbf29ce484222325ull;
  // A separator no field contains keeps ("a", "bc") and ("ab", "c") apart.
  for (std::string_view part : {fault_type_name(type), check, std::string_view(source_node),
                                std::string_view(target_node), std::string_view(summary)})
    h = fnv1a(std::string_view("\x1f", 1), fnv1a(part, h));
  return fmt::format("{}-{:012x}", fault_type_name(type), h >> 16);
}

Finding make_finding(Evidence evidence, std::string source_node, std::string target_node, std::string summary,
                     int layer_rank) {
  Finding f;
  f.evidence = std::move(evidence);
  f.source_node = std::move(source_node);
  f.target_node = std::move(target_node);
  f.summary = std::move(summary);
  f.layer_rank = layer_rank;
  f.id = finding_id(f.type(), f.check(), f.source_node, f.target_node, f.summary);
  return f;
}

nlohmann::json evidence_json(const Finding& finding) {
  return std::visit(
      [](const auto& e) {
        nlohmann::json j = e.to_json();
        j["check"] = std::decay_t<decltype(e)>::kCheck;
        return j;
      },
      finding.evidence);
}

nlohmann::json RegionNames::to_json() const {
  return {{"nodes", nodes}, {"ops", ops}, {"inputs", inputs}, {"output", output}};
}

void JudgedRegions::add_to(nlohmann::json& evidence) const {
  evidence["source_region"] = source.to_json();
  evidence["target_region"] = target.to_json();
  if (!equivalence_error.empty()) evidence["equivalence_error"] = equivalence_error;
  if (!equivalence_rule.empty()) evidence["equivalence_rule"] = equivalence_rule;
}

nlohmann::json Impact::to_json() const {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"outcome_changes", opt(outcome_changes)}, {"samples", samples},
          {"basis", basis},
          {"reverted_with", reverted_with},
          {"distance_change", opt(distance_change)},
          {"relative_l2", opt(relative_l2)},
          {"max_abs_diff", opt(max_abs_diff)}};
}

}  // namespace fetafix::localize
