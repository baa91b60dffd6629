// Rewriting an operator substitution in place: after the planned edits the Target computes the
// Source's outputs (checked in ONNX Runtime), the edits replay byte for byte, and parameters
// the Target's own op can carry are set on it rather than replacing it.
#include <gtest/gtest.h>

#include <cmath>

#include "localize/layer_checks.h"
#include "model/attributes.h"
#include "model/builder.h"
#include "model/edit.h"
#include "model/model.h"
#include "repair/op_rewrite.h"
#include "runtime/session.h"
#include "support/op_form_models.h"

namespace fetafix::repair {
namespace {

using fetafix::testing::form_model;
using fetafix::testing::form_output;

// The form feeding conv<k> (after a rewrite it produces another value than form_output(k)).
localize::OpForm form_of(const onnx::ModelProto& m, int k = 0) {
  auto view = model::GraphView::build(m.graph());
  EXPECT_TRUE(view.ok());
  auto conv = view->find_node("conv" + std::to_string(k));
  EXPECT_TRUE(conv.has_value());
  auto f = localize::recognize_op_form(m, *view, view->node(*conv).input(0));
  EXPECT_TRUE(f.has_value());
  return f.value_or(localize::OpForm{});
}

std::vector<float> run(const onnx::ModelProto& m) {
  auto session = runtime::Session::create(m, {});
  EXPECT_TRUE(session.ok()) << session.error().message;
  if (!session.ok()) return {};
  // Values over [-8, 8] so every bound and bend of the forms is crossed.
  auto out = (*session)->run({uniform_tensor({1, testing::kFormChannels, 5, 5}, 11, -8.0f, 8.0f)});
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? (*out)[0].to_float() : std::vector<float>{};
}

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

// Rewrites every form of `target` to the matching form of `source`; checks outputs and replay.
OpRewritePlan rewrite_and_check(const onnx::ModelProto& source, const onnx::ModelProto& target, int forms = 1) {
  std::vector<OpRewriteRequest> requests;
  for (int k = 0; k < forms; ++k) requests.push_back({form_output(k), form_of(source, k)});
  auto plan = plan_op_rewrites(target, requests);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  if (!plan.ok()) return {};
  onnx::ModelProto repaired = target;
  model::EditLog log(repaired);
  EXPECT_TRUE(log.apply_all(plan->edits).ok());
  const auto expected = run(source);
  EXPECT_GT(max_difference(run(target), expected), 1e-4) << "the substitution changes nothing here";
  EXPECT_LT(max_difference(run(repaired), expected), 1e-5);
  for (int k = 0; k < forms; ++k)
    EXPECT_TRUE(localize::compare_op_forms(form_of(source, k), form_of(repaired, k)).same_function);
  onnx::ModelProto replayed = target;
  EXPECT_TRUE(model::replay(model::edits_to_json(plan->edits), replayed).ok());
  EXPECT_EQ(model::serialize_model(replayed), model::serialize_model(repaired));
  return *plan;
}

struct Case {
  const char* source;
  int64_t source_opset;
  const char* target;
  int64_t target_opset;
  bool in_place;  // only the Target op's parameters change (no node inserted or removed)
};

TEST(OpRewrite, TargetComputesTheSourceFunctionAfterTheRewrite) {
  const Case cases[] = {
      {"relu6_clip", 13, "relu", 13, false},                       // ReLU for ReLU6 (torch.onnx)
      {"relu6_clip", 9, "relu", 9, false},                         // the same below opset 11 (attributes)
      {"relu", 13, "relu6_clip_constants", 13, true},              // Clip max dropped in place
      {"relu", 9, "relu6_clip", 9, true},
      {"clip_per_channel", 13, "relu", 13, false},                 // Keras' per-channel bound
      {"hardsigmoid_paddle", 9, "hardsigmoid_torch", 13, true},    // nn.Hardsigmoid for Paddle's
      {"hardsigmoid_torch", 13, "hardsigmoid_clamp", 13, false},
      {"hardswish_paddle", 9, "swish", 13, false},                 // Swish for hard-swish
      {"swish", 13, "hardswish_op", 14, false},
      {"swish_1.702", 13, "swish", 13, false},
      {"gelu_erf", 13, "gelu_tanh", 13, false},                    // GELU tanh for erf
      {"gelu_tanh", 13, "gelu_erf", 13, false},
      {"leaky_0.3", 13, "leaky_0.01", 13, true},                   // Keras' LeakyReLU slope
      {"square_mul", 13, "cube_pow", 13, false},
      {"resize_linear_half_pixel", 13, "resize_linear_align_corners", 13, true},
      {"softmax_channels", 13, "softmax_last", 13, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.source) + " <- " + c.target);
    const auto target = form_model(c.target, c.target_opset);
    const auto plan = rewrite_and_check(form_model(c.source, c.source_opset), target);
    ASSERT_EQ(plan.descriptions.size(), 1u);
    EXPECT_NE(plan.descriptions[0].find(c.in_place ? "in place" : "form replaced"), std::string::npos)
        << plan.descriptions[0];
    const bool inserts = std::any_of(plan.edits.begin(), plan.edits.end(),
                                     [](const model::Edit& e) { return e.kind == model::EditKind::kInsertNode; });
    EXPECT_EQ(inserts, !c.in_place);
  }
}

TEST(OpRewrite, OneSubstitutionOnEveryLayerIsOnePlan) {
  const auto source = form_model("relu6_clip", 13, 3), target = form_model("relu", 13, 3);
  const auto plan = rewrite_and_check(source, target, 3);
  EXPECT_EQ(plan.descriptions.size(), 3u);
  // Each Relu becomes a Clip reading the same input, its reader repointed, the Relu removed.
  size_t removed = 0;
  for (const auto& e : plan.edits) removed += e.kind == model::EditKind::kRemoveNode;
  EXPECT_EQ(removed, 3u);
}

TEST(OpRewrite, SameFunctionNeedsNoEdit) {
  const auto plan = plan_op_rewrites(form_model("relu6_minmax", 13), {{form_output(), form_of(form_model("relu6_clip", 9))}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->edits.empty());
  EXPECT_NE(plan->descriptions[0].find("already the same function"), std::string::npos);
}

TEST(OpRewrite, RefusesWhatCannotBeWrittenInPlace) {
  // No form at a Conv output.
  auto none = plan_op_rewrites(form_model("relu", 13), {{"y", form_of(form_model("relu6_clip", 13))}});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no recognized operator form"), std::string::npos) << none.error().message;

  // A form whose output is a graph output cannot have its readers repointed.
  GraphBuilder g("out", 13);
  g.input("x", DType::kFloat32, {1, 4});
  g.node("Relu", "relu", {"x"}, {}, "act0");
  g.output("act0", DType::kFloat32, {1, 4});
  auto output = plan_op_rewrites(g.build(), {{"act0", form_of(form_model("relu6_clip", 13))}});
  ASSERT_FALSE(output.ok());
  EXPECT_NE(output.error().message.find("graph output"), std::string::npos) << output.error().message;

  // A softmax over the channels alone cannot be written at opset 11 on NCHW (every axis from
  // `axis` on is reduced there).
  auto coerced = plan_op_rewrites(form_model("softmax_channels", 11),
                                  {{form_output(), form_of(form_model("softmax_channels", 13))}});
  ASSERT_FALSE(coerced.ok());
  EXPECT_NE(coerced.error().message.find("no axis"), std::string::npos) << coerced.error().message;

  // Resize at opset 10 has no coordinate transformation mode to set.
  auto legacy = plan_op_rewrites(form_model("resize_nearest_asymmetric", 10),
                                 {{form_output(), form_of(form_model("resize_linear_align_corners", 13))}});
  ASSERT_FALSE(legacy.ok());
  EXPECT_NE(legacy.error().message.find("cannot be written at opset 10"), std::string::npos) << legacy.error().message;
}

// A Keras-style head: the classifier kept 4-D ([N, C, 1, 1]) and a softmax over its last axis
// (size 1: every probability is 1), where the Source flattens first. The input's dims are only
// known at run time.
onnx::ModelProto softmax_head(bool flatten_first) {
  GraphBuilder b("head", 13);
  std::string x = b.input("x", DType::kFloat32, {-1, -1, -1, -1});
  if (flatten_first) {
    x = b.node("Flatten", "flatten", {x});
    b.node("Softmax", "softmax", {x}, {Attr::i("axis", -1)}, "y");
  } else {
    x = b.node("Softmax", "softmax", {x}, {Attr::i("axis", -1)});
    b.node("Flatten", "flatten", {x}, {}, "y");
  }
  b.output("y", DType::kFloat32, {-1, -1});
  return b.build();
}

TEST(OpRewrite, LoneSoftmaxOverASizeOneAxisGetsTheSourcesAxisByObservedShape) {
  const auto source = softmax_head(true), target = softmax_head(false);
  localize::LayerCheckOptions o;
  o.source_shapes = {{"x", {2, 5, 1, 1}}, {"flatten_out", {2, 5}}, {"y", {2, 5}}};
  o.target_shapes = {{"x", {2, 5, 1, 1}}, {"softmax_out", {2, 5, 1, 1}}, {"y", {2, 5}}};
  auto findings = localize::check_operator_forms(source, target, {}, o);  // no layer matched
  ASSERT_TRUE(findings.ok()) << findings.error().message;
  ASSERT_EQ(findings->size(), 1u);
  const auto& e = std::get<localize::OperatorFormEvidence>((*findings)[0].evidence);
  EXPECT_EQ((*findings)[0].target_node, "softmax");
  EXPECT_EQ(e.target_form.input_shape, (std::vector<int64_t>{2, 5, 1, 1}));
  // Without the observed shape the axis cannot be chosen; with it, axis 1 (the 5 classes).
  EXPECT_FALSE(plan_op_rewrites(target, {{e.target_form.output, e.source_form}}).ok());
  auto plan = plan_op_rewrites(target, {{e.target_form.output, e.source_form, e.target_form.input_shape}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  onnx::ModelProto repaired = target;
  model::EditLog log(repaired);
  ASSERT_TRUE(log.apply_all(plan->edits).ok());
  const auto axis = model::get_int_or(repaired.graph().node(0), "axis", 0);
  ASSERT_TRUE(axis.ok());
  EXPECT_EQ(*axis, 1);
  const Tensor x = uniform_tensor({2, 5, 1, 1}, 3, -4.0f, 4.0f);
  auto outputs = [&](const onnx::ModelProto& m) {
    auto session = runtime::Session::create(m, {});
    EXPECT_TRUE(session.ok()) << session.error().message;
    auto out = (*session)->run({x});
    EXPECT_TRUE(out.ok());
    return out.ok() ? (*out)[0].to_float() : std::vector<float>{};
  };
  EXPECT_LT(max_difference(outputs(repaired), outputs(source)), 1e-6);
  EXPECT_GT(max_difference(outputs(target), outputs(source)), 0.1);
}

}  // namespace
}  // namespace fetafix::repair
