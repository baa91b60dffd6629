#include "localize/localize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iterator>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "compare/pair_setup.h"
#include "localize/checks/check.h"
#include "localize/sample_feeds.h"
#include "model/builder.h"
#include "runtime/session.h"  // Rng: the seeded sampler every run reproduces

namespace fetafix::localize {
namespace fs = std::filesystem;

size_t LocalizeResult::fault_count() const { return verdict_count(Verdict::kFault); }

size_t LocalizeResult::verdict_count(Verdict v) const {
  return static_cast<size_t>(
      std::count_if(findings.begin(), findings.end(), [v](const Finding& f) { return f.verdict == v; }));
}

namespace {

class PhaseTimer {
 public:
  explicit PhaseTimer(std::vector<PhaseTime>& out) : out_(out) {}
  void mark(const std::string& phase) {
    auto now = std::chrono::steady_clock::now();
    out_.push_back({phase, std::chrono::duration<double>(now - last_).count()});
    last_ = now;
  }

 private:
  std::vector<PhaseTime>& out_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

int type_order(FaultType t) { return static_cast<int>(t); }

// Faults first, then harmless differences, equivalent ones and notes (Verdict's order).
void sort_findings(std::vector<Finding>& findings) {
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    if (a.verdict != b.verdict) return static_cast<int>(a.verdict) < static_cast<int>(b.verdict);
    if (a.type() != b.type()) return type_order(a.type()) < type_order(b.type());
    const int ra = a.layer_rank < 0 ? INT32_MAX : a.layer_rank, rb = b.layer_rank < 0 ? INT32_MAX : b.layer_rank;
    return ra < rb;
  });
}

}  // namespace

void assign_verdicts(std::vector<Finding>& findings, size_t disagreeing, size_t compared) {
  for (auto& f : findings) {
    if (const auto* wb = std::get_if<WeightsEvidence>(&f.evidence)) f.impact.max_abs_diff = wb->max_abs_diff;
    if (disagreeing == 0) {
      f.impact.outcome_changes = 0;
      f.impact.samples = compared;
      f.impact.basis = "no_sample_disagrees";
    } else {
      f.impact.outcome_changes.reset();
      f.impact.samples = 0;
      f.impact.basis = "not_measured";
    }
    if (f.verdict == Verdict::kNote) continue;  // set by its check: not a fault whatever the data says
    f.verdict = f.equivalence == Equivalence::kEquivalent ? Verdict::kEquivalent
                : disagreeing == 0                        ? Verdict::kHarmless
                                                          : Verdict::kFault;
  }
}

std::vector<size_t> seeded_subset(std::vector<size_t> indices, size_t keep, uint64_t seed) {
  if (indices.size() > keep) {
    Rng rng(seed);
    for (size_t i = indices.size() - 1; i > 0; --i) std::swap(indices[i], indices[rng.next_u64() % (i + 1)]);
    indices.resize(keep);
    std::sort(indices.begin(), indices.end());
  }
  return indices;
}

std::pair<std::vector<size_t>, std::vector<size_t>> split_by_agreement(const DetectionView& view) {
  std::pair<std::vector<size_t>, std::vector<size_t>> out;
  for (size_t i = 0; i < view.files.size(); ++i)
    if (view.usable[i]) (view.agree[i] ? out.first : out.second).push_back(i);
  return out;
}

