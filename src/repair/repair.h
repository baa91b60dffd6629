// Repair strategies (paper §4.2): each localized Finding becomes an undoable edit set on the
// Target. Planning is pure: the Target is not changed; the caller applies the edits with a
// model::EditLog (and can undo them exactly). What each strategy edits: docs/repair-strategies.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "data/preprocess.h"
#include "localize/finding.h"
#include "model/edit.h"

namespace fetafix::repair {

struct RepairCandidate {
  localize::Finding finding;
  // Applied in order (EditLog::apply_all); later edits may name nodes the earlier ones added.
  std::vector<model::Edit> edits;
  std::string description;  // one line, e.g. "WB: Source values into 'conv3_w' (float32[8,8,3,3])"
  // PP only: the preset the Target must be fed with. PP changes no graph, so `edits` is empty.
  std::optional<data::Preset> preset;
};

// Turns one finding into edits on `target`, with the planner for its kind of evidence
// (src/repair/strategies/). The edits are checked by applying them to a scratch copy, so a
// returned candidate applies cleanly to `target` as given. Errors (one line naming the finding)
// when the evidence names what the Target does not have or the fault has a form no strategy
// handles.
Result<RepairCandidate> plan_repair(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                    const localize::Finding& finding);

}  // namespace fetafix::repair
