// The HTML report's pieces (escaping, base64, charts, thumbnails, the side-by-side alignment,
// finding outcomes, the Model Explorer files) and the page made from a real repair.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "data/image.h"
#include "match/match.h"
#include "model/graph.h"
#include "report/graph_diff.h"
#include "report/html.h"
#include "report/model_explorer.h"
#include "report/report.h"
#include "report/thumbnail.h"
#include "report_fixture.h"
#include "support/assets.h"
#include "support/cli.h"
#include "support/images.h"

namespace fetafix::report {
namespace {
namespace fs = std::filesystem;
using localize::FaultType;
using testing::finding;
using testing::step_for;
using localize::Finding;

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + needle.size())) ++n;
  return n;
}

std::vector<unsigned char> unbase64(const std::string& s) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<unsigned char> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(Html, EscapesEverythingThatCouldBreakOut) {
  EXPECT_EQ(escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(escape("conv1/weight:0"), "conv1/weight:0");
}

TEST(Html, Base64MatchesRfc4648Vectors) {
  auto b = [](std::string s) { return base64(std::span<const unsigned char>(reinterpret_cast<const unsigned char*>(s.data()), s.size())); };
  EXPECT_EQ(b(""), "");
  EXPECT_EQ(b("f"), "Zg==");
  EXPECT_EQ(b("fo"), "Zm8=");
  EXPECT_EQ(b("foo"), "Zm9v");
  EXPECT_EQ(b("foob"), "Zm9vYg==");
  EXPECT_EQ(b("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b("foobar"), "Zm9vYmFy");
}

TEST(Html, NumbersAndPercentages) {
  EXPECT_EQ(percent(0.125), "12.5%");
  EXPECT_EQ(percent(1.0 / 3, 0), "33%");
  EXPECT_EQ(number(0), "0");
  EXPECT_EQ(number(576), "576");
  EXPECT_EQ(number(0.21345), "0.213");
  EXPECT_EQ(number(1.5e-6), "1.50e-06");
}

TEST(Html, ChartsDrawOneMarkPerValueAndEscapeLabels) {
  std::vector<LinePoint> points{{0.5, "start", ""}, {0.25, "1 <WB>", "t"}, {0.0, "2 LH", ""}};
  const std::string line = line_chart(points);
  EXPECT_EQ(count(line, "<circle"), 3u);
  EXPECT_NE(line.find("1 &lt;WB&gt;"), std::string::npos);
  EXPECT_EQ(line.find("<WB>"), std::string::npos);
  EXPECT_EQ(line.rfind("<svg", 0), 0u);
  EXPECT_EQ(line.substr(line.size() - 6), "</svg>");

  std::vector<Bar> bars{{"a", 0.5, "50%", "fault", "", "#x"}, {"b", 0.0, "0%", "plain", "", ""}, {"c", 1.0, "100%", "", "", ""}};
  const std::string hbar = horizontal_bar_chart(bars);
  EXPECT_EQ(count(hbar, "class=\"bar "), 3u);
  EXPECT_EQ(count(hbar, "<a href=\"#x\">"), 1u);

  const std::string grouped = grouped_bar_chart({{"WB", {3, 2, 1}}, {"LH", {1, 1, 0}}}, {"localized", "tried", "kept"},
                                                {"s-localized", "s-tried", "s-kept"});
  EXPECT_EQ(count(grouped, "<rect class=\"bar s-kept\""), 3u);  // two groups + the legend
}

TEST(Thumbnail, DownscalesKeepingAspectAndRoundTripsThroughJpeg) {
  const fs::path dir = fetafix::testing::temp_dir("report_thumbnail");
  fetafix::testing::write_png_rgb(dir / "wide.png", 200, 100, fetafix::testing::textured_solid(200, 100, 200, 40, 30, 1));
  auto uri = thumbnail_data_uri(dir / "wide.png", 96);
  ASSERT_TRUE(uri.ok()) << uri.error().message;
  const std::string prefix = "data:image/jpeg;base64,";
  ASSERT_EQ(uri->rfind(prefix, 0), 0u);
  const auto jpeg = unbase64(uri->substr(prefix.size()));
  std::ofstream(dir / "thumb.jpg", std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()),
                                                           static_cast<std::streamsize>(jpeg.size()));
  auto decoded = data::decode_image(dir / "thumb.jpg");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->width, 96);
  EXPECT_EQ(decoded->height, 48);
  // The colour survives (JPEG is lossy: within a few levels).
  const auto& px = decoded->rgb;
  EXPECT_NEAR(px[(24 * 96 + 48) * 3 + 0], 200, 12);
  EXPECT_NEAR(px[(24 * 96 + 48) * 3 + 1], 40, 12);

  auto missing = thumbnail_data_uri(dir / "nope.png");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.png"), std::string::npos);
}

TEST(Thumbnail, SmallImagesAreNotUpscaled) {
  data::Image img{10, 6, std::vector<uint8_t>(10 * 6 * 3, 128)};
  const auto out = downscale(img, 96);
  EXPECT_EQ(out.width, 10);
  EXPECT_EQ(out.height, 6);
}

TEST(GraphDiff, MissingPadsSitBesideTheirMatchedLayerAndNoOpsGetRowsOfTheirOwn) {
  const auto source = fetafix::testing::build_cnn();
  const auto target = fetafix::testing::build_cnn(testing::faulty_target_options());
  auto matching = match::match_models(source, target);
  ASSERT_TRUE(matching.ok()) << matching.error().message;
  auto sg = GraphContext::create(source, {"Conv", "Gemm"});
  auto tg = GraphContext::create(target, {"Conv", "Gemm"});
  ASSERT_TRUE(sg.ok() && tg.ok());

  localize::HyperparametersEvidence pads;
  pads.attribute = "pads";
  const Finding lh = localize::make_finding(pads, "conv6", "conv6", "pads");
  auto rows = side_by_side(**sg, **tg, *matching, lh, {});
  ASSERT_FALSE(rows.empty());
  const DiffRow* focus = nullptr;
  for (const auto& r : rows)
    if (r.source && r.source->name == "conv6") focus = &r;
  ASSERT_NE(focus, nullptr);
  EXPECT_EQ(focus->kind, RowKind::kMatched);
  ASSERT_TRUE(focus->target.has_value());
  EXPECT_EQ(focus->target->name, "conv6");
  EXPECT_TRUE(focus->source->focus && focus->target->focus);
  EXPECT_TRUE(focus->differing_attributes.count("pads"));
  EXPECT_TRUE(focus->source->core);
  // The Target's converter no-ops (Cast, Identity) have no Source counterpart.
  size_t target_only = 0;
  for (const auto& r : rows) {
    if (r.kind != RowKind::kTargetOnly) continue;
    ++target_only;
    EXPECT_FALSE(r.source.has_value());
    EXPECT_TRUE(r.target->op == "Cast" || r.target->op == "Identity" || r.target->op == "Pad") << r.target->op;
  }
  EXPECT_GE(target_only, 1u);

  // A WB finding marks its tensor on the side it names.
  localize::WeightsEvidence weights;
  weights.source.tensor = weights.target.tensor = "conv2_w";
  weights.differing = weights.total = 576;
  weights.max_abs_diff = 0.5;
  const Finding wb = localize::make_finding(weights, "conv2", "conv2", "conv2_w differs");
  const auto diffs = weight_differences({wb});
  rows = side_by_side(**sg, **tg, *matching, wb, diffs);
  bool marked = false;
  for (const auto& r : rows)
    if (r.target && r.target->name == "conv2")
      for (const auto& w : r.target->weights) marked |= w.value == "conv2_w" && w.difference.find("576/576") == 0;
  EXPECT_TRUE(marked);

  // Nothing to show for a finding without nodes.
  const Finding pp = localize::make_finding(localize::PreprocessingEvidence{}, "", "", "preset");
  EXPECT_TRUE(side_by_side(**sg, **tg, *matching, pp, {}).empty());
}

TEST(FindingOutcomes, KeptRejectedAndNotTriedFollowTheSteps) {
  std::vector<Finding> fs{finding(FaultType::kLH, "conv6", "LH pads"), finding(FaultType::kWB, "conv2", "WB conv2_w"),
                          finding(FaultType::kWB, "conv2", "WB conv2_b"), finding(FaultType::kCG, "conv4", "CG conv4"),
                          finding(FaultType::kLH, "conv7", "LH strides")};
  repair::RepairResult r;
  r.stop_reason = "fully repaired";
  auto rejected = step_for(fs[2], 1, false, "no change in disagreement");
  auto screened = step_for(fs[4], 1, false, "no drop on the 40 screening images");
  screened.screened_out = true;
  // A step of the same type and nodes made for another finding names neither of the others.
  r.steps = {step_for(fs[0], 1, true, "kept"), step_for(fs[1], 1, true, "kept"), rejected, screened};
  const auto o = finding_outcomes(fs, &r, 1);
  EXPECT_EQ(o[0].status, RepairStatus::kKept);
  EXPECT_EQ(o[1].status, RepairStatus::kKept);
  EXPECT_EQ(o[2].status, RepairStatus::kRejected);
  EXPECT_EQ(o[2].reason, "no change in disagreement");
  EXPECT_EQ(o[3].status, RepairStatus::kNotTried);
  EXPECT_NE(o[3].reason.find("fully repaired"), std::string::npos);
  EXPECT_EQ(o[4].status, RepairStatus::kRejected);
  EXPECT_EQ(o[4].reason, "screened out: no drop on the 40 screening images");
  // Steps of another round do not name round-2 findings.
  for (const auto& x : finding_outcomes(fs, &r, 2)) EXPECT_EQ(x.status, RepairStatus::kNotTried);
  for (const auto& x : finding_outcomes(fs, nullptr)) EXPECT_EQ(x.status, RepairStatus::kNotRepaired);
}

TEST(FindingOutcomes, AStepWhoseRepairWasNotPlannedNamesItsFinding) {
  const Finding f = finding(FaultType::kTSS, "conv3", "TSS: something odd");
  repair::RepairStep st;
  st.round = 1;
  st.type = FaultType::kTSS;
  st.description = f.summary;  // the driver's "no repair planned" step
  st.source_node = st.target_node = "conv3";
  st.finding_ids = {f.id};
  st.reason = "no repair planned: unsupported";
  repair::RepairResult r;
  r.steps = {st};
  const auto o = finding_outcomes({f}, &r, 1);
  EXPECT_EQ(o[0].status, RepairStatus::kRejected);
  EXPECT_EQ(o[0].reason, "no repair planned: unsupported");
}

TEST(FindingOutcomes, AKeptWeightGroupMarksTheFindingsOnItsLayersKept) {
  std::vector<Finding> fs{finding(FaultType::kWB, "conv1", "WB conv1_w"), finding(FaultType::kWB, "conv1", "WB conv1_b"),
                          finding(FaultType::kWB, "conv3", "WB conv3_w"), finding(FaultType::kWB, "conv5", "WB conv5_w"),
                          finding(FaultType::kLH, "conv1", "LH conv1 pads")};
  fs[3].equivalence = localize::Equivalence::kEquivalent;  // harmless weights are not in a group
  fs[3].verdict = localize::Verdict::kEquivalent;
  repair::RepairStep smallest;
  smallest.round = 1;
  smallest.kind = repair::StepKind::kGroup;
  smallest.type = FaultType::kWB;
  smallest.description = "Source weights into 1 of 4 differing tensors (1 layers): conv3";
  smallest.target_nodes = {"conv3"};
  smallest.finding_ids = {fs[2].id};
  smallest.reason = "reaches 3 disagreeing, not the 1 of the whole group";
  repair::RepairStep group = smallest;
  group.description = "Source weights into 4 of 4 differing tensors (3 layers): conv1, conv3, conv5";
  group.target_nodes = {"conv1", "conv3", "conv5"};
  group.finding_ids = {fs[0].id, fs[1].id, fs[2].id};
  group.kept = true;
  group.reason = "kept";
  repair::RepairResult r;
  r.steps = {smallest, group};
  const auto o = finding_outcomes(fs, &r, 1);
  EXPECT_EQ(o[0].status, RepairStatus::kKept);
  EXPECT_EQ(o[1].status, RepairStatus::kKept);
  EXPECT_EQ(o[2].status, RepairStatus::kKept);  // rejected alone, kept with the group
  EXPECT_EQ(o[3].status, RepairStatus::kNotTried);
  EXPECT_EQ(o[4].status, RepairStatus::kNotTried);  // not a weight finding
  EXPECT_TRUE(step_names(smallest, fs[2], 1));
  EXPECT_FALSE(step_names(smallest, fs[0], 1));
  EXPECT_FALSE(step_names(group, fs[0], 2));
}

// Group and JOINT steps name their members by id; a PP preset undone later is not kept.
TEST(FindingOutcomes, GroupsAndJointStepsNameTheirMembersAndARevertUndoesAKeptPreset) {
  std::vector<Finding> fs{finding(FaultType::kLH, "clip1", "max 6 missing (Clip 'clip1')"),
                          finding(FaultType::kLH, "clip1", "min 0 missing (Clip 'clip1')"),
                          finding(FaultType::kID, "", "input shape"), finding(FaultType::kTSS, "t0", "transpose"),
                          finding(FaultType::kPP, "", "preset tf")};
  repair::RepairStep lh;
  lh.round = 1;
  lh.kind = repair::StepKind::kGroup;
  lh.type = FaultType::kLH;
  lh.kept = true;
  lh.target_nodes = {"clip1"};
  lh.finding_summaries = {"max 6 missing (Clip 'clip1')"};
  lh.finding_ids = {fs[0].id};
  repair::RepairStep joint;
  joint.round = 1;
  joint.kind = repair::StepKind::kJoint;
  joint.kept = true;
  joint.finding_summaries = {"input shape", "transpose"};
  joint.finding_ids = {fs[2].id, fs[3].id};
  repair::RepairStep pp;
  pp.round = 1;
  pp.type = FaultType::kPP;
  pp.kept = true;
  pp.finding_ids = {fs[4].id};
  repair::RepairStep revert = pp;
  revert.round = 2;  // undone a round later
  revert.reverts = true;
  revert.description = "PP: back to the Target's own preset 'raw' instead of 'tf'";
  repair::RepairResult r;
  r.steps = {pp, lh, joint, revert};
  const auto o = finding_outcomes(fs, &r, 1);
  EXPECT_EQ(o[0].status, RepairStatus::kKept);
  EXPECT_NE(o[1].status, RepairStatus::kKept);  // same node, another summary: not in the group
  EXPECT_EQ(o[2].status, RepairStatus::kKept);
  EXPECT_EQ(o[3].status, RepairStatus::kKept);
  EXPECT_EQ(o[4].status, RepairStatus::kRejected);
  EXPECT_NE(o[4].reason.find("undone"), std::string::npos) << o[4].reason;
}

TEST(Report, FindingsOfEveryRoundAppearGroupedByRound) {
  const repair::RepairResult r = testing::two_round_repair();
  auto html = render_report(testing::two_round_input(r));
  ASSERT_TRUE(html.ok()) << html.error().message;
  // Four cards, under one heading per round; the round-2 finding is there, escaped.
  EXPECT_EQ(count(*html, "<details class=\"finding "), 4u);
  const size_t h1 = html->find("id=\"findings-round-1\""), h2 = html->find("id=\"findings-round-2\"");
  ASSERT_NE(h1, std::string::npos);
  ASSERT_NE(h2, std::string::npos);
  const size_t card4 = html->find("id=\"finding-4\"");
  ASSERT_NE(card4, std::string::npos);
  EXPECT_LT(h1, h2);
  EXPECT_LT(h2, card4);
  EXPECT_NE(html->find("CG: &lt;relu4&gt; only in round two"), std::string::npos);
  EXPECT_NE(html->find("no harmless differences · 1 finding in round 2"), std::string::npos);
  // Outcomes: the group's findings and the round-2 finding kept, the LH edit screened out.
  auto status_of = [&](int n) {
    const size_t at = html->find(fmt::format("id=\"finding-{}\"", n));
    const size_t s = html->find("data-status=\"", at) + 13;
    return html->substr(s, html->find('"', s) - s);
  };
  EXPECT_EQ(status_of(1), "kept");
  EXPECT_EQ(status_of(2), "kept");
  EXPECT_EQ(status_of(3), "rejected");
  EXPECT_EQ(status_of(4), "kept");
  EXPECT_NE(html->find("screened out: no drop on the 3 screening images"), std::string::npos);
  // The steps table links the group to both its findings, shows "screened out", and the
  // evaluation counts are there.
  EXPECT_NE(html->find("<a href=\"#finding-1\">findings 1</a>, <a href=\"#finding-2\">2</a>"), std::string::npos);
  EXPECT_NE(html->find("<span class=\"badge b-screened\">screened out</span>"), std::string::npos);
  EXPECT_NE(html->find("<b>7</b> full · <b>5</b> partial"), std::string::npos);
  EXPECT_NE(html->find("1 rejected, 1 of them screened out"), std::string::npos);
  // Which images changed comes from the repair's per-image flags: three fixed, none new.
  EXPECT_NE(html->find("3 fixed"), std::string::npos);
  EXPECT_NE(html->find("0 newly disagree"), std::string::npos);
  EXPECT_NE(html->find("a.png"), std::string::npos);
  EXPECT_EQ(html->find("c.png"), std::string::npos);
  EXPECT_EQ(count(*html, "<div class=\"thumb\" title="), 3u);
}

localize::LayerReplay replayed(const std::string& node, int rank, localize::ReplayStatus status, double relative_l2) {
  localize::LayerReplay l;
  l.source_node = node;
  l.target_node = "t_" + node;
  l.rank = rank;
  l.error.status = status;
  l.error.relative_l2 = relative_l2;
  l.error.exceeds_tolerance = status == localize::ReplayStatus::kOutputShapeDiffers || relative_l2 > 1e-5;
  return l;
}

// A localization whose replay ranks conv3 (shape changed) and conv1 above the tolerance and
// conv2 at 0, while the activation analysis ranks conv2 first.
localize::LocalizeResult replay_ranked_localization() {
  localize::LocalizeResult loc;
  loc.findings = {finding(FaultType::kWB, "conv1", "WB: conv1 weights differ")};
  loc.replay.tolerance = 1e-5;
  loc.replay.images = 32;
  loc.replay.ranked = {replayed("conv3", 0, localize::ReplayStatus::kOutputShapeDiffers, 0),
                       replayed("conv1", 1, localize::ReplayStatus::kMeasured, 0.25),
                       replayed("conv2", 2, localize::ReplayStatus::kMeasured, 0)};
  for (const auto& [node, rank] : std::vector<std::pair<std::string, int>>{{"conv2", 0}, {"conv1", 1}, {"conv3", 2}}) {
    localize::LayerScore l;
    l.source_node = node;
    l.target_node = "t_" + node;
    l.rank = rank;
    l.problematic_fraction = 0.5 / (rank + 1);
    loc.activation.ranked.push_back(l);
  }
  loc.activation.repeats = 1;
  return loc;
}

TEST(Report, LocalReplayRankingIsShownInTheRankingSection) {
  const localize::LocalizeResult loc = replay_ranked_localization();
  ReportInput in = testing::input_without_images("localize");
  in.localization = &loc;
  auto html = render_report(in);
  ASSERT_TRUE(html.ok()) << html.error().message;
  const size_t replay = html->find("By layer-local replay"), activation = html->find("By activation analysis");
  ASSERT_NE(replay, std::string::npos);
  ASSERT_NE(activation, std::string::npos);
  EXPECT_LT(replay, activation);
  // The replay chart lists the two layers above the tolerance in replay order, the changed
  // shape first; conv2 (error 0) is only in the activation chart, where it comes first.
  const std::string replay_part = html->substr(replay, activation - replay);
  const size_t conv3 = replay_part.find(">1. conv3<"), conv1 = replay_part.find(">2. conv1<");
  ASSERT_NE(conv3, std::string::npos);
  ASSERT_NE(conv1, std::string::npos);
  EXPECT_LT(conv3, conv1);
  EXPECT_EQ(replay_part.find("conv2"), std::string::npos);
  EXPECT_NE(replay_part.find("output shape differs"), std::string::npos);
  EXPECT_NE(replay_part.find("2 of 3 layers above the tolerance"), std::string::npos);
  EXPECT_EQ(count(replay_part, "class=\"bar fault\""), 1u);  // conv1 carries the WB fault
  EXPECT_NE(html->substr(activation).find(">1. conv2<"), std::string::npos);

  // A repair's summary for the Model Explorer keeps the replay ranking of its first ranked round.
  repair::RepairResult r;
  r.localizations = {localize::LocalizeResult{}, loc};
  const auto summary = repair_localization_summary(r);
  ASSERT_EQ(summary.replay.ranked.size(), 3u);
  EXPECT_EQ(summary.replay.ranked.front().source_node, "conv3");
}

TEST(Report, EachFindingsImpactIsShownOnItsCard) {
  localize::LocalizeResult loc;
  localize::Finding weights = finding(FaultType::kWB, "conv1", "WB: conv1 weights differ");
  weights.impact.basis = "reverted_with_group";
  weights.impact.outcome_changes = 3;
  weights.impact.samples = 20;
  weights.impact.reverted_with = {"wb-2"};
  weights.impact.distance_change = -0.25;
  localize::Finding pads = finding(FaultType::kLH, "conv2", "LH: conv2 pads differ");
  pads.impact.basis = "reverted_alone";
  pads.impact.outcome_changes = 0;
  pads.impact.samples = 20;
  pads.impact.relative_l2 = 0.5;
  pads.impact.max_abs_diff = 1.5;
  loc.findings = {weights, pads, finding(FaultType::kWB, "conv3", "WB: conv3 weights differ")};
  ReportInput in = testing::input_without_images("localize");
  in.localization = &loc;
  auto html = render_report(in);
  ASSERT_TRUE(html.ok()) << html.error().message;
  EXPECT_NE(html->find("<b>Impact:</b> reverting it with 1 other(s) changes 3 of 20 outcomes, distance -0.25"),
            std::string::npos);
  EXPECT_NE(html->find("<b>Impact:</b> reverting it alone changes 0 of 20 outcomes; relative L2 0.5, max |diff| 1.5"),
            std::string::npos);
  EXPECT_EQ(count(*html, "<b>Impact:</b>"), 2u);  // conv3's impact was not measured: no line
}

class ReportFromRepair : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& run = testing::repair_run();
    ASSERT_GT(run.repair.initial_disagreeing, 0u);
    ASSERT_FALSE(run.repair.localizations.empty());
    ASSERT_FALSE(run.repair.localizations.front().findings.empty());
    auto html = render_report(run.input());
    ASSERT_TRUE(html.ok()) << html.error().message;
    html_ = std::move(html).value();
  }
  std::string html_;
};