namespace {

// Runs the checks of `stage` in the order of the Evidence variant (finding.h), appending what
// they find: a new kind of evidence is run by being there.
template <size_t I = 0>
Status run_checks(CheckStage stage, const CheckContext& context, std::vector<Finding>& out) {
  if constexpr (I < std::variant_size_v<Evidence>) {
    using Kind = std::variant_alternative_t<I, Evidence>;
    if (Kind::kStage == stage) {
      FETAFIX_ASSIGN_OR_RETURN(auto found, Kind::run(context));
      for (auto& f : found) out.push_back(std::move(f));
    }
    return run_checks<I + 1>(stage, context, out);
  } else {
    return {};
  }
}

// Shapes resolve auto_pad=SAME_* into pads: one run of each model on the sample photo, unless the
// caller gave them.
LayerCheckOptions layer_check_options(const compare::ModelSide& source, const compare::ModelSide& target,
                                      const DetectionView& view, size_t first_ok, const LocalizeOptions& options,
                                      std::vector<std::string>& notes) {
  LayerCheckOptions lo = options.layer_checks;
  if (!lo.source_shapes.empty() && !lo.target_shapes.empty()) return lo;
  auto one = feed_samples(source, target, view, {first_ok});
  if (!one.ok()) {
    notes.push_back("value shapes unavailable: " + one.error().message);
    return lo;
  }
  auto s = runtime::observe_value_shapes(*source.model, one->source, options.compare.threads, source.label);
  auto t = runtime::observe_value_shapes(*target.model, one->target, options.compare.threads, target.label);
  if (s.ok() && t.ok()) {
    for (const auto& [name, info] : *s) lo.source_shapes[name] = info.shape;
    for (const auto& [name, info] : *t) lo.target_shapes[name] = info.shape;
  } else {
    notes.push_back("value shapes unavailable: " + (!s.ok() ? s.error().message : t.error().message));
  }
  return lo;
}

// The images each ranking takes, both ascending. The activation analysis: a bounded, seeded
// subset (every dissimilar image up to the option's count, and enough similar ones for every
// repeat to draw a fresh sample). Layer-local replay: up to options.replay_images disagreeing
// images (the error a layer adds by itself does not depend on labels, and a few dozen give
// stable numbers), the analysis' dissimilar ones first, so that one decode feeds both (`fed`).
struct RankingSamples {
  std::vector<size_t> similar, dissimilar;  // of the analysis
  std::vector<size_t> analysis, replay, fed;
};

RankingSamples ranking_samples(const std::vector<size_t>& similar, const std::vector<size_t>& dissimilar,
                               const LocalizeOptions& options) {
  const auto& ao = options.activation;
  RankingSamples out;
  out.dissimilar = seeded_subset(dissimilar, ao.max_dissimilar, ao.seed);
  out.similar = seeded_subset(similar, ao.max_similar * static_cast<size_t>(std::max(ao.repeats, 1)), ao.seed + 1);
  std::set_union(out.similar.begin(), out.similar.end(), out.dissimilar.begin(), out.dissimilar.end(),
                 std::back_inserter(out.analysis));
  const uint64_t seed = ao.seed + 2;
  if (options.replay_images <= out.dissimilar.size()) {
    out.replay = seeded_subset(out.dissimilar, options.replay_images, seed);
  } else {
    std::vector<size_t> rest;
    std::set_difference(dissimilar.begin(), dissimilar.end(), out.dissimilar.begin(), out.dissimilar.end(),
                        std::back_inserter(rest));
    rest = seeded_subset(std::move(rest), options.replay_images - out.dissimilar.size(), seed);
    std::set_union(out.dissimilar.begin(), out.dissimilar.end(), rest.begin(), rest.end(),
                   std::back_inserter(out.replay));
  }
  std::set_union(out.analysis.begin(), out.analysis.end(), out.replay.begin(), out.replay.end(),
                 std::back_inserter(out.fed));
  return out;
}

// Layer-local replay on samples.replay. A model the replay cannot run (or samples that could not
// be fed) leaves a note, not an error: the checks' findings stand without it.
LocalReplay replay_layers(const compare::ModelSide& source, const compare::ModelSide& target,
                          const RankingSamples& samples, const Result<SampleInputs>& fed,
                          const LocalizeOptions& options, LocalizeResult& r) {
  LocalReplay replay;
  if (options.replay_images == 0) replay.skipped_reason = "turned off";
  else if (samples.replay.empty()) replay.skipped_reason = "no image disagrees";
  else if (r.matching.pairs.empty()) replay.skipped_reason = "no core layer was matched";
  if (!replay.skipped_reason.empty()) return replay;
  if (declared_inputs(*source.model).size() != 1 || declared_inputs(*target.model).size() != 1) {
    replay.skipped_reason = "it feeds models with one input; these have several";
    r.notes.push_back("local replay skipped: " + replay.skipped_reason);
    return replay;
  }
  ReplayOptions ro = options.replay;
  if (ro.threads == 0) ro.threads = options.compare.threads;
  const auto replay_fed = [&]() -> Result<LocalReplay> {
    const SampleInputs in = rows_of(*fed, samples.fed, samples.replay);
    return replay_matched_layers(*source.model, *target.model, r.matching.pairs, in.source.at(0), in.target.at(0), ro);
  };
  auto run = fed.ok() ? replay_fed() : Result<LocalReplay>(fed.error());
  if (run.ok()) return std::move(run).value();
  replay.skipped_reason = "failed: " + run.error().message;
  r.notes.push_back("local replay " + replay.skipped_reason);
  return replay;
}

// The activation analysis of samples.analysis into r.activation; an error only where the
// analysis cannot run on images fed to one input (elsewhere a note says why it did not).
Status analyse_layers(const compare::ModelSide& source, const compare::ModelSide& target, const DetectionView& view,
                      const RankingSamples& samples, const SampleInputs& fed, const LocalizeOptions& options,
                      LocalizeResult& r) {
  const SampleInputs in = rows_of(fed, samples.fed, samples.analysis);
  std::vector<bool> agree;
  for (size_t i : samples.analysis) agree.push_back(view.agree[i]);
  ActivationAnalysisOptions ao = options.activation;
  if (ao.threads == 0) ao.threads = options.compare.threads;
  auto analysis =
      analyze_layer_activations(*source.model, *target.model, r.matching.pairs, in.source, in.target, agree, ao);
  if (!analysis.ok() && single_image_input(view, *source.model, *target.model)) return analysis.error();
  if (analysis.ok()) r.activation = std::move(analysis).value();
  else r.activation.skipped_reason = "failed: " + analysis.error().message;
  if (!analysis.ok()) r.notes.push_back("activation analysis " + r.activation.skipped_reason);
  if (r.activation.timed_out) r.notes.push_back("activation analysis stopped: " + r.activation.skipped_reason);
  return {};
}

}  // namespace

