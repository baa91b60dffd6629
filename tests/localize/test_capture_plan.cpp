// The chained capture passes of the activation analysis (capture_plan.h): what a pass keeps for
// the next, and that the chained segments compute the same values as the whole model.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "localize/capture_plan.h"
#include "model/builder.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

// x[N,3,8,8] -> 3 x (Conv 3x3 -> QuantizeLinear -> DequantizeLinear) -> y: a QDQ chain, where the
// uint8 output of a QuantizeLinear is a quarter of the float Conv output it quantizes.
onnx::ModelProto qdq_chain() {
  GraphBuilder b("qdq");
  std::string h = b.input("x", DType::kFloat32, {-1, 3, 8, 8});
  b.initializer("scale", float_tensor({}, {0.05f}));
  Tensor zero_point(DType::kUInt8, {});
  zero_point.bytes[0] = std::byte{128};
  b.initializer("zero_point", zero_point);
  int64_t in_channels = 3;
  for (int i = 1; i <= 3; ++i) {
    const std::string id = std::to_string(i);
    b.initializer("w" + id, random_tensor({4, in_channels, 3, 3}, 10 + i, 0.3f));
    h = b.node("Conv", "conv" + id, {h, "w" + id}, {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})},
               "c" + id);
    h = b.node("QuantizeLinear", "q" + id, {h, "scale", "zero_point"}, {}, "q" + id + "_out");
    h = b.node("DequantizeLinear", "dq" + id, {h, "scale", "zero_point"}, {}, "dq" + id + "_out");
    in_channels = 4;
  }
  b.output(h, DType::kFloat32, {-1, 4, 8, 8});
  return b.build();
}

struct Planned {
  onnx::ModelProto model = qdq_chain();
  Tensor images = uniform_tensor({5, 3, 8, 8}, 7, -1.0f, 1.0f);
  std::map<std::string, runtime::ValueInfo> values;
  std::vector<SegmentPlan> plans;

  explicit Planned(std::vector<std::vector<std::string>> values_per_pass, size_t budget = size_t{1} << 20) {
    auto observed = runtime::observe_value_shapes(model, {images}, 1);
    EXPECT_TRUE(observed.ok()) << observed.error().message;
    if (!observed.ok()) return;
    values = std::move(observed).value();
    CapturePlanInput in;
    in.values_per_pass = std::move(values_per_pass);
    in.values = &values;
    in.probe_batch = images.shape[0];
    in.rows = static_cast<size_t>(images.shape[0]);
    in.cache_budget = budget;
    auto p = plan_capture_segments(model, in);
    EXPECT_TRUE(p.ok()) << p.error().message;
    if (p.ok()) plans = std::move(p).value();
  }

  // Runs the segments in order, each fed the graph input and the values earlier ones kept.
  std::map<std::string, Tensor> run_chained() const {
    std::map<std::string, Tensor> kept{{"x", images}}, delivered;
    runtime::SessionOptions so;
    so.threads = 1;
    so.optimize = false;  // as the analysis runs them: the model's own values, as a capture gives them
    for (const auto& plan : plans) {
      if (!plan.model) continue;
      auto session = runtime::Session::create(*plan.model, so, "segment");
      EXPECT_TRUE(session.ok()) << session.error().message;
      if (!session.ok()) return {};
      std::vector<Tensor> feeds;
      for (const auto& input : (*session)->inputs()) feeds.push_back(kept.at(input.name));
      auto out = (*session)->run(feeds);
      EXPECT_TRUE(out.ok()) << out.error().message;
      if (!out.ok()) return {};
      for (size_t k = 0; k < plan.outputs.size(); ++k) {
        delivered[plan.outputs[k]] = (*out)[k];
        if (std::count(plan.keep.begin(), plan.keep.end(), plan.outputs[k])) kept[plan.outputs[k]] = (*out)[k];
      }
    }
    return delivered;
  }
};

