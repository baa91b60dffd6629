// A real repair to report on, shared by the report tests: the small CNN of the matching tests
// and a "converted" copy with a scaled layer (WB), a depthwise conv that lost its pads (LH)
// and converter no-ops (Cast, Identity, explicit Pad: CG differences the equivalence filter
// finds harmless), run on synthetic photos through repair and compares of the Target before
// and after it (the top-k lists), as `fetafix repair --report` does.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "compare/compare.h"
#include "localize/localize.h"
#include "match/cnn_fixture.h"
#include "repair/driver.h"
#include "repair/repair.h"
#include "report/report.h"
#include "support/photos.h"
#include "support/repair_options.h"

namespace fetafix::report::testing {

struct RepairRun {
  onnx::ModelProto source, target;
  std::filesystem::path images;
  repair::RepairResult repair;
  compare::CompareResult before, after;
  compare::ModelSide source_side, target_side;

  ReportInput input() const {
    ReportInput in;
    in.command = "repair";
    in.source = source_side;
    in.target = target_side;
    in.image_dir = images;
    in.before = &before;
    in.after = &after;
    in.repair = &repair;
    in.exit_code = repair.final_disagreeing == 0 ? 0 : repair.final_disagreeing < repair.initial_disagreeing ? 1 : 3;
    in.seconds = 1.25;
    return in;
  }
  // The report's finding cards: every round's findings.
  size_t finding_cards() const {
    size_t n = 0;
    for (const auto& l : repair.localizations) n += l.findings.size();
    return n;
  }
  // The first round that ranked layers (the report's first ranking chart); null if none did.
  const localize::LocalizeResult* first_ranking() const {
    for (const auto& l : repair.localizations)
      if (!l.activation.ranked.empty()) return &l;
    return nullptr;
  }
};

using fetafix::testing::quiet_repair_options;

inline fetafix::testing::CnnOptions faulty_target_options() {
  return fetafix::testing::cnn_options([](fetafix::testing::CnnOptions& o) {
    o.scaled_layer = 1;
    o.drop_dw_pads = true;
    o.insert_noops = true;
  });
}

// Findings and steps as the repair driver makes them, for tests without a real repair.
inline localize::Evidence evidence_of(localize::FaultType type) {
  switch (type) {
    case localize::FaultType::kPP: return localize::PreprocessingEvidence{};
    case localize::FaultType::kID: return localize::InputDimensionsEvidence{};
    case localize::FaultType::kTSS: return localize::InputStructureEvidence{};
    case localize::FaultType::kWB: return localize::WeightsEvidence{};
    case localize::FaultType::kLH: return localize::HyperparametersEvidence{};
    case localize::FaultType::kCG: return localize::GraphEvidence{};
  }
  return localize::GraphEvidence{};
}

inline localize::Finding finding(localize::FaultType type, const std::string& node, const std::string& summary) {
  localize::Finding f = localize::make_finding(evidence_of(type), node, node, summary);
  f.equivalence = localize::Equivalence::kDivergent;
  return f;
}

inline repair::RepairStep step_for(const localize::Finding& f, int round, bool kept, const std::string& reason) {
  repair::RepairStep st;
  st.round = round;
  st.type = f.type();
  st.description = "edit for " + f.summary;
  st.source_node = f.source_node;
  st.target_node = f.target_node;
  st.kept = kept;
  st.reason = reason;
  st.finding_ids = {f.id};
  st.target_nodes = {f.target_node};
  return st;
}

// A two-round repair without models: round 1's findings are repaired by a weight group and
// an LH edit that the screen rejects; round 2 localizes a finding that appears only then and
// repairs it.
inline repair::RepairResult two_round_repair() {
  repair::RepairResult r;
  r.images = 4;
  r.initial_disagreeing = 3;
  r.final_disagreeing = 0;
  r.history = {0.75, 0.25, 0};
  r.counts["WB"] = {2, 1, 1};
  r.counts["LH"] = {1, 1, 0};
  r.counts["CG"] = {1, 1, 1};
  r.stop_reason = "fully repaired";
  r.full_runs = 7;
  r.partial_runs = 5;
  r.image_files = {"a.png", "b.png", "c.png", "d.png"};
  r.initial_agree = {false, false, true, false};
  r.final_agree = {true, true, true, true};
  localize::LocalizeResult round1, round2;
  round1.findings = {finding(localize::FaultType::kWB, "conv1", "WB: conv1 weights differ"),
                     finding(localize::FaultType::kWB, "conv2", "WB: conv2 weights differ"),
                     finding(localize::FaultType::kLH, "conv3", "LH: conv3 lost its pads")};
  round2.findings = {finding(localize::FaultType::kCG, "relu4", "CG: <relu4> only in round two")};
  r.localizations = {round1, round2};
  repair::RepairStep group;
  group.round = 1;
  group.kind = repair::StepKind::kGroup;
  group.type = localize::FaultType::kWB;
  group.description = "Source weights into 2 of 2 differing tensors (2 layers): conv1, conv2";
  group.target_nodes = {"conv1", "conv2"};
  group.finding_ids = {round1.findings[0].id, round1.findings[1].id};
  group.kept = true;
  group.reason = "kept";
  group.disagreeing_before = 3;
  group.disagreeing_after = 1;
  auto lh = step_for(round1.findings[2], 1, false, "no drop on the 3 screening images (3 of them disagree, 3 would)");
  lh.screened_out = true;
  lh.disagreeing_before = lh.disagreeing_after = 1;
  auto cg = step_for(round2.findings[0], 2, true, "kept");
  cg.disagreeing_before = 1;
  r.steps = {group, lh, cg};

  return r;
}

// A report of `command` on models s.onnx and t.onnx, with no image folder to read.
inline ReportInput input_without_images(const std::string& command) {
  ReportInput in;
  in.command = command;
  in.source.label = "s.onnx";
  in.target.label = "t.onnx";
  in.image_dir = "/nonexistent";
  return in;
}

inline ReportInput two_round_input(const repair::RepairResult& r) {
  ReportInput in = input_without_images("repair");
  in.repair = &r;
  return in;
}

// Computed once per test process (a few seconds).
inline const RepairRun& repair_run() {
  static std::unique_ptr<RepairRun> run;
  if (run) return *run;
  run = std::make_unique<RepairRun>();
  RepairRun& r = *run;
  r.source = fetafix::testing::build_cnn();
  r.target = fetafix::testing::build_cnn(faulty_target_options());
  r.images = fetafix::testing::synthetic_photos("report_photos");
  const auto raw = data::preset_by_name("raw").value();
  r.source_side = {&r.source, "models/source.onnx", raw};
  r.target_side = {&r.target, "models/target <converted>.onnx", raw};
  const auto o = quiet_repair_options();
  auto before = compare::compare_models(r.source_side, r.target_side, r.images, o.localize.compare);
  EXPECT_TRUE(before.ok()) << before.error().message;
  if (before.ok()) r.before = std::move(before).value();
  auto rep = repair::repair_target(r.source_side, r.target_side, r.images, o);
  EXPECT_TRUE(rep.ok()) << rep.error().message;
  if (rep.ok()) r.repair = std::move(rep).value();
  compare::ModelSide repaired{&r.repair.repaired, "repaired.onnx", raw};
  auto after = compare::compare_models(r.source_side, repaired, r.images, o.localize.compare);
  EXPECT_TRUE(after.ok()) << after.error().message;
  if (after.ok()) r.after = std::move(after).value();
  return r;
}

}  // namespace fetafix::report::testing