Result<LocalizeResult> localize_faults(const compare::ModelSide& source, const compare::ModelSide& target,
                                       const fs::path& image_dir, const LocalizeOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto samples, compare::open_samples(image_dir, options.compare));
  return localize_faults(source, target, std::move(samples), options);
}

Result<LocalizeResult> localize_faults(const compare::ModelSide& source, const compare::ModelSide& target,
                                       data::SampleSet samples, const LocalizeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  DetectionView view;
  view.image_dir = samples.dir();
  view.samples = std::move(samples);
  FETAFIX_ASSIGN_OR_RETURN(auto detection, compare::compare_models(source, target, view.samples, options.compare));
  const double detection_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& f : view.samples.files()) view.files.push_back(f.path);
  if (view.files.size() != detection.records.size())
    return make_error("{}: {} samples listed but {} compared", view.image_dir.string(), view.files.size(),
                      detection.records.size());
  for (const auto& rec : detection.records) {
    view.usable.push_back(rec.error.empty());
    view.agree.push_back(rec.agree);
  }
  view.source_preset = detection.source_preset;
  view.target_preset = detection.target_preset;
  FETAFIX_ASSIGN_OR_RETURN(auto r, localize_detected(source, target, view, options));
  r.detection = std::move(detection);
  r.timings.insert(r.timings.begin(), PhaseTime{"detection", detection_seconds});
  return r;
}

Result<ActivationAnalysisOptions::Aggregation> aggregation_from_name(std::string_view name) {
  using Aggregation = ActivationAnalysisOptions::Aggregation;
  static const std::map<std::string, Aggregation, std::less<>> kAggregations{
      {"borda", Aggregation::kBorda}, {"mean", Aggregation::kMeanFraction}, {"max", Aggregation::kMaxFraction}};
  const auto it = kAggregations.find(name);
  if (it == kAggregations.end()) return make_error("aggregation '{}': expected borda, mean or max", name);
  return it->second;
}

void set_core_ops(LocalizeOptions& options, const std::vector<std::string>& ops) {
  options.match.core_ops = {ops.begin(), ops.end()};
  options.layer_checks.core_ops = options.match.core_ops;
}

