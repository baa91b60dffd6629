#include "localize/equivalence.h"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "localize/equivalence_rules.h"
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

// Whether the region's own entries could not all be fed from the Source (shapes that do not
// align, entries paired wrongly) or the walk went past them to the model input: then the
// matched layers' boundaries bound the region instead.
bool needs_boundaries(const RegionError& e) {
  return e.status == ReplayStatus::kInputUnavailable || (e.status != ReplayStatus::kFailed && !e.graph_inputs_read.empty());
}

void judge(const RegionError& e, const EquivalenceOptions& options, Finding& f) {
  if (e.status == ReplayStatus::kInputUnavailable || e.status == ReplayStatus::kFailed) {
    f.equivalence = Equivalence::kNotChecked;
    f.regions()->equivalence_error = e.reason;
    return;
  }
  f.equivalence = verdict_of(e, options);
  if (e.status == ReplayStatus::kMeasured) {
    f.impact.relative_l2 = e.relative_l2;
    f.impact.max_abs_diff = e.max_abs_error;
  }
}

// The region bounded by the matched layers instead of its own entries: its Target output
// computed from every other matched boundary (the Source's values), as layer-local replay does.
ReplayRegion bounded_by_layers(const ReplayRegion& region, const std::vector<LayerReplay>& layers) {
  ReplayRegion r{region.id, region.source_output, region.target_output, {}};
  for (const auto& l : layers)
    if (l.target_value != region.target_output && l.source_value != region.source_output)
      r.entries.emplace_back(l.target_value, l.source_value);
  return r;
}

// The findings the replay did not show equivalent, judged once more by the exact structural
// rules (equivalence_rules.h): equivalent when one holds.
Status apply_exact_rules(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const EquivalenceOptions& options) {
  std::vector<Finding*> open;
  for (Finding& f : findings)
    if (f.regions() && f.equivalence != Equivalence::kEquivalent) open.push_back(&f);
  if (open.empty()) return {};
  FETAFIX_ASSIGN_OR_RETURN(const auto source_view, model::GraphView::build(source.graph()));
  FETAFIX_ASSIGN_OR_RETURN(const auto target_view, model::GraphView::build(target.graph()));
  const RuleModels models{source, target, source_view, target_view};
  for (Finding* f : open)
    if (auto rule = exact_rule(models, *f->regions(), options.rtol, options.atol)) {
      f->equivalence = Equivalence::kEquivalent;
      f->regions()->equivalence_rule = std::move(*rule);
    }
  return {};
}

}  // namespace

Status filter_equivalent(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const Tensor& source_inputs, const Tensor& target_inputs,
                         const EquivalenceOptions& options, const std::vector<match::NodeMatch>& pairs) {
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
  if (regions.empty()) return apply_exact_rules(source, target, findings, options);
  ReplayOptions ro;
  ro.threads = options.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto run, replay_regions(source, target, regions, source_inputs, target_inputs, ro));
  // Second pass, for the regions whose own entries could not be fed: bounded by the matched layers.
  std::vector<size_t> again;
  for (size_t i = 0; i < judged.size(); ++i) {
    if (needs_boundaries(run.regions[i]) && !pairs.empty()) again.push_back(i);
    else judge(run.regions[i], options, *judged[i]);
  }
  if (!again.empty()) {
    FETAFIX_ASSIGN_OR_RETURN(const auto layers, matched_boundaries(source, target, pairs));
    std::vector<ReplayRegion> bounded;
    for (size_t i : again) bounded.push_back(bounded_by_layers(regions[i], layers));
    FETAFIX_ASSIGN_OR_RETURN(auto rerun, replay_regions(source, target, bounded, source_inputs, target_inputs, ro));
    for (size_t k = 0; k < again.size(); ++k) judge(rerun.regions[k], options, *judged[again[k]]);
  }
  return apply_exact_rules(source, target, findings, options);
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
