#include <gtest/gtest.h>

#include "layer_fixtures.h"
#include "localize/equivalence.h"
#include "localize/layer_checks.h"
#include "model/attributes.h"

namespace fetafix::localize {
namespace {

using testing::layer::CnnSpec;
using testing::layer::CnnWeights;
using testing::layer::cnn_pairs;
using testing::layer::node_named;
using testing::layer::small_cnn;

Tensor probe() { return random_tensor({2, 3, 8, 8}, 99); }

// The Source CNN's BatchNormalization as Mul + Add in the Target: one CG finding with regions.
CnnSpec mul_add_spec() {
  CnnSpec spec;
  spec.bn = CnnSpec::Bn::kMulAdd;
  return spec;
}

std::vector<Finding> mul_add_graph_findings() {
  auto cg = check_graph(small_cnn(), small_cnn(mul_add_spec()), cnn_pairs());
  EXPECT_TRUE(cg.ok());
  EXPECT_EQ(cg.ok() ? cg->size() : 0u, 1u);
  return cg.ok() ? *cg : std::vector<Finding>{};
}


// LH and CG findings of the pair of models, filtered.
std::vector<Finding> filtered(const onnx::ModelProto& s, const onnx::ModelProto& t,
                              const std::vector<match::NodeMatch>& pairs = cnn_pairs()) {
  std::vector<Finding> all;
  auto lh = check_hyperparameters(s, t, pairs);
  auto cg = check_graph(s, t, pairs);
  EXPECT_TRUE(lh.ok() && cg.ok());
  if (lh.ok()) all.insert(all.end(), lh->begin(), lh->end());
  if (cg.ok()) all.insert(all.end(), cg->begin(), cg->end());
  auto st = filter_equivalent(s, t, all, probe(), probe());
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  return all;
}

std::string describe(const std::vector<Finding>& fs) {
  std::string s;
  for (const auto& f : fs)
    s += std::string(fault_type_name(f.type())) + " " + std::string(equivalence_name(f.equivalence)) + ": " + f.summary +
         " " + localize::evidence_json(f).value("equivalence_error", "") + "\n";
  return s;
}

TEST(Equivalence, PadPlusConvEqualsConvWithPads) {
  CnnSpec pad_node;
  pad_node.conv1_pad = CnnSpec::Conv1Pad::kPadNode;
  auto f = filtered(small_cnn(), small_cnn(pad_node));
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].type(), FaultType::kCG);
  EXPECT_EQ(f[0].equivalence, Equivalence::kEquivalent) << describe(f);
}

TEST(Equivalence, BatchNormEqualsMulAdd) {
  CnnSpec mul_add;
  mul_add.bn = CnnSpec::Bn::kMulAdd;
  auto f = filtered(small_cnn(), small_cnn(mul_add));
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].equivalence, Equivalence::kEquivalent) << describe(f);
  ASSERT_TRUE(f[0].impact.relative_l2.has_value());  // the region's size, measured on the probes
  EXPECT_LT(*f[0].impact.relative_l2, 1e-5);
}

TEST(Equivalence, FoldedBatchNormEqualsUnfolded) {
  CnnSpec folded;
  folded.bn = CnnSpec::Bn::kFoldedIntoConv1;
  auto f = filtered(small_cnn(), small_cnn(folded), cnn_pairs(true));
  ASSERT_EQ(f.size(), 2u) << describe(f);  // the folded layer itself, and the layer after it
  for (const auto& finding : f) EXPECT_EQ(finding.equivalence, Equivalence::kEquivalent) << describe(f);
}

TEST(Equivalence, DroppedPadsDiverge) {
  CnnSpec dropped;
  dropped.conv2_pads = false;
  auto f = filtered(small_cnn(), small_cnn(dropped));
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].type(), FaultType::kLH);
  EXPECT_EQ(f[0].equivalence, Equivalence::kDivergent) << describe(f);
}

TEST(Equivalence, ChangedEpsilonAndRemovedClipMaxDiverge) {
  auto target = small_cnn();
  model::set_float(*node_named(target, "bn1"), "epsilon", 0.5f);
  CnnSpec no_max;
  no_max.clip_max = false;
  auto f = filtered(small_cnn(), target);
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].equivalence, Equivalence::kDivergent) << describe(f);
  auto g = filtered(small_cnn(), small_cnn(no_max));
  ASSERT_EQ(g.size(), 1u) << describe(g);
  EXPECT_EQ(g[0].equivalence, Equivalence::kDivergent) << describe(g);
}