TEST_F(ReportFromRepair, HasEverySectionAndTheRunsNumbers) {
  const auto& run = testing::repair_run();
  for (const char* id : {"summary", "history", "ranking", "findings", "images", "patch", "notes"})
    EXPECT_NE(html_.find(fmt::format("<section id=\"{}\" data-section=\"{}\">", id, id)), std::string::npos) << id;
  const size_t n = run.repair.images;
  EXPECT_NE(html_.find(fmt::format("{} of {} images disagree on top-1", run.repair.initial_disagreeing, n)), std::string::npos);
  EXPECT_NE(html_.find(percent(double(run.repair.initial_disagreeing) / n)), std::string::npos);
  EXPECT_NE(html_.find(fmt::format("{} of {} images", run.repair.final_disagreeing, n)), std::string::npos);
  // Figure 4: one point for the start and one per kept step.
  size_t kept = 0;
  for (const auto& s : run.repair.steps) kept += s.kept;
  const size_t history_start = html_.find("<svg class=\"chart line\"");
  ASSERT_NE(history_start, std::string::npos);
  const std::string history = html_.substr(history_start, html_.find("</svg>", history_start) - history_start);
  EXPECT_EQ(count(history, "<circle"), kept + 1);
  // One card per finding (every round's), each with its summary, escaped.
  EXPECT_EQ(count(html_, "<details class=\"finding "), run.finding_cards());
  for (const auto& l : run.repair.localizations)
    for (const auto& f : l.findings) EXPECT_NE(html_.find(escape(f.summary)), std::string::npos) << f.summary;
  // Every kept step's findings are marked kept.
  size_t kept_cards = count(html_, "data-status=\"kept\"");
  EXPECT_GE(kept_cards, 1u);
  // The LH fault on the depthwise conv is shown side by side with its pads highlighted.
  EXPECT_NE(html_.find("<table class=\"sbs\">"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"a diff fault\"><i>pads</i> [1,1,1,1]</span>"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"a diff absent fault\"><i>pads</i> absent</span>"), std::string::npos);
  // The first ranking: a bar per layer above the replay's tolerance, then one per layer the
  // activation analysis ranked (the CNN has fewer than the charts' limit).
  if (const auto* loc = run.first_ranking()) {
    size_t ranked = 0;
    for (const auto& l : loc->activation.ranked) ranked += l.rank >= 0;
    const auto chart_after = [&](const std::string& heading) {
      const size_t start = html_.find("<svg class=\"chart hbar\"", html_.find(heading));
      return start == std::string::npos ? std::string() : html_.substr(start, html_.find("</svg>", start) - start);
    };
    ASSERT_NE(html_.find("By activation analysis"), std::string::npos);
    EXPECT_EQ(count(chart_after("By activation analysis"), "class=\"bar "), ranked);
    const size_t exceeding = loc->replay.exceeding().size();
    if (exceeding > 0) EXPECT_EQ(count(chart_after("By layer-local replay"), "class=\"bar "), exceeding);
  } else {
    EXPECT_NE(html_.find("No ranking: "), std::string::npos);
  }
  // A row (with a thumbnail) per image that disagreed before or after, from the repair's own flags.
  size_t rows = 0;
  for (size_t i = 0; i < run.repair.image_files.size(); ++i) rows += !run.repair.initial_agree[i] || !run.repair.final_agree[i];
  EXPECT_GT(rows, 0u);
  EXPECT_EQ(count(html_, "<img class=\"thumb\" loading=\"lazy\""), rows);
  EXPECT_EQ(count(html_, "src=\"data:image/jpeg;base64,"), rows);
  // The patch: one line per edit.
  EXPECT_EQ(count(html_, "<span class=\"kind\">"), run.repair.patch.edits.size());
  // The model label with markup in it is escaped everywhere.
  EXPECT_EQ(html_.find("target <converted>"), std::string::npos);
  EXPECT_NE(html_.find("target &lt;converted&gt;.onnx"), std::string::npos);
}