Result<LocalizeResult> localize_detected(const compare::ModelSide& source, const compare::ModelSide& target,
                                         const DetectionView& view, const LocalizeOptions& options,
                                         const LocalizeStages& stages) {
  LocalizeResult r;
  r.source_label = source.label;
  r.target_label = target.label;
  PhaseTimer timer(r.timings);
  const auto& files = view.files;
  r.disagreeing = split_by_agreement(view).second.size();
  CheckContext context{source, target, view, options, stages};
  context.preprocessing = &r.preprocessing;
  context.notes = &r.notes;
  std::vector<Finding> findings;
  FETAFIX_TRY_STATUS(run_checks(CheckStage::kInput, context, findings));
  timer.mark("input checks");

  FETAFIX_ASSIGN_OR_RETURN(r.matching, match::match_models(*source.model, *target.model, options.match));
  context.matching = &r.matching;
  timer.mark("matching");

  // One decoded photo for the checks that run the models.
  size_t first_ok = 0;
  while (first_ok < files.size() && !view.usable[first_ok]) ++first_ok;
  if (first_ok == files.size()) return make_error("no sample could be decoded");
  std::optional<data::Image> sample_image;
  if (single_image_input(view, *source.model, *target.model)) {
    FETAFIX_ASSIGN_OR_RETURN(auto first, view.samples.decode(first_ok));
    sample_image = std::move(first.image);
    context.sample_image = &*sample_image;
  }
  FETAFIX_TRY_STATUS(run_checks(CheckStage::kStructure, context, findings));
  timer.mark("structure check");

  // Layer-based checks over every matched pair (ranked afterwards when the ranking runs).
  const LayerCheckOptions layer_options = layer_check_options(source, target, view, first_ok, options, r.notes);
  context.layer_options = &layer_options;
  std::vector<Finding> layer_findings;
  FETAFIX_TRY_STATUS(run_checks(CheckStage::kLayer, context, layer_findings));
  timer.mark("layer checks");

  // Equivalence filter on a few real photos.
  std::vector<size_t> probes;
  for (size_t i = 0; i < files.size() && probes.size() < options.probe_images; ++i)
    if (view.usable[i]) probes.push_back(i);
  FETAFIX_ASSIGN_OR_RETURN(auto probe, feed_samples(source, target, view, probes));
  EquivalenceOptions eo = options.equivalence;
  if (options.compare.threads > 0) eo.threads = options.compare.threads;
  if (probe.source.size() == 1 && probe.target.size() == 1) {
    FETAFIX_TRY_STATUS(filter_equivalent(*source.model, *target.model, layer_findings, probe.source[0],
                                         probe.target[0], eo, r.matching.pairs));
  } else if (!layer_findings.empty()) {
    // The equivalence replay feeds models with one input (local_replay.h); findings stay unchecked.
    r.notes.push_back("equivalence check skipped: it feeds models with one input; these have several");
  }
  for (auto& f : layer_findings) findings.push_back(std::move(f));
  timer.mark("equivalence filter");
  const size_t compared = static_cast<size_t>(std::count(view.usable.begin(), view.usable.end(), true));
  assign_verdicts(findings, r.disagreeing, compared);

  r.findings = std::move(findings);
  if (stages.activation_analysis) {
    FETAFIX_TRY_STATUS(rank_layers(source, target, view, options, r));
  } else {
    r.activation.skipped_reason = r.replay.skipped_reason = "not run in this stage";
    sort_findings(r.findings);
  }
  return r;
}

Status rank_layers(const compare::ModelSide& source, const compare::ModelSide& target, const DetectionView& view,
                   const LocalizeOptions& options, LocalizeResult& r) {
  PhaseTimer timer(r.timings);
  const auto [similar, dissimilar] = split_by_agreement(view);
  const RankingSamples samples = ranking_samples(similar, dissimilar, options);
  const bool analyse = !samples.dissimilar.empty() && samples.similar.size() >= 2 && !r.matching.pairs.empty();
  Result<SampleInputs> fed = make_error("no sample to feed");
  if (analyse || (!samples.replay.empty() && !r.matching.pairs.empty()))
    fed = feed_samples(source, target, view, samples.fed);
  r.activation = {};
  if (analyse) {
    if (!fed.ok()) return fed.error();
    FETAFIX_TRY_STATUS(analyse_layers(source, target, view, samples, *fed, options, r));
  } else {
    r.activation.skipped_reason = dissimilar.empty() ? "no image disagrees"
                                  : similar.size() < 2 ? "fewer than two images agree"
                                                       : "no core layer was matched";
    r.notes.push_back("activation analysis skipped: " + r.activation.skipped_reason);
  }
  timer.mark("activation analysis");
  r.replay = replay_layers(source, target, samples, fed, options, r);
  const auto order = layer_order(r.replay, r.activation);
  for (auto& f : r.findings) {
    if (is_input_level(f.type())) continue;
    auto it = order.find(f.source_node);
    f.layer_rank = it == order.end() ? -1 : it->second;
  }
  sort_findings(r.findings);
  timer.mark("local replay");
  return {};
}