TEST(Equivalence, ATinyEpsilonChangeIsWithinTolerance) {
  auto target = small_cnn();
  model::set_float(*node_named(target, "bn1"), "epsilon", 1.001e-5f);
  auto f = filtered(small_cnn(), target);
  ASSERT_EQ(f.size(), 1u) << describe(f);  // reported by LH...
  EXPECT_EQ(f[0].equivalence, Equivalence::kEquivalent) << describe(f);  // ...but harmless
}

TEST(Equivalence, UpstreamFaultDoesNotMakeARegionDivergent) {
  // conv1's weights differ (a WB fault), so the entry of the BN-vs-Mul+Add region differs
  // too; the region itself is still equivalent once both sides get the Source's entry.
  CnnWeights changed;
  for (float& v : changed.w1.span<float>()) v *= 1.5f;
  CnnSpec mul_add;
  mul_add.bn = CnnSpec::Bn::kMulAdd;
  auto f = filtered(small_cnn(), small_cnn(mul_add, changed));
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].equivalence, Equivalence::kEquivalent) << describe(f);
}

TEST(Equivalence, OtherFindingsAreLeftAlone) {
  CnnWeights changed;
  changed.b1.span<float>()[0] += 1.0f;
  auto wb = check_weights(small_cnn(), small_cnn({}, changed), cnn_pairs());
  ASSERT_TRUE(wb.ok());
  ASSERT_EQ(wb->size(), 1u);
  auto findings = *wb;
  ASSERT_TRUE(filter_equivalent(small_cnn(), small_cnn({}, changed), findings, probe(), probe()).ok());
  EXPECT_EQ(findings[0].equivalence, Equivalence::kNotChecked);
  auto single = check_equivalence(small_cnn(), small_cnn({}, changed), findings[0], probe(), probe());
  ASSERT_FALSE(single.ok());
  EXPECT_NE(single.error().message.find("LH and CG"), std::string::npos) << single.error().message;
}

TEST(Equivalence, CheckOneFindingDirectly) {
  CnnSpec dropped;
  dropped.conv2_pads = false;
  auto lh = check_hyperparameters(small_cnn(), small_cnn(dropped), cnn_pairs());
  ASSERT_TRUE(lh.ok());
  ASSERT_EQ(lh->size(), 1u);
  auto verdict = check_equivalence(small_cnn(), small_cnn(dropped), (*lh)[0], probe(), probe());
  ASSERT_TRUE(verdict.ok()) << verdict.error().message;
  EXPECT_EQ(*verdict, Equivalence::kDivergent);
}

TEST(Equivalence, BrokenRegionEvidenceStaysNotChecked) {
  const CnnSpec mul_add = mul_add_spec();
  auto findings = mul_add_graph_findings();
  ASSERT_EQ(findings.size(), 1u);
  findings[0].regions()->target.output = "no_such_value";
  ASSERT_TRUE(filter_equivalent(small_cnn(), small_cnn(mul_add), findings, probe(), probe()).ok());
  EXPECT_EQ(findings[0].equivalence, Equivalence::kNotChecked);
  EXPECT_NE(localize::evidence_json(findings[0]).value("equivalence_error", "").find("no_such_value"), std::string::npos)
      << localize::evidence_json(findings[0]).dump();
  findings[0].regions()->target.inputs.clear();  // entries that cannot pair with the Source's
  ASSERT_TRUE(filter_equivalent(small_cnn(), small_cnn(mul_add), findings, probe(), probe()).ok());
  EXPECT_EQ(findings[0].equivalence, Equivalence::kNotChecked);
  EXPECT_NE(localize::evidence_json(findings[0]).value("equivalence_error", "").find("entries"), std::string::npos)
      << localize::evidence_json(findings[0]).dump();
}