TEST_F(ReportFromRepair, IsSelfContained) {
  for (const char* external : {"src=\"http", "href=\"http", "src='http", "<link", "@import", "url(", "<iframe", "<object"})
    EXPECT_EQ(html_.find(external), std::string::npos) << external;
  // The only absolute URL is SVG's namespace name, which is never fetched.
  std::regex url("https?://[^\"'\\s<]+");
  for (auto it = std::sregex_iterator(html_.begin(), html_.end(), url); it != std::sregex_iterator(); ++it)
    EXPECT_EQ(it->str(), "http://www.w3.org/2000/svg");
  EXPECT_NE(html_.find("Content-Security-Policy"), std::string::npos);
}

TEST_F(ReportFromRepair, SameInputSameBytes) {
  auto again = render_report(testing::repair_run().input());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, html_);
}

TEST(Report, CompareOnlyReportListsTheImagesAndEscapesFileNames) {
  compare::CompareResult c;
  c.summary.images_found = c.summary.images_compared = 2;
  c.summary.disagreeing = 1;
  c.summary.discrepancy = 0.5;
  c.summary.top_k = 2;
  compare::ImageRecord bad;
  bad.file = "<img src=x onerror=alert(1)>.png";
  bad.source = {{3, 1}, {0.7f, 0.2f}};
  bad.target = {{1, 3}, {0.6f, 0.3f}};
  bad.target_in_source = {1, 3};
  bad.agree = false;
  compare::ImageRecord good = bad;
  good.file = "ok.png";
  good.target = bad.source;
  good.target_in_source = {3, 1};
  good.agree = true;
  c.records = {bad, good};
  ReportInput in = testing::input_without_images("compare");
  in.before = &c;
  in.exit_code = 1;
  auto html = render_report(in);
  ASSERT_TRUE(html.ok()) << html.error().message;
  EXPECT_EQ(html->find("<img src=x"), std::string::npos);
  EXPECT_NE(html->find("&lt;img src=x onerror=alert(1)&gt;.png"), std::string::npos);
  EXPECT_NE(html->find("some images disagree"), std::string::npos);
  EXPECT_NE(html->find("1 of 2 images disagree on top-1"), std::string::npos);
  EXPECT_NE(html->find("<section id=\"images\""), std::string::npos);
  EXPECT_EQ(html->find("<section id=\"history\""), std::string::npos);  // nothing was repaired
  EXPECT_EQ(html->find("<section id=\"findings\""), std::string::npos);
  // The image that agrees is not listed; the missing file leaves a placeholder, not a broken image.
  EXPECT_EQ(html->find("ok.png"), std::string::npos);
  EXPECT_EQ(count(*html, "<img class=\"thumb\" loading=\"lazy\""), 0u);
  EXPECT_EQ(count(*html, "<div class=\"thumb\" title="), 1u);
}

