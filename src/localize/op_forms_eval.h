// Internal to src/localize/op_forms.cpp: evaluating an element-wise chain on sample inputs and
// telling which function family it computes (docs/op-forms.md, "How a chain is identified").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "localize/op_forms.h"
#include "model/graph.h"

namespace fetafix::localize::forms {

// Ops whose output element depends only on the same element of their inputs (with broadcast
// constants) and that the chain evaluator implements.
bool is_elementwise(std::string_view op_type);

// The family and parameters the chain `nodes` (graph order) computes from `x`; nullopt when it
// matches none (or is the identity). Fills function, numbers, modes and channel_shape only.
std::optional<OpForm> identify_chain(const onnx::ModelProto& model, const model::GraphView& view,
                                     const std::vector<size_t>& nodes, const std::string& x, double rtol);

}  // namespace fetafix::localize::forms
