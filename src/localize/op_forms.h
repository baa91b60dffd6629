// Operator forms: the function a node or a short chain of nodes computes, described independently
// of how a converter or a person spelled it. Relu, Clip(0, inf) and Max(x, 0) are all
// clip(x, 0, inf); x * Clip(x + 3, 0, 6) / 6, Mul(x, HardSigmoid(x)) and HardSwish are all
// hard_swish(1/6, 1/2); torch.onnx's erf chain and ONNX Gelu are gelu(exact). Comparing the
// descriptions of a Source and a Target node tells an operator substitution (ReLU for ReLU6,
// nn.Hardsigmoid for Paddle's hardsigmoid, GELU tanh for erf, a Resize mode) from a mere change
// of spelling. docs/op-forms.md.
//
// Element-wise chains are identified numerically: the chain's single varying input x is the
// only unknown (every other input is a constant), so the chain is evaluated (in double) on a
// fixed grid of x values and the result is matched against each family, whose parameters are
// read off the samples and then verified on every sample. Constants with one value per channel
// (a per-channel ReLU bound) are evaluated channel by channel. Resize/Upsample and
// Softmax/LogSoftmax/Hardmax are described from their attributes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "model/graph.h"

namespace fetafix::localize {

enum class OpFunction {
  kClip,         // clip(x, lo, hi): Relu = clip(0, inf), ReLU6 = clip(0, 6); bounds may be per channel
  kLeakyRelu,    // x if x >= 0 else alpha * x
  kHardSigmoid,  // clip(alpha * x + beta, 0, 1)
  kHardSwish,    // x * clip(alpha * x + beta, 0, 1); ONNX HardSwish is alpha 1/6, beta 1/2
  kSigmoid,      // 1 / (1 + exp(-x))
  kSwish,        // x * sigmoid(beta * x); SiLU is beta 1
  kGelu,         // x * Phi(x); modes["approximation"] "none" (erf) or "tanh"
  kPower,        // x ^ exponent: Pow(x, 2) and Mul(x, x) are both power 2
  kResize,       // modes: mode, coordinate_transformation_mode, nearest_mode; numbers: cubic_coeff_a, ...
  kSoftmax,      // modes["kind"] softmax / log_softmax / hardmax; axes: the reduced axes
};
std::string_view op_function_name(OpFunction f);  // "clip", "hard_swish", ...

struct OpForm {
  OpFunction function = OpFunction::kClip;
  // Parameters with one value, or one per channel (`channel_shape` says how they broadcast).
  std::map<std::string, std::vector<double>> numbers;
  std::map<std::string, std::string> modes;
  // Softmax: the axes the normalisation runs over, non-negative when the rank is known, with
  // axes of size 1 left out (softmax over them changes nothing). rank -1: unknown.
  std::vector<int64_t> axes;
  int64_t rank = -1;
  std::vector<int64_t> channel_shape;  // shape of the per-channel constants, e.g. [1, C, 1, 1]
  std::string input;                   // x: the value the function is applied to
  // x's shape where the view knew it (observed shapes merged); empty when unknown. A rewrite
  // planned later on a model without those shapes still picks a softmax axis by it.
  std::vector<int64_t> input_shape;
  std::string output;                  // the value it produces (the last node's output)
  std::vector<size_t> nodes;           // node indices in the graph, in graph order
  std::vector<std::string> node_names; // the same nodes as name_nodes names them
  std::string spelling;                // how it is written: op types in graph order, e.g. "Add Clip Mul Div"

  // The canonical description, e.g. "clip(x, 0, 6)", "hard_swish(x; alpha 0.1667, beta 0.5)",
  // "clip(x, 0, [per channel, 96 values])".
  std::string describe() const;
};

// What a form does to a tensor: "elementwise" (every activation family), "resize" or "softmax".
// Forms of different kinds are never one function written two ways.
std::string_view op_form_kind(const OpForm& form);

struct OpFormOptions {
  // Relative tolerance when a family's parameters are verified on the samples and when two forms
  // are compared (float32 constants such as 1/6 read back in double differ in the 8th digit).
  double rtol = 1e-5;
  // Nodes a chain may have, Identity not counted (longer chains are not activations).
  size_t max_chain_nodes = 8;
};

// The form producing `value`, trying the longest chain ending there first; nullopt when the
// value is not produced by a recognized form (a Conv output, say). `view` must be built over
// `model.graph()`; shapes merged into it (observed shapes) make Softmax axes comparable.
std::optional<OpForm> recognize_op_form(const onnx::ModelProto& model, const model::GraphView& view,
                                        const std::string& value, const OpFormOptions& options = {});

// Every recognized form of the graph, maximal (a form is not reported again inside a longer one
// that contains it) and in graph order of their last node.
std::vector<OpForm> find_op_forms(const onnx::ModelProto& model, const model::GraphView& view,
                                  const OpFormOptions& options = {});

struct FormComparison {
  bool same_function = false;             // same family and parameters within tolerance
  bool same_spelling = false;             // same op types in the same order
  std::vector<std::string> differences;   // "hi: 6 vs inf", "function: swish vs hard_swish"
  std::string summary() const;            // the differences joined, or "same function"
};
FormComparison compare_op_forms(const OpForm& source, const OpForm& target, const OpFormOptions& options = {});

}  // namespace fetafix::localize
