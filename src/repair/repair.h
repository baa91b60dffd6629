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

// Turns one finding (any type; evidence as documented in docs/input-checks.md and
// docs/layer-checks.md, or find_extra_outputs below) into edits on `target`. The edits are
// checked by applying them to a scratch copy, so a returned candidate applies cleanly to
// `target` as given. Errors (one line naming the finding) when the evidence lacks what the
// strategy needs or the fault has a form no strategy handles.
Result<RepairCandidate> plan_repair(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                    const localize::Finding& finding);

// CG findings for graph outputs a converter added: Target outputs that pair with no Source
// output (by name first, then in order among outputs of the same element type). Evidence:
// {"check": "extra_outputs", "target_output": name, "source_outputs": [...], "target_outputs": [...]}.
// Empty when the Target has no more outputs than the Source.
std::vector<localize::Finding> find_extra_outputs(const onnx::ModelProto& source, const onnx::ModelProto& target);

}  // namespace fetafix::repair