std::map<std::string, Tensor> whole_model_values(const Planned& p, const std::vector<std::string>& names) {
  runtime::SessionOptions so;
  so.threads = 1;
  so.capture = names;
  auto session = runtime::Session::create(p.model, so, "whole");
  EXPECT_TRUE(session.ok());
  auto out = (*session)->run({p.images});
  EXPECT_TRUE(out.ok());
  std::map<std::string, Tensor> values;
  for (size_t k = 0; k < names.size(); ++k) values[names[k]] = (*out)[(*session)->num_model_outputs() + k];
  return values;
}

// A pass that ends at a Conv output keeps the uint8 QuantizeLinear output after it (a quarter of
// the bytes) instead of the float value, and the next pass starts from there.
TEST(CapturePlan, CutMovesForwardOverAQuantizeLinearToTheSmallerValue) {
  const Planned p({{"c1"}, {"c2"}, {"c3"}});
  ASSERT_EQ(p.plans.size(), 3u);
  EXPECT_EQ(p.plans[0].keep, std::vector<std::string>{"q1_out"});
  EXPECT_EQ(p.plans[1].entries, std::vector<std::string>{"q1_out"});
  EXPECT_EQ(p.plans[1].keep, std::vector<std::string>{"q2_out"});
  EXPECT_EQ(p.plans[2].entries, std::vector<std::string>{"q2_out"});
  const auto chained = p.run_chained();
  const auto whole = whole_model_values(p, {"c1", "c2", "c3"});
  for (const auto& name : {"c1", "c2", "c3"}) {
    ASSERT_TRUE(chained.count(name)) << name;
    EXPECT_EQ(chained.at(name).bytes, whole.at(name).bytes) << name;
  }
}

// A pass that ends at a DequantizeLinear output keeps the uint8 value before it and recomputes
// the DequantizeLinear in the next pass.
TEST(CapturePlan, CutMovesBackwardOverADequantizeLinearOfThisPass) {
  const Planned p({{"dq1_out"}, {"c2"}});
  ASSERT_EQ(p.plans.size(), 2u);
  EXPECT_EQ(p.plans[0].keep, std::vector<std::string>{"q1_out"});
  EXPECT_EQ(p.plans[1].entries, std::vector<std::string>{"q1_out"});
  const auto chained = p.run_chained();
  const auto whole = whole_model_values(p, {"dq1_out", "c2"});
  for (const auto& name : {"dq1_out", "c2"}) {
    ASSERT_TRUE(chained.count(name)) << name;
    EXPECT_EQ(chained.at(name).bytes, whole.at(name).bytes) << name;
  }
}

// A value a later pass asks for itself is kept as it is, never replaced by its quantized form.
TEST(CapturePlan, AValueALaterPassWantsIsKeptAsItIs) {
  const Planned p({{"q1_out", "c1"}, {"c1", "c2"}});
  ASSERT_EQ(p.plans.size(), 2u);
  EXPECT_NE(std::find(p.plans[0].keep.begin(), p.plans[0].keep.end(), "c1"), p.plans[0].keep.end());
  const auto chained = p.run_chained();
  const auto whole = whole_model_values(p, {"c2"});
  ASSERT_TRUE(chained.count("c2"));
  EXPECT_EQ(chained.at("c2").bytes, whole.at("c2").bytes);
}

// Without room to keep anything, every pass starts from the input.
TEST(CapturePlan, NoBudgetMeansEveryPassStartsFromTheInput) {
  const Planned p({{"c1"}, {"c2"}}, 0);
  ASSERT_EQ(p.plans.size(), 2u);
  EXPECT_TRUE(p.plans[0].keep.empty());
  EXPECT_EQ(p.plans[1].entries, std::vector<std::string>{});
  const auto chained = p.run_chained();
  const auto whole = whole_model_values(p, {"c2"});
  EXPECT_EQ(chained.at("c2").bytes, whole.at("c2").bytes);
}

}  // namespace
}  // namespace fetafix::localize
