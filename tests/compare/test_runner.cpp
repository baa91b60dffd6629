// Batching samples: what stacks, the input-size cap, and the fall-back when an output does not
// carry the batch first.
#include <gtest/gtest.h>

#include "common/limits.h"
#include "compare/runner.h"
#include "model/builder.h"

namespace fetafix::compare {
namespace {

// [N,3] -> the sum of everything: a scalar, whatever the batch (not per sample).
onnx::ModelProto total_model() {
  GraphBuilder g("total", 13);
  std::string x = g.input("x", DType::kFloat32, {-1, 3});
  g.node("ReduceSum", "total", {x}, {Attr::i("keepdims", 0)}, "sum");
  g.output("sum", DType::kFloat32, {});
  return g.build();
}

// [N,3] -> x * 2, per sample.
onnx::ModelProto double_model() {
  GraphBuilder g("double", 13);
  std::string x = g.input("x", DType::kFloat32, {-1, 3});
  g.initializer("two", float_tensor({}, {2.0f}));
  g.node("Mul", "double", {x, "two"}, {}, "y");
  g.output("y", DType::kFloat32, {-1, 3});
  return g.build();
}

std::vector<Feed> feeds(int n) {
  std::vector<Feed> f;
  for (int i = 0; i < n; ++i) f.push_back({float_tensor({1, 3}, {1.0f * i, 1, 1})});
  return f;
}

std::vector<const Feed*> pointers(const std::vector<Feed>& f) {
  std::vector<const Feed*> p;
  for (const auto& x : f) p.push_back(&x);
  return p;
}

}  // namespace

TEST(BatchRunner, StacksSamplesAndSplitsTheOutputs) {
  auto m = double_model();
  auto session = runtime::Session::create(m, {}, "double").value();
  const BatchRunner runner(*session, "double", 4);
  EXPECT_TRUE(runner.model_stacks());
  const auto f = feeds(6);
  auto out = runner.run(pointers(f));
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out->size(), 6u);
  EXPECT_EQ((*out)[5][0].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ((*out)[5][0].to_float(), (std::vector<float>{10, 2, 2}));
  // The same through a table, on a subset.
  const FeedTable table = FeedTable::from(f);
  EXPECT_TRUE(table.is_stacked());
  const size_t rows[] = {4, 1};
  auto sub = run_table(runner, table, rows);
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ((*sub)[0][0].to_float(), (std::vector<float>{8, 2, 2}));
  EXPECT_EQ((*sub)[1][0].to_float(), (std::vector<float>{2, 2, 2}));
}

TEST(BatchRunner, AnOutputWithoutTheBatchFallsBackToOneSampleAtATime) {
  auto m = total_model();
  auto session = runtime::Session::create(m, {}, "total").value();
  const BatchRunner runner(*session, "total", 8);
  const auto f = feeds(3);
  auto out = runner.run(pointers(f));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_FALSE(runner.model_stacks());  // learned from the first batch
  ASSERT_EQ(out->size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*out)[static_cast<size_t>(i)][0].to_float()[0], i + 2.0f) << i;
}

TEST(BatchRunner, DifferentShapesDoNotStackAndLargeInputsRunAlone) {
  std::vector<Feed> mixed = {{float_tensor({1, 3}, {1, 2, 3})}, {float_tensor({1, 2}, {1, 2})}};
  EXPECT_TRUE(stack_feeds(pointers(mixed)).empty());
  std::vector<Feed> unbatched = {{float_tensor({3}, {1, 2, 3})}, {float_tensor({3}, {1, 2, 3})}};
  EXPECT_TRUE(stack_feeds(pointers(unbatched)).empty());  // dim 0 is not a batch of 1
  auto m = double_model();
  auto session = runtime::Session::create(m, {}, "double").value();
  const BatchRunner runner(*session, "double", 8);
  EXPECT_EQ(runner.batch_for(224 * 224 * 3 * 4), 8u);
  EXPECT_EQ(runner.batch_for(640 * 640 * 3 * 4), 1u);
}

TEST(BatchRunner, BatchesStayUnderTheTensorLimit) {
  auto m = double_model();
  auto session = runtime::Session::create(m, {}, "double").value();
  const BatchRunner runner(*session, "double", 4096);
  const ResourceLimits saved = resource_limits();
  ResourceLimits low = saved;
  low.max_tensor_bytes = 1000;
  set_resource_limits(low);
  EXPECT_EQ(runner.batch_for(100), 10u);   // 10 samples of 100 bytes: 1000 bytes
  EXPECT_EQ(runner.batch_for(5000), 1u);   // one sample always runs (its size is the reader's to check)
  set_resource_limits(saved);
  EXPECT_EQ(runner.batch_for(100), 4096u);
}

}  // namespace fetafix::compare
