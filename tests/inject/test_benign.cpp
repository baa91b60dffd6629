// Benign rewrites change the graph but not what it computes (within 1e-4 relative).
#include <gtest/gtest.h>

#include "inject_helpers.h"
#include "match/cnn_fixture.h"
#include "model/graph.h"

namespace fetafix::inject {
namespace {

using testing::must_inject;

int count_ops(const onnx::ModelProto& m, const std::string& op) {
  int n = 0;
  for (const auto& node : m.graph().node()) n += node.op_type() == op;
  return n;
}

std::vector<Tensor> sample_inputs() {
  return {uniform_tensor({1, 3, 32, 32}, 11, 0, 1), random_tensor({1, 3, 32, 32}, 12, 1.0f),
          uniform_tensor({1, 3, 32, 32}, 13, -2, 2)};
}

void expect_same_outputs(const onnx::ModelProto& original, const onnx::ModelProto& rewritten, const std::string& label,
                         bool nhwc_input = false) {
  for (const auto& x : sample_inputs()) {
    const auto a = testing::run_model(original, x);
    const auto b = testing::run_model(rewritten, nhwc_input ? testing::nchw_to_nhwc(x) : x);
    ASSERT_EQ(a.size(), 1u) << label;
    ASSERT_EQ(b.size(), 1u) << label;
    testing::expect_close(a[0], b[0], 1e-4, label);
  }
}

TEST(InjectBenign, FoldBatchNormIntoConv) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"benign:fold-bn"});
  EXPECT_EQ(count_ops(original, "BatchNormalization"), 4);
  EXPECT_EQ(count_ops(r.model, "BatchNormalization"), 0);
  const auto diff = diff_models(original, r.model);
  EXPECT_TRUE(std::count(diff.begin(), diff.end(), "node-removed conv1_bn"));
  EXPECT_TRUE(std::count(diff.begin(), diff.end(), "weight-removed conv1_gamma"));
  expect_same_outputs(original, r.model, "fold-bn");
}

TEST(InjectBenign, BatchNormAsMulAdd) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"benign:bn-as-mul-add"});
  EXPECT_EQ(count_ops(r.model, "BatchNormalization"), 0);
  EXPECT_EQ(count_ops(r.model, "Mul"), 4);
  expect_same_outputs(original, r.model, "bn-as-mul-add");
}

TEST(InjectBenign, WeightsAsConstants) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"benign:weights-as-constants"});
  EXPECT_EQ(r.model.graph().initializer_size(), 0);
  EXPECT_EQ(count_ops(r.model, "Constant"), original.graph().initializer_size());
  expect_same_outputs(original, r.model, "weights-as-constants");
}

TEST(InjectBenign, ConvPadsToPadNodeAndBack) {
  const auto original = fetafix::testing::build_cnn();
  const auto split = must_inject(original, {"benign:conv-pads-to-pad-node"});
  EXPECT_EQ(count_ops(split.model, "Pad"), 5);
  expect_same_outputs(original, split.model, "conv-pads-to-pad-node");
  const auto merged = must_inject(split.model, {"benign:pad-into-conv"});
  EXPECT_EQ(count_ops(merged.model, "Pad"), 0);
  expect_same_outputs(original, merged.model, "pad-into-conv");
  // The tf2onnx form (explicit Pad nodes from the fixture) merges the same way.
  fetafix::testing::CnnOptions noops;
  noops.insert_noops = true;
  const auto tf_form = fetafix::testing::build_cnn(noops);
  const auto r = must_inject(tf_form, {"benign:pad-into-conv"});
  EXPECT_EQ(count_ops(r.model, "Pad"), 0);
  expect_same_outputs(tf_form, r.model, "pad-into-conv tf form");
}

TEST(InjectBenign, NhwcInputWithTheRightTranspose) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"benign:nhwc"});
  EXPECT_EQ(r.ground_truth["injections"][0]["details"]["new_shape"], nlohmann::json::array({1, 32, 32, 3}));
  expect_same_outputs(original, r.model, "nhwc", /*nhwc_input=*/true);
}

TEST(InjectBenign, RedundantTransposePairComputesTheSame) {
  const auto original = fetafix::testing::build_cnn();
  const auto r = must_inject(original, {"cg:transpose-pair:node=all"});
  EXPECT_EQ(count_ops(r.model, "Transpose"), 16);
  expect_same_outputs(original, r.model, "transpose-pair");
}

TEST(InjectBenign, OnnxRuntimeOptimizedModel) {
  const auto original = fetafix::testing::build_cnn();
  auto r = inject(original, testing::specs_of({"benign:ort-optimized"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->ground_truth["replayable"].get<bool>());
  EXPECT_EQ(count_ops(r->model, "BatchNormalization"), 0);  // fused into the Convs
  expect_same_outputs(original, r->model, "ort-optimized");
  auto again = inject(original, testing::specs_of({"benign:ort-optimized"}));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(model::serialize_model(r->model), model::serialize_model(again->model));
  auto mixed = inject(original, testing::specs_of({"wb:fp16", "benign:ort-optimized"}));
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message.find("must be the only fault"), std::string::npos);
}

TEST(InjectBenign, OpsetUpgradeThroughTheVersionConverter) {
  const auto original = fetafix::testing::build_cnn();
  auto r = inject(original, testing::specs_of({"benign:opset=17"}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  int64_t opset = 0;
  for (const auto& o : r->model.opset_import())
    if (o.domain().empty()) opset = o.version();
  EXPECT_EQ(opset, 17);
  expect_same_outputs(original, r->model, "opset 17");
  auto same = inject(original, testing::specs_of({"benign:opset=13"}));
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message.find("already opset 13"), std::string::npos);
}

}  // namespace
}  // namespace fetafix::inject
