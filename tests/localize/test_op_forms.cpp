// Operator forms: what function each spelling computes, which spellings are the same function,
// and which pairs are substitutions (data-driven: one row per form or pair).
#include <gtest/gtest.h>

#include "localize/op_forms.h"
#include "support/op_form_models.h"

namespace fetafix::localize {
namespace {

using fetafix::testing::form_model;
using fetafix::testing::form_output;

std::optional<OpForm> form_of(const onnx::ModelProto& m, int k = 0) {
  auto view = model::GraphView::build(m.graph());
  EXPECT_TRUE(view.ok());
  return recognize_op_form(m, *view, form_output(k));
}

struct Recognized {
  const char* form;
  int64_t opset;
  const char* description;
  size_t nodes;
};

TEST(OpForms, EachSpellingIsDescribedByItsFunction) {
  const Recognized rows[] = {
      {"relu", 13, "clip(x, 0, inf)", 1},
      {"relu6_clip", 9, "clip(x, 0, 6)", 1},
      {"relu6_clip", 13, "clip(x, 0, 6)", 1},
      {"relu6_clip_constants", 13, "clip(x, 0, 6)", 1},
      {"clip_min_only", 13, "clip(x, 0, inf)", 1},
      {"relu6_minmax", 13, "clip(x, 0, 6)", 2},
      {"relu_min6", 13, "clip(x, 0, 6)", 2},
      {"clip_per_channel", 13, "clip(x, 0, [per channel: 4 values, 0..6])", 3},
      {"leaky_0.01", 13, "leaky_relu(x; alpha 0.01)", 1},
      {"hardsigmoid_paddle", 13, "hard_sigmoid(x; alpha 0.2, beta 0.5)", 1},
      {"hardsigmoid_torch", 13, "hard_sigmoid(x; alpha 0.166667, beta 0.5)", 1},
      {"hardsigmoid_clamp", 13, "hard_sigmoid(x; alpha 0.2, beta 0.5)", 3},
      {"hardswish_op", 14, "hard_swish(x; alpha 0.166667, beta 0.5)", 1},
      {"hardswish_mul_hardsigmoid", 13, "hard_swish(x; alpha 0.166667, beta 0.5)", 2},
      {"hardswish_paddle", 9, "hard_swish(x; alpha 0.166667, beta 0.5)", 4},
      {"sigmoid", 13, "sigmoid(x)", 1},
      {"swish", 13, "swish(x; beta 1)", 2},
      {"swish_1.702", 13, "swish(x; beta 1.702)", 3},
      {"gelu_erf", 13, "gelu(x; approximation none)", 5},
      {"gelu_tanh", 13, "gelu(x; approximation tanh)", 8},
      {"gelu_op", 20, "gelu(x; approximation none)", 1},
      {"square_pow", 13, "power(x, 2)", 1},
      {"square_mul", 13, "power(x, 2)", 1},
      {"resize_linear_align_corners", 13, "resize(x; mode linear, coordinates align_corners, nearest round_prefer_floor)", 1},
      {"resize_nearest_asymmetric", 13, "resize(x; mode nearest, coordinates asymmetric, nearest floor)", 1},
      {"softmax_channels", 13, "softmax(x; axes [1])", 1},
      {"softmax_channels", 11, "softmax(x; axes [1,2,3])", 1},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::string(r.form) + " at opset " + std::to_string(r.opset));
    auto form = form_of(form_model(r.form, r.opset));
    ASSERT_TRUE(form.has_value());
    EXPECT_EQ(form->describe(), r.description);
    EXPECT_EQ(form->nodes.size(), r.nodes) << form->spelling;
    EXPECT_EQ(form->input, "x");
    EXPECT_EQ(form->output, form_output());
  }
}

struct Pair {
  const char* source;
  int64_t source_opset;
  const char* target;
  int64_t target_opset;
  const char* difference;  // "" = the same function
};

const Pair kPairs[] = {
    // Spellings of one function.
    {"relu", 13, "clip_min_only", 13, ""},
    {"relu6_clip", 9, "relu6_minmax", 13, ""},
    {"relu6_clip_constants", 13, "relu_min6", 13, ""},
    {"hardsigmoid_paddle", 9, "hardsigmoid_clamp", 13, ""},
    {"hardswish_paddle", 9, "hardswish_op", 14, ""},
    {"hardswish_op", 14, "hardswish_mul_hardsigmoid", 11, ""},
    {"square_pow", 13, "square_mul", 13, ""},
    {"gelu_op", 20, "gelu_erf", 13, ""},
    {"resize_linear_half_pixel", 13, "resize_linear_pytorch_half_pixel", 13, ""},
    // Substitutions.
    {"relu6_clip", 13, "relu", 13, "hi: 6 vs inf"},
    {"clip_per_channel", 13, "relu", 13, "hi: [per channel: 4 values, 0..6] vs inf"},
    {"hardsigmoid_paddle", 9, "hardsigmoid_torch", 13, "alpha: 0.2 vs 0.166667"},
    {"hardswish_paddle", 9, "swish", 13, "function: hard_swish vs swish"},
    {"swish", 13, "swish_1.702", 13, "beta: 1 vs 1.702"},
    {"gelu_erf", 13, "gelu_tanh", 13, "approximation: none vs tanh"},
    {"leaky_0.3", 13, "leaky_0.01", 13, "alpha: 0.3 vs 0.01"},
    {"square_mul", 13, "cube_pow", 13, "exponent: 2 vs 3"},
    {"resize_linear_half_pixel", 13, "resize_linear_align_corners", 13,
     "coordinate_transformation_mode: half_pixel vs align_corners"},
    {"softmax_channels", 13, "softmax_last", 13, "reduced dims: [4] (axes [1]) vs [5] (axes [3])"},
    {"softmax_channels", 13, "softmax_channels", 11, "reduced dims: [4] (axes [1]) vs [4,5,5] (axes [1,2,3])"},
};

TEST(OpForms, SpellingsOfOneFunctionAgreeAndSubstitutionsDiffer) {
  for (const auto& p : kPairs) {
    SCOPED_TRACE(std::string(p.source) + " vs " + p.target);
    auto s = form_of(form_model(p.source, p.source_opset));
    auto t = form_of(form_model(p.target, p.target_opset));
    ASSERT_TRUE(s && t);
    const auto c = compare_op_forms(*s, *t);
    EXPECT_EQ(c.same_function, std::string(p.difference).empty()) << c.summary();
    if (!std::string(p.difference).empty()) {
      EXPECT_EQ(c.summary(), p.difference);
    }
  }
}

TEST(OpForms, NonActivationsAreNotForms) {
  auto m = form_model("relu", 13);
  auto view = model::GraphView::build(m.graph());
  ASSERT_TRUE(view.ok());
  EXPECT_FALSE(recognize_op_form(m, *view, "y").has_value());  // a Conv output
  EXPECT_FALSE(recognize_op_form(m, *view, "x").has_value());  // a graph input
}

TEST(OpForms, FindOpFormsListsEachLongestFormOnce) {
  auto m = form_model("hardswish_paddle", 13, 3);
  auto view = model::GraphView::build(m.graph());
  ASSERT_TRUE(view.ok());
  const auto forms = find_op_forms(m, *view);
  ASSERT_EQ(forms.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(forms[static_cast<size_t>(k)].output, form_output(k));
    EXPECT_EQ(forms[static_cast<size_t>(k)].spelling, "Add Clip Mul Div");
    EXPECT_EQ(forms[static_cast<size_t>(k)].input, k == 0 ? "x" : "c" + std::to_string(k - 1));
  }
}

}  // namespace
}  // namespace fetafix::localize
