// check_model_structure (every load) and check_input_sizes (the tensor limit): what a hostile
// or broken model file may declare is refused with a message naming it, before any analysis.
#include <gtest/gtest.h>

#include "model/builder.h"
#include "model/model.h"
#include "support/assets.h"

namespace fetafix::model {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

onnx::ModelProto relu_model(std::vector<int64_t> input_shape) {
  GraphBuilder g("relu", 13);
  g.input("x", DType::kFloat32, input_shape);
  g.node("Relu", "relu", {"x"}, {}, "y");
  g.output("y", DType::kFloat32, input_shape);
  return g.build();
}

Result<Model> reparse(const onnx::ModelProto& m) { return parse_model(serialize_model(m), "m.onnx"); }

TEST(ModelChecks, MinusOneMeansUnknownButOtherNegativeDimsAreRefused) {
  EXPECT_TRUE(reparse(relu_model({-1, 3, 8, 8})).ok());
  auto m = relu_model({1, 3, 8, 8});
  m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(-5);
  auto r = reparse(m);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "m.onnx")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "'x'")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "-5")) << r.error().message;
}

TEST(ModelChecks, ACycleIsRefusedAtLoadNamingANodeOnIt) {
  GraphBuilder g("cyclic", 13);
  g.input("x", DType::kFloat32, {1, 4});
  g.node("Add", "a", {"x", "b_out"}, {}, "a_out");
  g.node("Relu", "b", {"a_out"}, {}, "b_out");
  g.output("b_out", DType::kFloat32, {1, 4});
  auto r = reparse(g.build());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "cycle")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "m.onnx")) << r.error().message;
}

TEST(ModelChecks, InitializersMustHoldWhatTheirDimsSay) {
  auto m = relu_model({1, 4});
  auto* w = m.mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(2);
  w->add_dims(3);
  w->set_raw_data(std::string(20, '\0'));  // 6 floats need 24 bytes
  auto short_data = reparse(m);
  ASSERT_FALSE(short_data.ok());
  EXPECT_TRUE(contains(short_data.error().message, "'w'")) << short_data.error().message;

  w->set_raw_data(std::string(24, '\0'));
  EXPECT_TRUE(reparse(m).ok());

  w->clear_raw_data();
  for (int i = 0; i < 5; ++i) w->add_float_data(1.0f);
  EXPECT_FALSE(reparse(m).ok());  // 5 typed values for 6 elements

  w->clear_float_data();
  w->clear_dims();
  for (int64_t d : {int64_t{1} << 40, int64_t{1} << 40}) w->add_dims(d);  // 2^80 elements
  auto overflow = reparse(m);
  ASSERT_FALSE(overflow.ok());
  EXPECT_TRUE(contains(overflow.error().message, "64 bits")) << overflow.error().message;

  w->set_dims(0, -3);
  EXPECT_FALSE(reparse(m).ok());
}

TEST(ModelChecks, InputsOverTheTensorLimitAreRefusedNamingTheShape) {
  constexpr uint64_t kLimit = uint64_t{4} << 30;
  EXPECT_TRUE(check_input_sizes(relu_model({-1, 3, 224, 224}), "m.onnx", kLimit).ok());
  auto huge_image = check_input_sizes(relu_model({-1, 3, 1000000, 1000000}), "m.onnx", kLimit);
  ASSERT_FALSE(huge_image.ok());
  EXPECT_TRUE(contains(huge_image.error().message, "m.onnx: input 'x'")) << huge_image.error().message;
  EXPECT_TRUE(contains(huge_image.error().message, "[?,3,1000000,1000000]")) << huge_image.error().message;
  EXPECT_TRUE(contains(huge_image.error().message, "tensor limit")) << huge_image.error().message;
  EXPECT_FALSE(check_input_sizes(relu_model({1000000, 3, 224, 224}), "m.onnx", kLimit).ok());  // a fixed batch of 1e6
  EXPECT_FALSE(check_input_sizes(relu_model({1, 3, 224, 224}), "m.onnx", 1000).ok());
}

}  // namespace
}  // namespace fetafix::model
