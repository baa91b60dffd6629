// A real repair to report on, shared by the report tests: the small CNN of the matching tests
// and a "converted" copy with a scaled layer (WB), a depthwise conv that lost its pads (LH)
// and converter no-ops (Cast, Identity, explicit Pad: CG differences the equivalence filter
// finds harmless), run on synthetic photos through localize, repair and a compare of the
// repaired model, as `fetafix repair --report` does.
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

namespace fetafix::report::testing {

struct RepairRun {
  onnx::ModelProto source, target;
  std::filesystem::path images;
  localize::LocalizeResult localization;
  repair::RepairResult repair;
  compare::CompareResult after;
  std::vector<localize::Finding> extra;
  compare::ModelSide source_side, target_side;

  ReportInput input() const {
    ReportInput in;
    in.command = "repair";
    in.source = source_side;
    in.target = target_side;
    in.image_dir = images;
    in.after = &after;
    in.localization = &localization;
    in.repair = &repair;
    in.extra_findings = extra;
    in.exit_code = repair.final_disagreeing == 0 ? 0 : repair.final_disagreeing < repair.initial_disagreeing ? 1 : 3;
    in.seconds = 1.25;
    return in;
  }
};

inline repair::RepairOptions quiet_repair_options() {
  repair::RepairOptions o;
  o.localize.compare.progress = ProgressMode::kQuiet;
  o.localize.compare.threads = 1;
  o.localize.activation.threads = 1;
  o.localize.activation.max_similar = 20;
  o.localize.activation.max_dissimilar = 20;
  return o;
}

inline fetafix::testing::CnnOptions faulty_target_options() {
  return fetafix::testing::cnn_options([](fetafix::testing::CnnOptions& o) {
    o.scaled_layer = 1;
    o.drop_dw_pads = true;
    o.insert_noops = true;
  });
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
  auto loc = localize::localize_faults(r.source_side, r.target_side, r.images, o.localize);
  EXPECT_TRUE(loc.ok()) << loc.error().message;
  if (loc.ok()) r.localization = std::move(loc).value();
  auto rep = repair::repair_target(r.source_side, r.target_side, r.images, o);
  EXPECT_TRUE(rep.ok()) << rep.error().message;
  if (rep.ok()) r.repair = std::move(rep).value();
  compare::ModelSide repaired{&r.repair.repaired, "repaired.onnx", raw};
  auto after = compare::compare_models(r.source_side, repaired, r.images, o.localize.compare);
  EXPECT_TRUE(after.ok()) << after.error().message;
  if (after.ok()) r.after = std::move(after).value();
  r.extra = repair::find_extra_outputs(r.source, r.target);
  return r;
}

}  // namespace fetafix::report::testing
