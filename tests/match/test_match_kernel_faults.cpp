// A Conv reads its weight as OIHW: a kernel stored with H and W swapped (no Transpose in
// front) still matches its Source layer, but must not be reported as a layout change, or the
// WB check would align it away instead of reporting the fault.
#include <gtest/gtest.h>

#include "match/cnn_fixture.h"
#include "match/match.h"
#include "model/weights.h"

namespace fetafix::match {

TEST(MatchKernelFaults, SwappedKernelAxesMatchWithoutALayoutPermutation) {
  auto source = testing::build_cnn();
  auto target = source;
  auto w = model::get_weight(target, "conv2_w");
  ASSERT_TRUE(w.ok()) << w.error().message;
  Tensor swapped = *w;
  const int64_t planes = w->shape[0] * w->shape[1], h = w->shape[2], wd = w->shape[3];
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < wd; ++x)
        swapped.data<float>()[(p * wd + x) * h + y] = w->data<float>()[(p * h + y) * wd + x];
  ASSERT_TRUE(model::set_weight(target, "conv2_w", swapped).ok());

  auto r = match_models(source, target);
  ASSERT_TRUE(r.ok()) << r.error().message;
  bool seen = false;
  for (const auto& p : r->pairs) {
    if (p.source_node != "conv2") continue;
    seen = true;
    EXPECT_EQ(p.target_node, "conv2");
    EXPECT_TRUE(p.weight_permutation.empty()) << p.evidence;
  }
  EXPECT_TRUE(seen);
}

}  // namespace fetafix::match
