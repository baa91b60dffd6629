// One planner per kind of evidence (src/localize/finding.h), in strategies/<type>.cpp beside the
// matching check in src/localize/checks/<type>.cpp. plan_repair (plan_repair.cpp) calls the
// overload for the finding's evidence with std::visit, so a kind of evidence without a planner
// here does not compile. Each planner adds its edits to the context's scratch copy of the Target
// (which validates them and names what earlier edits made) and says in one line what it does.
// What each edits and why: docs/repair-strategies.md. Internal to src/repair.
#pragma once

#include <optional>
#include <string>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "data/preprocess.h"
#include "localize/finding.h"
#include "repair/plan.h"

namespace fetafix::repair::detail {

class PlanContext {
 public:
  PlanContext(const onnx::ModelProto& source, const onnx::ModelProto& target, const localize::Finding& finding);

  const onnx::ModelProto& source;
  const localize::Finding& finding;
  std::string description;             // one line, e.g. "WB: Source values into 'conv3_w' (float32[8,8,3,3])"
  std::optional<data::Preset> preset;  // PP: the preset the Target must be fed with (no graph edit)

  // The scratch copy of the Target, made on first use (a PP repair edits no graph).
  Plan& plan();
  bool has_plan() const { return plan_.has_value(); }
  // "WB finding at 'conv3'": errors start with it.
  const std::string& label() const { return label_; }

 private:
  const onnx::ModelProto& target_;
  std::string label_;
  std::optional<Plan> plan_;
};

Status plan_for(const localize::InputDimensionsEvidence& evidence, PlanContext& context);     // id.cpp
Status plan_for(const localize::InputStructureEvidence& evidence, PlanContext& context);      // tss.cpp
Status plan_for(const localize::PreprocessingEvidence& evidence, PlanContext& context);       // pp.cpp
Status plan_for(const localize::FlattenStructureEvidence& evidence, PlanContext& context);    // tss.cpp
Status plan_for(const localize::WeightsEvidence& evidence, PlanContext& context);             // wb.cpp
Status plan_for(const localize::HyperparametersEvidence& evidence, PlanContext& context);     // lh.cpp
Status plan_for(const localize::OperatorFormEvidence& evidence, PlanContext& context);       // lh.cpp
Status plan_for(const localize::GraphEvidence& evidence, PlanContext& context);               // cg.cpp
Status plan_for(const localize::ExtraOutputEvidence& evidence, PlanContext& context);         // cg.cpp

}  // namespace fetafix::repair::detail
