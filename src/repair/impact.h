// The impact of each localized fault on the data (issue 17, "impact, not only difference"):
// while samples disagree, each fault is reverted alone on a copy of the Target — the edits its
// repair would make (plan_repair) — and the samples are run through the task's comparator again.
// How many samples change outcome, and how the mean distance moves, go to finding.impact. WB
// faults are reverted as one group: a converter that rounds or quantizes weights does it on
// every layer, and one layer's weights put back rarely moves a label alone. A fault that changes
// no outcome alone stays a fault: faults can matter only together (docs/localize-json.md,
// "Impact"). `fetafix localize` calls it; repair measures its own steps.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "compare/compare.h"
#include "data/samples.h"
#include "localize/finding.h"
#include "localize/localize.h"

namespace fetafix::repair {

struct ImpactOptions {
  // Reverts measured at most, in the findings' order (the WB group counts as one); faults past
  // it keep basis "not_measured". 0: none (each revert costs one Target run on the samples).
  size_t limit = 32;
  std::function<void(const std::string&)> log;  // one line per revert; may be empty
};

// What measure_impact did.
struct ImpactRun {
  size_t reverts = 0;        // Target runs made for reverts
  size_t not_measured = 0;   // faults left "not_measured" by the limit
  size_t not_revertible = 0; // faults no repair plans a revert for
};

// Fills the impact of every fault in `findings` (verdict kFault; others are left as they are)
// on `samples`, fed as `options` says. Collective under mpirun (every rank must call it). Fails
// when the samples cannot be run through both models.
Result<ImpactRun> measure_impact(const compare::ModelSide& source, const compare::ModelSide& target,
                                 data::SampleSet samples, const compare::CompareOptions& options,
                                 std::vector<localize::Finding>& findings, const ImpactOptions& impact = {});

// What `fetafix localize` and the Python module's localize do after localizing: while samples
// disagree and impact.limit > 0, measure_impact on the result's findings; a failure, or faults
// past the limit, become notes of the result (the faults stay "not_measured").
void add_fault_impact(const compare::ModelSide& source, const compare::ModelSide& target,
                      const data::SampleSet& samples, const compare::CompareOptions& options,
                      localize::LocalizeResult& result, const ImpactOptions& impact);

}  // namespace fetafix::repair
