// Repairing an operator substitution in place: the Target's form (a node or short chain, see
// localize/op_forms.h) is made to compute the Source form's function, in the Target's own opset
// and where the Target computes it — not by transplanting Source nodes. Where the Target's op
// carries the Source's parameters (HardSigmoid alpha/beta, Clip bounds, LeakyRelu alpha, Gelu's
// approximation, Resize modes, Softmax axis) only those change; otherwise the form's nodes are
// replaced by the Source function's canonical spelling, reading the same input, and the form's
// readers are pointed at it. docs/op-forms.md.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "localize/op_forms.h"
#include "model/edit.h"

namespace fetafix::repair {

struct OpRewriteRequest {
  std::string target_output;     // the value the Target's form produces (OpForm::output)
  localize::OpForm source_form;  // the function it must compute
  // The shape of the Target form's input as observed at run time (OpForm::input_shape of the
  // localized form), for models whose value_info lacks it: a softmax's axis is chosen by size.
  std::vector<int64_t> target_input_shape;
};

struct OpRewritePlan {
  std::vector<model::Edit> edits;          // apply in order (EditLog::apply_all); replayable
  std::vector<std::string> descriptions;   // one line per request
};

// Plans every request in order on a scratch copy of `target` (so a later request sees the
// earlier ones applied and the node names edits use stay right). The Target is not changed. A
// request whose Target form already computes the Source's function adds no edit. Errors (one
// line, naming the value): no recognized form produces target_output, the form's output is a
// graph output, the Source function cannot be written in the Target's opset (a Resize
// coordinate mode at opset 10, say), per-channel parameters outside clip.
Result<OpRewritePlan> plan_op_rewrites(const onnx::ModelProto& target, const std::vector<OpRewriteRequest>& requests,
                                       const localize::OpFormOptions& options = {});

}  // namespace fetafix::repair
