// validate_written_model: what apply, repair and inject check before renaming a model into place.
#include <gtest/gtest.h>

#include "model/builder.h"
#include "runtime/validate.h"

namespace fetafix::runtime {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

onnx::ModelProto conv_model(std::vector<int64_t> pads) {
  GraphBuilder g("conv", 13);
  g.input("x", DType::kFloat32, {1, 3, 8, 8});
  g.initializer("w", random_tensor({4, 3, 3, 3}, 5));
  g.node("Conv", "conv", {"x", "w"}, {Attr::ints("pads", std::move(pads))}, "y");
  g.output("y", DType::kFloat32, {1, 4, 8, 8});
  return g.build();
}

TEST(ValidateWrittenModel, AValidModelPasses) {
  const auto m = conv_model({1, 1, 1, 1});
  auto r = validate_written_model(m, &m, "out.onnx");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
}

TEST(ValidateWrittenModel, FivePadsOnATwoDimensionalConvAreRefused) {
  const auto original = conv_model({1, 1, 1, 1});
  const auto written = conv_model({1, 1, 1, 1, 1});
  auto r = validate_written_model(written, &original, "out.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "out.onnx")) << r.error().message;
}

TEST(ValidateWrittenModel, AnAttributeOfTheWrongTypeIsRefused) {
  const auto original = conv_model({1, 1, 1, 1});
  auto written = original;
  auto* pads = written.mutable_graph()->mutable_node(0)->mutable_attribute(0);
  pads->set_type(onnx::AttributeProto::FLOAT);  // still carrying ints
  EXPECT_FALSE(validate_written_model(written, &original, "out.onnx").ok());
}

TEST(ValidateWrittenModel, AWeightOfTheWrongShapeIsRefused) {
  const auto original = conv_model({1, 1, 1, 1});
  auto written = original;
  auto* w = written.mutable_graph()->mutable_initializer(0);
  w->clear_dims();
  w->add_dims(4);
  w->add_dims(81);
  auto r = validate_written_model(written, &original, "out.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "ONNX Runtime cannot load")) << r.error().message;
}

// Nodes out of topological order: ONNX's checker rejects them, ONNX Runtime sorts them itself
// (some converters write such models).
onnx::ModelProto unsorted_model() {
  GraphBuilder g("unsorted", 13);
  g.input("x", DType::kFloat32, {1, 4});
  g.node("Relu", "first", {"x"}, {}, "a");
  g.node("Neg", "second", {"a"}, {}, "y");
  g.output("y", DType::kFloat32, {1, 4});
  auto m = g.build();
  m.mutable_graph()->mutable_node()->SwapElements(0, 1);
  return m;
}

TEST(ValidateWrittenModel, ACheckerComplaintTheInputAlreadyHadIsOnlyAWarning) {
  const auto original = unsorted_model();
  auto written = original;
  written.mutable_graph()->mutable_node(0)->set_doc_string("edited");
  auto r = validate_written_model(written, &original, "out.onnx");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(contains((*r)[0], "checker")) << (*r)[0];
}

TEST(ValidateWrittenModel, ACheckerComplaintTheEditIntroducedIsAnError) {
  GraphBuilder g("sorted", 13);
  g.input("x", DType::kFloat32, {1, 4});
  g.node("Relu", "first", {"x"}, {}, "a");
  g.node("Neg", "second", {"a"}, {}, "y");
  g.output("y", DType::kFloat32, {1, 4});
  const auto original = g.build();
  auto r = validate_written_model(unsorted_model(), &original, "out.onnx");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "ONNX's checker rejects")) << r.error().message;
}

}  // namespace
}  // namespace fetafix::runtime