namespace {

int replay_rank(const LocalReplay& replay, const std::string& source_node) {
  const LayerReplay* l = source_node.empty() ? nullptr : replay.find(source_node);
  return l ? l->rank : -1;
}

int activation_rank(const ActivationAnalysis& activation, const std::string& source_node) {
  for (const auto& l : activation.ranked)
    if (!source_node.empty() && l.source_node == source_node) return l.rank;
  return -1;
}

// The first `count` ranked layers whose replay error is not zero (the suspects named when no
// check explains the disagreement).
std::vector<const LayerReplay*> largest_replay_errors(const LocalReplay& replay, size_t count) {
  std::vector<const LayerReplay*> out;
  for (const auto& l : replay.ranked)
    if (out.size() < count && l.rank >= 0 && l.error.severity() > 0) out.push_back(&l);
  return out;
}

std::string replay_error_text(const RegionError& e) {
  if (e.status != ReplayStatus::kMeasured) return std::string(replay_status_name(e.status));
  if (e.nan_mismatches > 0) return fmt::format("NaN on one side at {} elements", e.nan_mismatches);
  if (std::isinf(e.relative_l2)) return "relative L2 error inf (Source all zero)";
  return fmt::format("relative L2 error {:.3g}, max |diff| {:.3g}", e.relative_l2, e.max_abs_error);
}

std::string format_replay(const LocalReplay& replay, size_t max_listed) {
  if (!replay.skipped_reason.empty()) return fmt::format("Local replay skipped: {}\n", replay.skipped_reason);
  const auto exceeding = replay.exceeding();
  std::string out = fmt::format(
      "Layer ranking by local replay (the error each layer adds by itself, on {} disagreeing images; "
      "{} of {} layers above {:g}):\n",
      replay.images, exceeding.size(), replay.ranked.size(), replay.tolerance);
  for (size_t i = 0; i < std::min(max_listed, exceeding.size()); ++i)
    out += fmt::format("  {:>2}. {} <-> {}  {}\n", exceeding[i]->rank + 1, exceeding[i]->source_node,
                       exceeding[i]->target_node, replay_error_text(exceeding[i]->error));
  if (exceeding.size() > max_listed) out += fmt::format("      ({} more above the tolerance)\n", exceeding.size() - max_listed);
  return out;
}

std::string format_unexplained(const LocalizeResult& r) {
  std::string out = fmt::format("Disagreement not explained by any check: {} image(s) disagree, no finding is a fault.\n",
                                r.disagreeing);
  const auto suspects = largest_replay_errors(r.replay, 3);
  if (suspects.empty()) {
    out += r.replay.skipped_reason.empty() ? "  Local replay found no layer that adds error by itself.\n"
                                           : fmt::format("  Local replay skipped: {}\n", r.replay.skipped_reason);
    return out;
  }
  out += "  Layers with the largest local replay error:\n";
  for (const LayerReplay* l : suspects)
    out += fmt::format("    {} <-> {}  {}{}\n", l->source_node, l->target_node, replay_error_text(l->error),
                       l->error.exceeds_tolerance ? "" : " (within the tolerance)");
  return out;
}

// What a section of non-faults is, as its header says it.
std::string verdict_header(Verdict v, size_t count) {
  switch (v) {
    case Verdict::kFault: return "";
    case Verdict::kHarmless:
      return fmt::format("Differences harmless on these samples (no sample disagrees; not faults) ({}):\n", count);
    case Verdict::kEquivalent:
      return fmt::format("Differences that compute the same function (equivalent on the Source's activations, not "
                         "faults) ({}):\n",
                         count);
    case Verdict::kNote: return fmt::format("Notes (not faults) ({}):\n", count);
  }
  return "";
}

std::string bracketed(const std::string& text) { return text.empty() ? text : " [" + text + "]"; }


// The findings, sorted by verdict (faults first), grouped by type under each verdict's header.
std::string format_findings(const std::vector<Finding>& findings) {
  std::string out;
  std::optional<Verdict> section;
  std::optional<FaultType> last;
  for (const auto& f : findings) {
    if (f.verdict != section) {
      const auto count = std::count_if(findings.begin(), findings.end(),
                                       [&](const Finding& g) { return g.verdict == f.verdict; });
      out += verdict_header(f.verdict, static_cast<size_t>(count));
      section = f.verdict;
      last.reset();
    }
    if (f.type() != last) out += fmt::format("  {}\n", fault_type_name(f.type()));
    last = f.type();
    std::string where = f.source_node.empty() && f.target_node.empty()
                            ? std::string("input")
                            : fmt::format("{} <-> {}", f.source_node.empty() ? "-" : f.source_node,
                                          f.target_node.empty() ? "-" : f.target_node);
    std::string tags;
    if (f.layer_rank >= 0) tags += fmt::format(" [rank {}]", f.layer_rank + 1);
    if (f.is_fault() && f.equivalence == Equivalence::kDivergent) tags += " [divergent]";
    tags += bracketed(f.is_fault() ? impact_outcome_text(f.impact) : impact_size_text(f.impact));
    out += fmt::format("    {}: {}{}\n", where, f.summary, tags);
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const LocalizeResult& r) {
  using nlohmann::json;
  json findings = json::array();
  for (const auto& f : r.findings) {
    findings.push_back({{"id", f.id},
                        {"type", fault_type_name(f.type())},
                        {"source_node", f.source_node},
                        {"target_node", f.target_node},
                        {"summary", f.summary},
                        {"equivalence", equivalence_name(f.equivalence)},
                        {"verdict", verdict_name(f.verdict)},
                        {"is_fault", f.is_fault()},
                        {"impact", f.impact.to_json()},
                        {"layer_rank", f.layer_rank},
                        {"replay_rank", replay_rank(r.replay, f.source_node)},
                        {"activation_rank", activation_rank(r.activation, f.source_node)},
                        {"evidence", evidence_json(f)}});
  }
  json suspects = json::array();
  for (const LayerReplay* l : largest_replay_errors(r.replay, 3))
    suspects.push_back({{"source_node", l->source_node},
                        {"target_node", l->target_node},
                        {"status", replay_status_name(l->error.status)},
                        {"relative_l2", std::isfinite(l->error.relative_l2) ? json(l->error.relative_l2) : json()},
                        {"exceeds_tolerance", l->error.exceeds_tolerance}});
  json pairs = json::array();
  for (const auto& p : r.matching.pairs) {
    pairs.push_back({{"source_node", p.source_node},
                     {"target_node", p.target_node},
                     {"confidence", p.confidence},
                     {"weight_permutation", p.weight_permutation},
                     {"bn_folded_in_target", p.bn_folded_in_target},
                     {"bn_folded_in_source", p.bn_folded_in_source},
                     {"folded_bn_node", p.folded_bn_node},
                     {"evidence", p.evidence}});
  }
  json pp = json::array();
  for (const auto& t : r.preprocessing.trials) {
    json j{{"preset", t.preset}, {"role", t.role}, {"measured", t.measured}};
    if (t.measured) {
      j["disagreement"] = t.disagreement;
      j["disagreeing"] = t.disagreeing;
      if (t.distance) j["distance"] = *t.distance;  // tasks other than label
      else j["top_k_agreement"] = t.top_k_agreement;
    } else {
      j["skipped_reason"] = t.skipped_reason;
    }
    pp.push_back(std::move(j));
  }
  json timings = json::object();
  for (const auto& t : r.timings) timings[t.phase] = t.seconds;
  const auto& s = r.detection.summary;
  return json{{"schema", "fetafix.localize/1"},
              {"source", {{"model", r.source_label}, {"preprocess", r.detection.source_preset.to_json()}}},
              {"target", {{"model", r.target_label}, {"preprocess", r.detection.target_preset.to_json()}}},
              {"detection",
               {{"images_compared", s.images_compared},
                {"images_skipped", s.images_skipped},
                {"disagreeing", s.disagreeing},
                {"label_discrepancy", s.discrepancy}}},
              {"summary",
               {{"faults", r.fault_count()},
                {"harmless_differences", r.verdict_count(Verdict::kHarmless)},
                {"equivalent_differences", r.verdict_count(Verdict::kEquivalent)},
                {"notes", r.verdict_count(Verdict::kNote)},
                {"unexplained_disagreement", r.unexplained_disagreement()},
                {"largest_replay_errors", std::move(suspects)}}},
              {"findings", std::move(findings)},
              {"matching",
               {{"source_core_nodes", r.matching.source_core},
                {"target_core_nodes", r.matching.target_core},
                {"pairs", std::move(pairs)},
                {"unmatched_source", r.matching.unmatched_source},
                {"unmatched_target", r.matching.unmatched_target}}},
              {"preprocessing_trials", std::move(pp)},
              {"activation_analysis", to_json(r.activation)},
              {"local_replay", to_json(r.replay)},
              {"notes", r.notes},
              {"timings_seconds", std::move(timings)}};
}

std::string format_report(const LocalizeResult& r, size_t max_ranked_listed) {
  std::string out;
  const auto& s = r.detection.summary;
  out += fmt::format("Source: {}  (preprocess {})\n", r.source_label, r.detection.source_preset.name);
  out += fmt::format("Target: {}  (preprocess {})\n", r.target_label, r.detection.target_preset.name);
  if (s.task.empty() || s.task == "label")
    out += fmt::format("Label discrepancy on {} images: {:.2f}% ({} disagree)\n", s.images_compared,
                       100 * s.discrepancy, s.disagreeing);
  else
    out += fmt::format("Disagreement ({}) on {} samples: {:.2f}% ({} disagree)\n", s.task, s.images_compared,
                       100 * s.discrepancy, s.disagreeing);
  out += fmt::format("Core layers matched: {} pairs ({} Source, {} Target core nodes; {} + {} unmatched)\n",
                     r.matching.pairs.size(), r.matching.source_core, r.matching.target_core,
                     r.matching.unmatched_source.size(), r.matching.unmatched_target.size());
  out += format_replay(r.replay, max_ranked_listed);
  const auto& a = r.activation;
  if (a.skipped_reason.empty()) {
    out += fmt::format("Layer ranking by activation analysis (the paper's; {} dissimilar vs {} similar images, {} "
                       "repeats):\n",
                       a.dissimilar_used, a.similar_used, a.repeats);
    size_t listed = 0;
    for (const auto& l : a.ranked) {
      if (l.rank < 0 || listed++ >= max_ranked_listed) continue;
      out += fmt::format("  {:>2}. {} <-> {}  problematic elements {:.2f}%  mean |diff| {:.3g} (similar) / {:.3g} "
                         "(dissimilar)\n",
                         l.rank + 1, l.source_node, l.target_node, 100 * l.problematic_fraction,
                         l.mean_abs_diff_similar, l.mean_abs_diff_dissimilar);
    }
  }
  const size_t faults = r.fault_count();
  out += faults                         ? fmt::format("Faults ({}):\n", faults)
         : r.unexplained_disagreement() ? format_unexplained(r)
                                        : std::string("No faults found.\n");
  out += format_findings(r.findings);
  for (const auto& n : r.notes) out += fmt::format("note: {}\n", n);
  return out;
}

std::string impact_outcome_text(const Impact& i) {
  if (i.basis == "not_revertible") return "impact not measured: no revert planned";
  if (!i.outcome_changes || (i.basis != "reverted_alone" && i.basis != "reverted_with_group")) return "";
  const std::string what = i.basis == "reverted_alone"
                               ? std::string("reverting it alone")
                               : fmt::format("reverting it with {} other(s)", i.reverted_with.size());
  return fmt::format("{} changes {} of {} outcomes{}", what, *i.outcome_changes, i.samples,
                     i.distance_change ? fmt::format(", distance {:+.3g}", *i.distance_change) : "");
}

std::string impact_size_text(const Impact& i) {
  if (i.relative_l2 && std::isfinite(*i.relative_l2) && i.max_abs_diff)
    return fmt::format("relative L2 {:.3g}, max |diff| {:.3g}", *i.relative_l2, *i.max_abs_diff);
  if (i.max_abs_diff) return fmt::format("max |diff| {:.3g}", *i.max_abs_diff);
  return "";
}

}  // namespace fetafix::localize
