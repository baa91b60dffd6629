// Operator substitutions in real torch.onnx ports (the port corpus, scripts/make-ports.sh): the
// ground truth's Target and Source nodes compute different functions by the op-form comparison,
// and rewriting every one of them in one plan makes the buggy port compute what the faithful
// port computes. Skips when the corpus has not been made (it needs Debian's python3-torch).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "model/builder.h"
#include "model/edit.h"
#include "model/model.h"
#include "repair/op_rewrite.h"
#include "runtime/session.h"
#include "support/ports.h"

namespace fetafix::repair {
namespace {

namespace fs = std::filesystem;

struct PortCase {
  onnx::ModelProto source, target;
  nlohmann::json changes;  // the op-substitution injection's details.changes
};

PortCase load_case(const fs::path& dir, const std::string& fault) {
  PortCase c;
  c.source = model::load_model(dir / "source.onnx").value().proto;
  c.target = model::load_model(dir / "target.onnx").value().proto;
  std::ifstream in(dir / "case.json");
  const auto j = nlohmann::json::parse(in);
  for (const auto& i : j["ground_truth"]["injections"])
    if (i["fault"] == fault) c.changes = i["details"]["changes"];
  return c;
}

localize::OpForm form_after(const onnx::ModelProto& m, const std::string& node_name) {
  auto view = model::GraphView::build(m.graph());
  EXPECT_TRUE(view.ok());
  auto node = view->find_node(node_name);
  EXPECT_TRUE(node.has_value()) << node_name;
  auto f = localize::recognize_op_form(m, *view, view->node(*node).output(0));
  EXPECT_TRUE(f.has_value()) << "no form at " << node_name;
  return f.value_or(localize::OpForm{});
}

// Every ground-truth change is a difference of `expected` between the two forms; the plan that
// rewrites them all.
OpRewritePlan plan_from_truth(const PortCase& c, const std::string& expected) {
  std::vector<OpRewriteRequest> requests;
  for (const auto& change : c.changes) {
    const auto s = form_after(c.source, change["source_node"]);
    const auto t = form_after(c.target, change["node"]);
    const auto cmp = localize::compare_op_forms(s, t);
    EXPECT_FALSE(cmp.same_function) << change.dump();
    EXPECT_EQ(cmp.summary(), expected) << change.dump();
    requests.push_back({t.output, s});
  }
  auto plan = plan_op_rewrites(c.target, requests);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  return plan.ok() ? *plan : OpRewritePlan{};
}

std::vector<float> run(const onnx::ModelProto& m, const Tensor& input) {
  auto session = runtime::Session::create(m, {});
  EXPECT_TRUE(session.ok()) << session.error().message;
  auto out = (*session)->run({input});
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? (*out)[0].to_float() : std::vector<float>{};
}

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}

// The rewritten Target against the faithful port (the Source also clips activations to the
// ranges its int8 quantization had, which the ports do not): equal up to float rounding.
void expect_faithful_after(const PortCase& c, const OpRewritePlan& plan, const fs::path& faithful, const Tensor& input) {
  onnx::ModelProto repaired = c.target;
  model::EditLog log(repaired);
  ASSERT_TRUE(log.apply_all(plan.edits).ok());
  const auto reference = run(model::load_model(faithful / "target.onnx").value().proto, input);
  EXPECT_GT(max_difference(run(c.target, input), reference), 1e-3);
  EXPECT_LT(max_difference(run(repaired, input), reference), 1e-5);
}

TEST(OpRewritePorts, ReluForRelu6OnEveryLayerOfMobileNetV2) {
  FETAFIX_REQUIRE_PORT_CASE(dir, "mobilenetv2-port-relu-for-relu6");
  FETAFIX_REQUIRE_PORT_CASE(faithful, "mobilenetv2-port");
  const PortCase c = load_case(dir, "relu-for-relu6");
  ASSERT_EQ(c.changes.size(), 18u);  // stem, 16 expansions, head
  const auto plan = plan_from_truth(c, "hi: 6 vs inf");
  for (const auto& d : plan.descriptions) EXPECT_NE(d.find("form replaced"), std::string::npos) << d;
  Tensor image(DType::kUInt8, {1, 224, 224, 3});
  Rng rng(3);
  for (auto& b : image.bytes) b = static_cast<std::byte>(rng.next_u64() & 0xff);
  expect_faithful_after(c, plan, faithful, image);
}

TEST(OpRewritePorts, TorchHardsigmoidInPaddleOcrSeBlocks) {
  FETAFIX_REQUIRE_PORT_CASE(dir, "paddleocr-port-torch-hardsigmoid");
  FETAFIX_REQUIRE_PORT_CASE(faithful, "paddleocr-port");
  const PortCase c = load_case(dir, "torch-hardsigmoid");
  ASSERT_EQ(c.changes.size(), 9u);  // one per SE block
  const auto plan = plan_from_truth(c, "alpha: 0.2 vs 0.166667");
  for (const auto& d : plan.descriptions) EXPECT_NE(d.find("in place"), std::string::npos) << d;
  expect_faithful_after(c, plan, faithful, random_tensor({1, 3, 48, 192}, 5));
}

}  // namespace
}  // namespace fetafix::repair
