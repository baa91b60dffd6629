// Internal to src/repair: a scratch copy of the Target on which planned edits are applied as
// they are chosen, so each edit is validated and later edits see the names earlier ones made.
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "common/tensor.h"
#include "model/edit.h"

namespace fetafix::repair::detail {

class Plan {
 public:
  Plan(const onnx::ModelProto& target, std::string label) : scratch_(target), log_(scratch_), label_(std::move(label)) {}
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // Applies the edit to the scratch copy and keeps it; the error names the finding.
  Status add(model::Edit edit);
  // Applies and keeps it when it applies; false (nothing kept) otherwise.
  bool try_add(model::Edit edit);
  const onnx::ModelProto& model() const { return scratch_; }
  const std::vector<model::Edit>& edits() const { return log_.edits(); }
  const std::string& label() const { return label_; }

  // Names not yet used in the scratch model: `base`, else base_2, base_3, ...
  std::string unique_value_name(const std::string& base) const;
  std::string unique_node_name(const std::string& base) const;
  // Current (possibly synthesized) name of the node producing `value`; "" when none does.
  std::string producer_name(const std::string& value) const;
  // Current index of the node producing `value`; -1 when none does.
  int producer_index(const std::string& value) const;

  // Inserts Transpose(perm) right before node `node_name` on its input `input_index` and
  // points that input at the Transpose's output.
  Status insert_transpose_before(const std::string& node_name, int input_index, const std::vector<int64_t>& perm);

 private:
  onnx::ModelProto scratch_;
  model::EditLog log_;
  std::string label_;
};

// Converts float values to a float dtype (float32, float16, bfloat16, float64; round to
// nearest even). Other dtypes are an error.
Result<Tensor> floats_as(const std::vector<float>& values, const std::vector<int64_t>& shape, DType dtype);
bool is_float_dtype(DType dtype);

}  // namespace fetafix::repair::detail
