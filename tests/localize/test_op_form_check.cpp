// The LH op_form check (checks/lh_op_forms.cpp): the form after each matched layer compared as a
// function. A substitution on every layer is one finding per layer; another spelling of the same
// function, or a Clip bound the attribute check compares, is none.
#include <gtest/gtest.h>

#include "localize/layer_checks.h"
#include "support/op_form_models.h"

namespace fetafix::localize {
namespace {

using fetafix::testing::form_model;

// form_model(name, opset, 3): x -> form -> conv0 -> form -> conv1 -> form -> conv2 -> y. The
// forms after conv0 and conv1 follow a matched layer (the first reads the graph input).
std::vector<Finding> op_form_findings(const std::string& source, int64_t source_opset, const std::string& target,
                                      int64_t target_opset) {
  const auto s = form_model(source, source_opset, 3);
  const auto t = form_model(target, target_opset, 3);
  std::vector<match::NodeMatch> pairs;
  for (const char* conv : {"conv0", "conv1", "conv2"}) pairs.push_back({.source_node = conv, .target_node = conv});
  auto findings = check_operator_forms(s, t, pairs);
  EXPECT_TRUE(findings.ok()) << findings.error().message;
  return findings.ok() ? *findings : std::vector<Finding>{};
}

TEST(OperatorFormCheck, ReluForRelu6IsOneLhFindingPerLayer) {
  const auto findings = op_form_findings("relu6_minmax", 13, "relu", 13);
  ASSERT_EQ(findings.size(), 2u);
  for (const auto& f : findings) {
    EXPECT_EQ(f.type(), FaultType::kLH);
    EXPECT_EQ(f.check(), "op_form");
    const auto& e = std::get<OperatorFormEvidence>(f.evidence);
    EXPECT_EQ(e.source_form.describe(), "clip(x, 0, 6)");
    EXPECT_EQ(e.target_form.describe(), "clip(x, 0, inf)");
    EXPECT_EQ(e.differences, std::vector<std::string>{"hi: 6 vs inf"});
    EXPECT_EQ(e.regions.target.ops, std::vector<std::string>{"Relu"});
    EXPECT_EQ(e.regions.source.ops.size(), 2u);  // Max, Min
    EXPECT_EQ(f.target_node, e.target_form.node_names.back());
    EXPECT_EQ(evidence_json(f)["check"], "op_form");
  }
  EXPECT_EQ(std::get<OperatorFormEvidence>(findings[0].evidence).core_target_node, "conv0");
}

TEST(OperatorFormCheck, ParametersOfOneOpAndFamiliesDiffer) {
  // nn.Hardsigmoid for Paddle's hardsigmoid: one op on both sides, its alpha differs.
  auto findings = op_form_findings("hardsigmoid_paddle", 13, "hardsigmoid_torch", 13);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_NE(findings[0].summary.find("alpha"), std::string::npos) << findings[0].summary;
  // SiLU for hard-swish: another family.
  findings = op_form_findings("hardswish_paddle", 13, "swish", 13);
  ASSERT_EQ(findings.size(), 2u);
  EXPECT_NE(findings[0].summary.find("function: hard_swish vs swish"), std::string::npos) << findings[0].summary;
}

TEST(OperatorFormCheck, SpellingsOfOneFunctionAndAttributeDifferencesAreNoFinding) {
  EXPECT_TRUE(op_form_findings("hardswish_op", 14, "hardswish_mul_hardsigmoid", 13).empty());
  EXPECT_TRUE(op_form_findings("relu6_clip", 13, "relu_min6", 13).empty());
  EXPECT_TRUE(op_form_findings("gelu_erf", 13, "gelu_erf", 13).empty());
  // Clip vs Clip without max: the attribute check's (hyperparameters "max"), not reported twice.
  EXPECT_TRUE(op_form_findings("relu6_clip", 13, "clip_min_only", 13).empty());
}

}  // namespace
}  // namespace fetafix::localize
