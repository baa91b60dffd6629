// What the matrix suites (test_fault_matrix.cpp, test_task_matrix.cpp) share: planting a row's
// faults with inject, the nodes its ground truth names, and the findings and repair steps
// printed when a row fails.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "inject/inject.h"
#include "localize/localize.h"
#include "repair/driver.h"

namespace fetafix::testing {

// `specs` planted in `source` in order; on a failure (reported) the source itself, no truth.
inline inject::InjectionResult plant_specs(const onnx::ModelProto& source, const std::vector<std::string>& specs,
                                           const std::string& row) {
  std::vector<inject::FaultSpec> parsed;
  for (const auto& text : specs) {
    auto spec = inject::parse_fault_spec(text);
    EXPECT_TRUE(spec.ok()) << text << ": " << spec.error().message;
    if (spec.ok()) parsed.push_back(*spec);
  }
  auto injected = inject::inject(source, parsed);
  EXPECT_TRUE(injected.ok()) << row << ": " << injected.error().message;
  return injected.ok() ? std::move(injected).value() : inject::InjectionResult{source, {}};
}

// Every node the injections of a ground truth list.
inline std::set<std::string> truth_nodes(const nlohmann::json& truth) {
  std::set<std::string> nodes;
  for (const auto& injection : truth["injections"])
    for (const auto& n : injection["nodes"]) nodes.insert(n.get<std::string>());
  return nodes;
}

inline std::string findings_of(const localize::LocalizeResult& loc) {
  std::string out;
  for (const auto& f : loc.findings)
    out += fmt::format("  {} {} <-> {}: {} [{}, {}]\n", localize::fault_type_name(f.type()), f.source_node,
                       f.target_node, f.summary, localize::equivalence_name(f.equivalence),
                       localize::verdict_name(f.verdict));
  for (const auto& t : loc.preprocessing.trials)
    out += fmt::format("  preset {} ({}): {} disagreeing{}\n", t.preset, t.role, t.disagreeing,
                       t.measured ? "" : " (skipped: " + t.skipped_reason + ")");
  for (const auto& note : loc.notes) out += "  note: " + note + "\n";
  return out;
}

inline std::string steps_of(const repair::RepairResult& r) {
  std::string out = repair::format_report(r);
  for (const auto& s : r.steps) out += "  step: " + s.type_label() + " " + s.description + " -> " + s.reason + "\n";
  return out;
}

}  // namespace fetafix::testing