TEST(ModelExplorer, MappingPairsEveryMatchedLayerAndNodeDataNamesRealNodes) {
  const auto& run = testing::repair_run();
  // What `repair --model-explorer` writes: round 1's matching, the first ranking, every finding.
  const auto loc = repair_localization_summary(run.repair);
  ASSERT_FALSE(loc.matching.pairs.empty());
  EXPECT_GE(loc.findings.size(), run.repair.localizations.front().findings.size());
  const auto mapping = model_explorer_mapping(loc.matching);
  ASSERT_EQ(mapping["mappingEntries"].size(), loc.matching.pairs.size());
  for (size_t i = 0; i < loc.matching.pairs.size(); ++i) {
    EXPECT_EQ(mapping["mappingEntries"][i]["leftNodeIds"][0], loc.matching.pairs[i].source_node);
    EXPECT_EQ(mapping["mappingEntries"][i]["rightNodeIds"][0], loc.matching.pairs[i].target_node);
  }
  const auto data = model_explorer_node_data(run.source, run.target, loc, loc.findings);
  ASSERT_EQ(data.size(), 6u);
  const std::string graph = run.source.graph().name();
  ASSERT_FALSE(graph.empty());
  for (const auto& d : data) {
    ASSERT_TRUE(d.json.contains(graph)) << d.file;
    const auto& g = d.json[graph];
    ASSERT_TRUE(g.contains("results")) << d.file;
    EXPECT_TRUE(g.contains("gradient") || g.contains("thresholds")) << d.file;
    const auto& model = d.file.rfind("source", 0) == 0 ? run.source : run.target;
    for (const auto& [node, result] : g["results"].items()) {
      EXPECT_TRUE(model::find_node(model.graph(), node).has_value()) << d.file << ": " << node;
      EXPECT_TRUE(result["value"].is_number()) << d.file;
    }
  }
  // The ranked layers all carry a problematic share, in percent.
  size_t ranked = 0;
  for (const auto& l : loc.activation.ranked) ranked += l.rank >= 0;
  EXPECT_EQ(data[0].json[graph]["results"].size(), ranked);

  const fs::path dir = fetafix::testing::temp_dir("report_model_explorer") / "me";
  auto files = write_model_explorer_files(dir, run.source, run.target, loc, loc.findings);
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->size(), 7u);
  for (const auto& f : *files) EXPECT_FALSE(nlohmann::json::parse(fetafix::testing::slurp(f), nullptr, false).is_discarded());
}

}  // namespace
}  // namespace fetafix::report
