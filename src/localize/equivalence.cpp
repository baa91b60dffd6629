#include "localize/equivalence.h"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "localize/local_replay.h"

namespace fetafix::localize {
namespace {

// The finding's regions as one replay region: the Target region fed the Source's own values at
// the Source region's entries, its output compared with the Source's at the Source region's
// output. Upstream differences cannot reach the region, so the verdict is the region's alone.
Result<ReplayRegion> replay_region_of(const Finding& finding, size_t index) {
  const JudgedRegions* regions = finding.regions();
  if (!regions)
    return make_error("finding at '{}': only LH and CG findings with source_region/target_region can be checked",
                      finding.target_node);
  const RegionNames &s = regions->source, &t = regions->target;
  if (s.output.empty() || t.output.empty())
    return make_error("finding at '{}': {} is empty", finding.target_node, s.output.empty() ? "source_region" : "target_region");
  // Entries pair by position; the regions' walk (layer_support.h) lists them in the same order.
  if (s.inputs.size() != t.inputs.size())
    return make_error("finding at '{}': the regions have {} and {} entries", finding.target_node, s.inputs.size(),
                      t.inputs.size());
  ReplayRegion r;
  r.id = std::to_string(index);
  r.source_output = s.output;
  r.target_output = t.output;
  for (size_t i = 0; i < s.inputs.size(); ++i) r.entries.emplace_back(t.inputs[i], s.inputs[i]);
  return r;
}

// Per image: max |s - t| <= rtol * max |s| + atol, no NaN on one side only.
Equivalence verdict_of(const RegionError& e, const EquivalenceOptions& options) {
  if (e.status == ReplayStatus::kOutputShapeDiffers || e.nan_mismatches > 0) return Equivalence::kDivergent;
  for (size_t i = 0; i < e.image_max_abs_error.size(); ++i)
    if (!(e.image_max_abs_error[i] <= options.rtol * e.image_max_abs_source[i] + options.atol))
      return Equivalence::kDivergent;
  return Equivalence::kEquivalent;
}

void judge(const RegionError& e, const EquivalenceOptions& options, Finding& f) {
  if (e.status == ReplayStatus::kInputUnavailable || e.status == ReplayStatus::kFailed) {
    f.equivalence = Equivalence::kNotChecked;
    f.regions()->equivalence_error = e.reason;
    return;
  }
  if (!e.graph_inputs_read.empty()) {  // it walked past its entries: upstream would be judged too
    f.equivalence = Equivalence::kNotChecked;
    f.regions()->equivalence_error =
        fmt::format("the Target region reads model input '{}' that is not a region entry", e.graph_inputs_read[0]);
    return;
  }
  f.equivalence = verdict_of(e, options);
  if (e.status == ReplayStatus::kMeasured) {
    f.impact.relative_l2 = e.relative_l2;
    f.impact.max_abs_diff = e.max_abs_error;
  }
}

}  // namespace

Status filter_equivalent(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const Tensor& source_inputs, const Tensor& target_inputs,
                         const EquivalenceOptions& options) {
  std::vector<Finding*> judged;
  std::vector<ReplayRegion> regions;
  for (auto& f : findings) {
    if (!f.regions()) continue;
    auto r = replay_region_of(f, regions.size());
    if (!r.ok()) {
      f.equivalence = Equivalence::kNotChecked;
      f.regions()->equivalence_error = r.error().message;
      continue;
    }
    judged.push_back(&f);
    regions.push_back(std::move(r).value());
  }
  if (regions.empty()) return {};
  ReplayOptions ro;
  ro.threads = options.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto run, replay_regions(source, target, regions, source_inputs, target_inputs, ro));
  for (size_t i = 0; i < judged.size(); ++i) judge(run.regions[i], options, *judged[i]);
  return {};
}

Result<Equivalence> check_equivalence(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                      const Finding& finding, const Tensor& source_inputs, const Tensor& target_inputs,
                                      const EquivalenceOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto region, replay_region_of(finding, 0));
  ReplayOptions ro;
  ro.threads = options.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto run, replay_regions(source, target, {region}, source_inputs, target_inputs, ro));
  const RegionError& e = run.regions.at(0);
  if (e.status == ReplayStatus::kInputUnavailable || e.status == ReplayStatus::kFailed)
    return make_error("finding at '{}': {}", finding.target_node, e.reason);
  return verdict_of(e, options);
}

}  // namespace fetafix::localize
