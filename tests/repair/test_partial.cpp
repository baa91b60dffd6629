// Partial re-execution: the changed region of an edited model, and evaluator scores computed
// from cached base values that equal full runs; scoring a subset equals the subset's rows.
#include <gtest/gtest.h>

#include "compare/evaluator.h"
#include "match/cnn_fixture.h"
#include "model/edit.h"
#include "model/region.h"
#include "model/weights.h"
#include "support/photos.h"

namespace fetafix::repair {
namespace {

using testing::CnnOptions;

onnx::ModelProto with_weight_scaled(const onnx::ModelProto& m, const std::string& value, float factor) {
  onnx::ModelProto out = m;
  auto w = model::get_weight(out, value);
  EXPECT_TRUE(w.ok()) << value;
  Tensor t = *w;  // float32 in the fixture
  for (float& v : t.span<float>()) v *= factor;
  EXPECT_TRUE(model::set_weight(out, value, t).ok());
  return out;
}

TEST(ChangedRegion, EditNearTheOutputGivesASmallRegionFedFromTheFrontier) {
  auto base = testing::build_cnn();
  const model::ModelFingerprint fp(base);
  auto late = with_weight_scaled(base, "conv8_w", 3.0f);
  auto region = model::find_changed_region(fp, late);
  ASSERT_TRUE(region.has_value());
  EXPECT_FALSE(region->frontier.empty());
  EXPECT_LT(region->cost_share, 0.5);
  EXPECT_EQ(region->output, base.graph().output(0).name());
  // Every region node reads only region outputs, frontier values or initializers.
  auto sub = model::extract_region(late, *region, [&] {
    std::map<std::string, model::FrontierValue> f;
    for (const auto& v : region->frontier) f[v] = {DType::kFloat32, {-1, 16, 4, 4}};
    return f;
  }());
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ(sub->graph().node_size(), static_cast<int>(region->nodes.size()));
  EXPECT_EQ(sub->graph().input_size(), static_cast<int>(region->frontier.size()));

  // An edit at the first layer reaches back to the graph input: no partial run.
  EXPECT_FALSE(model::find_changed_region(fp, with_weight_scaled(base, "conv1_w", 3.0f)).has_value());
  // Nothing changed: nothing to run.
  EXPECT_FALSE(model::find_changed_region(fp, base).has_value());
  // Graph outputs changed: a full run decides.
  auto more_outputs = late;
  *more_outputs.mutable_graph()->add_output() = base.graph().output(0);
  more_outputs.mutable_graph()->mutable_output(1)->set_name("extra");
  EXPECT_FALSE(model::find_changed_region(fp, more_outputs).has_value());
}

TEST(PartialExecution, ScoresEqualFullRunsAndSubsetsEqualTheirRows) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](CnnOptions& o) { o.scaled_layer = 7; }));
  const auto raw = data::preset_by_name("raw").value();
  compare::CompareOptions co;
  co.threads = 1;
  co.progress = ProgressMode::kQuiet;
  auto e = compare::LabelEvaluator::create({&source, "source.onnx", raw}, {&target, "target.onnx", raw},
                                           testing::synthetic_photos("partial_photos"), co);
  ASSERT_TRUE(e.ok()) << e.error().message;
  auto& eval = **e;
  ASSERT_TRUE(eval.set_base(target).ok());

  // Candidates that touch only the last layers: the fix itself, and a different wrong value.
  auto fixed = target;
  ASSERT_TRUE(model::set_weight(fixed, "conv8_w", *model::get_weight(source, "conv8_w")).ok());
  for (const auto* candidate : {&fixed, &target}) {
    auto partial = eval.score(*candidate);
    auto full = eval.score_full(*candidate);
    ASSERT_TRUE(partial.ok() && full.ok());
    if (candidate == &fixed) {
      EXPECT_TRUE(partial->partial);
    }
    EXPECT_FALSE(full->partial);
    EXPECT_EQ(partial->top1, full->top1);
    EXPECT_EQ(partial->disagreeing, full->disagreeing);
    EXPECT_NEAR(partial->distance, full->distance, 1e-4);
  }
  auto scaled = with_weight_scaled(target, "conv8_b", 0.5f);
  auto partial = eval.score(scaled);
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(partial->partial);
  EXPECT_EQ(partial->top1, eval.score_full(scaled)->top1);
  EXPECT_GE(eval.partial_runs(), 2u);

  // A subset's score lists the subset's rows of the whole-set score, partial or not.
  const std::vector<size_t> subset{1, 4, 5, 17, 33};
  auto whole = eval.score_full(fixed);
  for (bool use_partial : {true, false}) {
    auto part = use_partial ? eval.score(fixed, subset) : eval.score_full(fixed, subset);
    ASSERT_TRUE(part.ok());
    ASSERT_EQ(part->top1.size(), subset.size());
    size_t disagreeing = 0;
    for (size_t j = 0; j < subset.size(); ++j) {
      EXPECT_EQ(part->top1[j], whole->top1[subset[j]]);
      disagreeing += !whole->agree[subset[j]];
    }
    EXPECT_EQ(part->disagreeing, disagreeing);
  }

  // An edit at the input end runs whole.
  auto early = with_weight_scaled(target, "conv1_w", 0.9f);
  auto s = eval.score(early);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->partial);
}

}  // namespace
}  // namespace fetafix::repair
