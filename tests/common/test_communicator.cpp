// The communicator's collectives (single process and an in-process group of ranks), the byte
// codec they carry, and the threads-per-rank rule.
#include <gtest/gtest.h>

#include <thread>

#include "common/bytes.h"
#include "common/communicator.h"
#include "support/thread_ranks.h"

namespace fetafix {
namespace {

TEST(Communicator, SingleProcessIsRankZeroOfOneAndCopiesNothing) {
  const Communicator& c = single_process();
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  EXPECT_TRUE(c.is_root());
  EXPECT_EQ(c.all_gather("abc"), std::vector<std::string>{"abc"});
  std::string b = "x";
  c.broadcast(b, 0);
  EXPECT_EQ(b, "x");
  int64_t n[] = {3, -4};
  c.all_reduce_sum(std::span<int64_t>(n));
  EXPECT_EQ(n[1], -4);
  EXPECT_FALSE(c.all_true(false));
  EXPECT_EQ(c.stats().calls, 0u);
}

TEST(Communicator, CollectivesOfThreeRanks) {
  const testing::ThreadRanks ranks(3);
  struct Seen {
    std::vector<std::string> gathered, exchanged;
    std::string broadcast;
    int64_t sum = 0;
    double dsum = 0;
    bool all_true = false, one_false = true;
  };
  const auto seen = ranks.run([](const Communicator& c) {
    Seen s;
    const std::string r = std::to_string(c.rank());
    s.gathered = c.all_gather("rank" + r + std::string(static_cast<size_t>(c.rank()), '!'));
    std::vector<std::string> to_each;
    for (int d = 0; d < c.size(); ++d) to_each.push_back(r + "->" + std::to_string(d));
    s.exchanged = c.all_to_all(to_each);
    s.broadcast = c.rank() == 1 ? "from one" : "";
    c.broadcast(s.broadcast, 1);
    int64_t v[] = {c.rank() + 1};
    c.all_reduce_sum(std::span<int64_t>(v));
    s.sum = v[0];
    double d[] = {0.1 * (c.rank() + 1)};
    c.all_reduce_sum(std::span<double>(d));
    s.dsum = d[0];
    s.all_true = c.all_true(true);
    s.one_false = c.all_true(c.rank() != 2);
    return s;
  });
  for (int r = 0; r < 3; ++r) {
    const Seen& s = seen[static_cast<size_t>(r)];
    EXPECT_EQ(s.gathered, (std::vector<std::string>{"rank0", "rank1!", "rank2!!"}));
    const std::string me = std::to_string(r);
    EXPECT_EQ(s.exchanged, (std::vector<std::string>{"0->" + me, "1->" + me, "2->" + me}));
    EXPECT_EQ(s.broadcast, "from one");
    EXPECT_EQ(s.sum, 6);
    EXPECT_EQ(s.dsum, seen[0].dsum);  // the same bits on every rank
    EXPECT_NEAR(s.dsum, 0.6, 1e-15);
    EXPECT_TRUE(s.all_true);
    EXPECT_FALSE(s.one_false);
    EXPECT_EQ(ranks.rank(r).stats().calls, 7u);
  }
}

TEST(Communicator, ThreadsPerRankShareTheCoresWithoutOversubscribing) {
  EXPECT_EQ(threads_per_rank(single_process()),
            std::min(usable_cpus(), static_cast<int>(std::thread::hardware_concurrency())));
  const testing::ThreadRanks many(64);  // more ranks than cores: one thread each, never zero
  EXPECT_EQ(threads_per_rank(many.rank(0)), 1);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const testing::ThreadRanks two(2);
  EXPECT_LE(threads_per_rank(two.rank(0)) * 2, std::max(cores, 2));
}

TEST(ByteCodec, RoundTripsAndRefusesShortBuffers) {
  ByteWriter w;
  w.put(int64_t{-7});
  w.put(2.5);
  w.put(std::string("name"));
  w.put(std::vector<float>{1.f, 2.f});
  w.put(std::vector<bool>{true, false, true});
  w.put(std::vector<std::string>{"a", "bc"});
  const std::string bytes = w.take();
  ByteReader r(bytes);
  EXPECT_EQ(r.get<int64_t>(), -7);
  EXPECT_EQ(r.get<double>(), 2.5);
  EXPECT_EQ(r.get_string(), "name");
  std::vector<float> f;
  r.get(f);
  EXPECT_EQ(f, (std::vector<float>{1.f, 2.f}));
  std::vector<bool> b;
  r.get(b);
  EXPECT_EQ(b, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(r.get_count(), 2u);
  EXPECT_EQ(r.get_string(), "a");
  EXPECT_EQ(r.get_string(), "bc");
  EXPECT_TRUE(r.done());

  ByteReader cut(std::string_view(bytes).substr(0, 20));  // the string "name" is cut short
  cut.get<int64_t>();
  cut.get<double>();
  EXPECT_EQ(cut.get_string(), "");
  EXPECT_FALSE(cut.ok());
  EXPECT_EQ(cut.get<int64_t>(), 0);  // and every read after returns zeros

  ByteWriter huge;
  huge.put(uint64_t{1} << 60);  // a count no buffer can hold
  ByteReader h(huge.bytes());
  std::vector<double> v;
  h.get(v);
  EXPECT_FALSE(h.ok());
  EXPECT_TRUE(v.empty());
}

}  // namespace
}  // namespace fetafix
