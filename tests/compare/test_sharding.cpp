// Passes sharded over ranks (compare/shard.h) give what one process gives: compare_models'
// JSON, every evaluator score (full, subset, other preset, partial), and the same error. The
// ranks are threads of this process (tests/support/thread_ranks.h), running the collectives
// an MPI job runs; tests/python/test_mpi.py does the same through mpirun.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "compare/compare.h"
#include "compare/evaluator.h"
#include "compare/shard.h"
#include "compare/verdict_codec.h"
#include "match/cnn_fixture.h"
#include "model/weights.h"
#include "support/assets.h"
#include "support/photos.h"
#include "support/task_models.h"
#include "support/thread_ranks.h"

namespace fetafix::compare {
namespace {
namespace fs = std::filesystem;

CompareOptions quiet(const std::string& task = "", int batch = 3) {
  CompareOptions o;
  o.progress = ProgressMode::kQuiet;
  o.threads = 1;
  o.batch_size = batch;
  if (!task.empty()) o.task = ComparatorRegistry::instance().parse(task).value();
  return o;
}

const data::Preset kRaw = testing::stretched_raw_preset();

nlohmann::json without_timings(const CompareResult& r) {
  auto j = to_json(r);
  j["summary"].erase("seconds");
  j["summary"].erase("samples_per_second");
  return j;
}

// compare_models on `ranks` ranks: every rank's JSON, timings removed.
std::vector<nlohmann::json> compare_on(int ranks, const ModelSide& s, const ModelSide& t, const fs::path& dir,
                                       CompareOptions o) {
  const testing::ThreadRanks group(ranks);
  return group.run([&](const Communicator& comm) {
    CompareOptions mine = o;
    mine.comm = &comm;
    auto r = compare_models(s, t, dir, mine);
    return r.ok() ? without_timings(*r) : nlohmann::json{{"error", r.error().message}};
  });
}

TEST(Shard, WholeBatchesDealtRoundRobin) {
  const testing::ThreadRanks group(2);
  const Shard zero(10, 3, group.rank(0)), one(10, 3, group.rank(1));
  EXPECT_EQ(zero.owned(), (std::vector<size_t>{0, 1, 2, 6, 7, 8}));
  EXPECT_EQ(one.owned(), (std::vector<size_t>{3, 4, 5, 9}));
  EXPECT_EQ(zero.owner(7), 0);
  EXPECT_EQ(one.local(9), 3u);
  EXPECT_EQ(zero.local(7), 4u);
  const std::vector<size_t> subset{9, 1, 4, 8};
  EXPECT_EQ(zero.local_rows(subset), (std::vector<size_t>{1, 5}));
  EXPECT_EQ(one.local_rows(subset), (std::vector<size_t>{3, 1}));
  const Shard alone(4, 8, single_process());
  EXPECT_EQ(alone.owned(), (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(Shard, MergedRowsFollowTheRowsAndTheEarliestErrorWins) {
  const testing::ThreadRanks group(2);
  const std::vector<size_t> rows{5, 0, 3, 4};
  auto merged = group.run([&](const Communicator& comm) {
    const Shard shard(6, 2, comm);  // rank 0: 0,1,4,5; rank 1: 2,3
    RankPart<int64_t> part;
    for (size_t i : rows)
      if (shard.mine(i)) part.items.push_back(static_cast<int64_t>(i * 10));
    return merge_rows(comm, shard, rows, std::move(part)).value();
  });
  EXPECT_EQ(merged[0], (std::vector<int64_t>{50, 0, 30, 40}));
  EXPECT_EQ(merged[1], merged[0]);

  auto failed = group.run([&](const Communicator& comm) {
    const Shard shard(6, 2, comm);
    RankPart<int64_t> part;
    part.fail(comm.rank() == 0 ? 4 : 3, make_error("sample {} failed", comm.rank() == 0 ? 4 : 3));
    auto r = merge_rows(comm, shard, rows, std::move(part));
    return r.ok() ? std::string() : r.error().message;
  });
  EXPECT_EQ(failed[0], "sample 3 failed");
  EXPECT_EQ(failed[1], "sample 3 failed");
}

TEST(VerdictCodec, EveryTasksEvidenceSurvivesTheTrip) {
  const fs::path dir = testing::temp_dir("sharding_codec");
  testing::write_two_tone_images(dir, 32, 32, {{{200, 40, 40}, {200, 40, 40}, 32}, {{30, 30, 200}, {30, 200, 30}, 16}});
  auto det = testing::detector_model(), grown = testing::detector_model(1.3f);
  auto seg = testing::segmenter_model(false), swapped = testing::segmenter_model(true);
  std::vector<Verdict> verdicts;
  for (const auto& [s, t, task] : {std::tuple{&det, &grown, "boxes"}, std::tuple{&seg, &swapped, "mask"},
                                   std::tuple{&seg, &swapped, "tensor"}, std::tuple{&seg, &swapped, "label"}}) {
    auto r = compare_models({s, "s", kRaw}, {t, "t", kRaw}, dir, quiet(task));
    ASSERT_TRUE(r.ok()) << task << ": " << r.error().message;
    for (const auto& rec : r->records) verdicts.push_back({rec.agree, rec.distance, rec.detail, rec.evidence});
  }
  verdicts.push_back({false, 0.5, "'ab' -> 'abc' (1 edit)", TextEvidence{{1, 2}, {1, 2, 3}, "ab", "abc", 1}});
  verdicts.push_back({true, 0, "", std::monostate{}});
  ByteWriter w;
  for (const auto& v : verdicts) encode(w, v);
  const std::string bytes = w.take();
  ByteReader r(bytes);
  for (const auto& v : verdicts) {
    Verdict back;
    decode(r, back);
    EXPECT_EQ(back.agree, v.agree);
    EXPECT_EQ(back.distance, v.distance);
    EXPECT_EQ(back.detail, v.detail);
    EXPECT_EQ(back.evidence.index(), v.evidence.index());
    EXPECT_EQ(evidence_to_json(back.evidence), evidence_to_json(v.evidence)) << v.detail;
  }
  EXPECT_TRUE(r.done());
}

TEST(ShardedCompare, AnyTaskOnTwoAndThreeRanksGivesTheJsonOfOneProcess) {
  const fs::path photos = testing::synthetic_photos("sharding_photos", 11);
  auto det = testing::detector_model(), grown = testing::detector_model(1.3f);
  auto seg = testing::segmenter_model(false), swapped = testing::segmenter_model(true);
  for (const auto& [s, t, task] : {std::tuple{&det, &grown, "boxes"}, std::tuple{&seg, &swapped, "mask"}}) {
    const ModelSide source{s, "s.onnx", kRaw}, target{t, "t.onnx", kRaw};
    auto one = compare_models(source, target, photos, quiet(task));
    ASSERT_TRUE(one.ok()) << one.error().message;
    for (int ranks : {2, 3})
      for (const auto& j : compare_on(ranks, source, target, photos, quiet(task)))
        EXPECT_EQ(j, without_timings(*one)) << task << " on " << ranks << " ranks";
  }
}

TEST(ShardedCompare, TheSameErrorOnEveryRank) {
  const fs::path photos = testing::temp_dir("sharding_broken");
  fs::copy(testing::synthetic_photos("sharding_photos", 11), photos, fs::copy_options::recursive);
  { std::ofstream(photos / "zz_broken.png") << "not a png"; }  // the last sample: batch 3 of 4, rank 1's
  auto seg = testing::segmenter_model(false);
  const ModelSide side{&seg, "seg.onnx", kRaw};
  CompareOptions strict = quiet("mask");
  strict.strict = true;
  auto one = compare_models(side, side, photos, strict);
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.error().message.find("zz_broken.png"), std::string::npos) << one.error().message;
  for (const auto& j : compare_on(2, side, side, photos, strict)) EXPECT_EQ(j["error"], one.error().message);
  // Without --strict it is skipped, on whichever rank holds it.
  auto skipped = compare_models(side, side, photos, quiet("mask"));
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(skipped->summary.images_skipped, 1u);
  for (const auto& j : compare_on(2, side, side, photos, quiet("mask"))) EXPECT_EQ(j, without_timings(*skipped));
}

// What repair reads of a score, plus the verdicts' details.
struct Seen {
  std::vector<int64_t> top1;
  std::vector<bool> agree;
  size_t disagreeing = 0;
  double distance = 0;
  bool partial = false;
  std::vector<std::string> details;
  bool operator==(const Seen&) const = default;
};

Seen seen(const Result<CandidateScore>& s) {
  if (!s.ok()) return {{}, {}, 0, 0, false, {s.error().message}};
  Seen out{s->top1, s->agree, s->disagreeing, s->distance, s->partial, {}};
  for (const auto& v : s->verdicts) out.details.push_back(v.detail);
  return out;
}

onnx::ModelProto with_weight_scaled(const onnx::ModelProto& m, const std::string& value, float factor) {
  onnx::ModelProto out = m;
  Tensor t = model::get_weight(out, value).value();
  for (float& v : t.span<float>()) v *= factor;
  EXPECT_TRUE(model::set_weight(out, value, t).ok());
  return out;
}

// The calls repair makes, in its order: every rank must make them all.
std::vector<Seen> evaluator_calls(const Communicator& comm, const fs::path& photos) {
  auto source = testing::build_cnn();
  auto target = testing::build_cnn(testing::cnn_options([](testing::CnnOptions& o) { o.scaled_layer = 7; }));
  auto fixed = target;
  EXPECT_TRUE(model::set_weight(fixed, "conv8_w", *model::get_weight(source, "conv8_w")).ok());
  const auto raw = data::preset_by_name("raw").value(), caffe = data::preset_by_name("caffe").value();
  CompareOptions o = quiet("", 4);
  o.comm = &comm;
  auto e = LabelEvaluator::create({&source, "source.onnx", raw}, {&target, "target.onnx", raw}, photos, o);
  if (!e.ok()) return {Seen{{}, {}, 0, 0, false, {e.error().message}}};
  auto& eval = **e;
  std::vector<Seen> out;
  out.push_back(Seen{eval.source_top1(), {}, eval.images(), 0, false, {}});
  out.push_back(seen(eval.score_full(target)));
  const std::vector<size_t> subset{1, 4, 5, 17, 33, 34};
  out.push_back(seen(eval.score(fixed, subset)));
  out.push_back(seen(eval.score_with_preset(target, caffe)));
  EXPECT_TRUE(eval.set_base(target).ok());
  out.push_back(seen(eval.score(fixed)));  // partial
  out.push_back(seen(eval.score(fixed, subset)));
  out.push_back(seen(eval.score(with_weight_scaled(target, "conv8_b", 0.5f), std::vector<size_t>{2, 3})));
  out.push_back(seen(eval.score(with_weight_scaled(target, "conv1_w", 0.9f))));  // reaches the input: full
  EXPECT_TRUE(eval.set_target_preset(target, caffe).ok());
  out.push_back(seen(eval.score_full(target)));
  out.push_back(Seen{{}, {}, eval.partial_runs(), static_cast<double>(eval.full_runs()), false, {}});
  return out;
}

TEST(ShardedEvaluator, EveryRankSeesTheScoresOfOneProcess) {
  const fs::path photos = testing::synthetic_photos("sharding_evaluator", 37);
  const auto one = evaluator_calls(single_process(), photos);
  ASSERT_GE(one.size(), 10u) << (one.empty() || one[0].details.empty() ? "" : one[0].details[0]);
  EXPECT_TRUE(one[4].partial);
  EXPECT_FALSE(one[7].partial);
  for (int ranks : {2, 3}) {
    const testing::ThreadRanks group(ranks);
    const auto all = group.run([&](const Communicator& comm) { return evaluator_calls(comm, photos); });
    for (int r = 0; r < ranks; ++r) {
      ASSERT_EQ(all[static_cast<size_t>(r)].size(), one.size());
      for (size_t c = 0; c < one.size(); ++c)
        EXPECT_EQ(all[static_cast<size_t>(r)][c], one[c]) << "call " << c << ", rank " << r << " of " << ranks;
    }
  }
}

TEST(ShardedEvaluator, AnUndecodableSampleIsTheSameErrorEverywhere) {
  const fs::path photos = testing::temp_dir("sharding_evaluator_broken");
  fs::copy(testing::synthetic_photos("sharding_evaluator", 37), photos, fs::copy_options::recursive);
  { std::ofstream(photos / "zz_broken.png") << "not a png"; }
  const auto one = evaluator_calls(single_process(), photos);
  ASSERT_EQ(one.size(), 1u);
  const testing::ThreadRanks group(2);
  for (const auto& calls : group.run([&](const Communicator& comm) { return evaluator_calls(comm, photos); }))
    EXPECT_EQ(calls, one);
}

}  // namespace
}  // namespace fetafix::compare
