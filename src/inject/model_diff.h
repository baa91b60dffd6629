// What differs between two models, as sorted one-line entries: how tests (and users) check that
// an injection changed exactly what its ground truth says.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace fetafix::inject {

// Entries, sorted, each "<kind> <subject>":
//   node-added N, node-removed N, node-op N, node-inputs N, node-outputs N (nodes matched by the
//   names of model::name_nodes), attribute-added N.A, attribute-removed N.A, attribute-changed N.A
//   (a Constant's value attribute is left to the weight entries), weight-added V, weight-removed V,
//   weight-changed V (initializers and Constant outputs, by value name; contents, dtype or shape),
//   input-added X, input-removed X, input-changed X, output-added Y, output-removed Y,
//   output-changed Y, outputs-reordered, opset-changed, ir-version-changed.
std::vector<std::string> diff_models(const onnx::ModelProto& before, const onnx::ModelProto& after);

}  // namespace fetafix::inject
