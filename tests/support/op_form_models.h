// Tiny models around one operator form, for the op-form recognition and rewrite tests:
// x[1,C,5,5] -> <form> -> "act" -> Conv 1x1 (C -> C, fixed weights) -> y. Every form is spelled
// the way a converter or torch.onnx writes it (see kOpFormNames).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace fetafix::testing {

inline constexpr int64_t kFormChannels = 4;

// The forms form_model knows, e.g. "relu", "relu6_clip", "hardswish_paddle", "gelu_tanh".
const std::vector<std::string>& op_form_names();

// The model around form `name` at `opset` (Clip bounds as attributes below 11, as inputs from 11;
// ops that need a newer opset fail the test). `chain` > 1 repeats Conv 1x1 -> form that many times
// (a substitution made on every layer).
onnx::ModelProto form_model(const std::string& name, int64_t opset, int chain = 1);

// The value the k-th form of form_model produces.
std::string form_output(int k = 0);

}  // namespace fetafix::testing