// Regions whose entries do not pair (the Target region's entry is another value than the
// Source's): replayed again bounded by the matched layers, and judged.
TEST(Equivalence, EntriesThatDoNotPairAreBoundedByTheMatchedLayers) {
  const CnnSpec mul_add = mul_add_spec();
  auto findings = mul_add_graph_findings();
  ASSERT_EQ(findings.size(), 1u);
  ASSERT_EQ(findings[0].regions()->target.inputs.size(), 1u);
  findings[0].regions()->target.inputs = {"x"};  // the model input: no Source entry aligns with it
  auto alone = findings;
  ASSERT_TRUE(filter_equivalent(small_cnn(), small_cnn(mul_add), alone, probe(), probe()).ok());
  ASSERT_TRUE(filter_equivalent(small_cnn(), small_cnn(mul_add), findings, probe(), probe(), {}, cnn_pairs()).ok());
  EXPECT_EQ(findings[0].equivalence, Equivalence::kEquivalent) << describe(findings);
  EXPECT_NE(alone[0].equivalence, Equivalence::kEquivalent) << describe(alone);  // the first pass alone cannot
}

// The CG finding for conv2 (BatchNormalization in the Source, Mul + Add in the Target) when conv1
// pads more in the Target (its output 9 wide against 8): the region's entry cannot be fed from the
// Source, so the replay cannot judge it — the exact rule BatchNorm ≡ Mul + Add does. conv1's own
// pads stay an LH finding the replay finds divergent.
TEST(Equivalence, BatchNormAsMulAddIsEquivalentByRuleWhereTheEntriesCannotBeFed) {
  auto target = small_cnn(mul_add_spec());
  model::set_ints(*node_named(target, "conv1"), "pads", {1, 1, 2, 2});
  auto f = filtered(small_cnn(), target);
  const Finding* cg = nullptr;
  const Finding* lh = nullptr;
  for (const auto& finding : f) (finding.type() == FaultType::kCG ? cg : lh) = &finding;
  ASSERT_NE(cg, nullptr) << describe(f);
  ASSERT_NE(lh, nullptr) << describe(f);
  EXPECT_EQ(cg->equivalence, Equivalence::kEquivalent) << describe(f);
  const auto evidence = localize::evidence_json(*cg);
  EXPECT_EQ(evidence.value("equivalence_rule", ""), "batch_norm_as_mul_add") << evidence.dump();
  EXPECT_NE(evidence.value("equivalence_error", ""), "") << evidence.dump();  // why the replay could not
  EXPECT_EQ(lh->equivalence, Equivalence::kDivergent) << describe(f);
}

// conv2's weights differ in the Target (a WB finding): the CG region [Mul, Add, Relu, conv2]
// replayed as it is diverges through them, but the rewrite it is a finding for is exact; the
// matched layer's weights are the WB check's.
TEST(Equivalence, ARegionIsJudgedWithTheSourcesWeights) {
  CnnWeights changed;
  for (float& v : changed.w2.span<float>()) v *= 1.5f;
  auto f = filtered(small_cnn(), small_cnn(mul_add_spec(), changed));
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].equivalence, Equivalence::kEquivalent) << describe(f);
  EXPECT_EQ(localize::evidence_json(f[0]).value("equivalence_rule", ""), "batch_norm_as_mul_add");
  auto wb = check_weights(small_cnn(), small_cnn(mul_add_spec(), changed), cnn_pairs());
  ASSERT_TRUE(wb.ok());
  EXPECT_EQ(wb->size(), 1u);  // the weights stay a finding of their own
}

// A Mul + Add that is not the BatchNormalization (the Target's scale from another gamma) is no
// rewrite: the rule does not hold and the replay's verdict stands.
TEST(Equivalence, AMulAddThatIsNotTheBatchNormStaysDivergent) {
  CnnWeights other;
  for (float& v : other.gamma.span<float>()) v *= 1.5f;
  auto target = small_cnn(mul_add_spec(), other);
  // Only the BN's replacement differs: the Target's other weights are the Source's.
  auto f = filtered(small_cnn(), target);
  ASSERT_EQ(f.size(), 1u) << describe(f);
  EXPECT_EQ(f[0].equivalence, Equivalence::kDivergent) << describe(f);
  EXPECT_EQ(localize::evidence_json(f[0]).value("equivalence_rule", ""), "");
}

TEST(Equivalence, WrongProbeInputCountIsAnError) {
  CnnSpec mul_add;
  mul_add.bn = CnnSpec::Bn::kMulAdd;
  auto cg = check_graph(small_cnn(), small_cnn(mul_add), cnn_pairs());
  ASSERT_TRUE(cg.ok());
  auto findings = *cg;
  auto st = filter_equivalent(small_cnn(), small_cnn(mul_add), findings, Tensor{}, probe());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("Source"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace fetafix::localize
