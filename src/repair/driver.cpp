#include "repair/driver.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "compare/evaluator.h"
#include "localize/input_checks.h"
#include "repair/repair.h"

namespace fetafix::repair {
namespace fs = std::filesystem;
using localize::Equivalence;
using localize::FaultType;
using localize::Finding;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool input_based(FaultType t) { return t == FaultType::kPP || t == FaultType::kID || t == FaultType::kTSS; }

// Layer findings: divergent first (the filter saw them change the function), then unchecked,
// then equivalent (tried last: the paper's experience is that most change nothing).
int equivalence_order(Equivalence e) {
  switch (e) {
    case Equivalence::kDivergent: return 0;
    case Equivalence::kNotChecked: return 1;
    case Equivalence::kEquivalent: return 2;
  }
  return 1;
}

class Loop {
 public:
  Loop(const compare::ModelSide& source, const compare::ModelSide& target, const fs::path& images,
       const RepairOptions& o, RepairResult& r, compare::LabelEvaluator& eval)
      : source_(source), target_side_(target), images_(images), o_(o), r_(r), eval_(eval), working_(*target.model),
        log_(working_), start_(Clock::now()), original_preset_(target.preset) {
    target_side_.model = &working_;
  }

  Status run() {
    const auto t0 = Clock::now();
    FETAFIX_ASSIGN_OR_RETURN(current_, eval_.score_full(working_));
    r_.timings.push_back({"initial Target run", seconds_since(t0)});
    r_.images = eval_.images();
    r_.initial_disagreeing = current_.disagreeing;
    r_.initial_agree = current_.agree;
    for (const auto& f : eval_.files()) r_.image_files.push_back(fs::relative(f, images_).generic_string());
    r_.history.push_back(current_.discrepancy);
    const auto t1 = Clock::now();
    rebase();
    r_.timings.push_back({"partial-execution base", seconds_since(t1)});
    say(fmt::format("initial disagreement {:.2f}% ({} of {} images)", 100 * current_.discrepancy,
                    current_.disagreeing, r_.images));
    for (int round = 1; round <= o_.max_rounds; ++round) {
      if (current_.disagreeing == 0) { r_.stop_reason = "fully repaired"; break; }
      if (out_of_time()) break;
      round_ = round;
      const size_t kept_before = kept_;
      kept_at_round_start_ = kept_;
      FETAFIX_TRY_STATUS(repair_round());
      if (current_.disagreeing == 0) { r_.stop_reason = "fully repaired"; break; }
      if (r_.time_limit_reached) break;
      if (kept_ == kept_before) { r_.stop_reason = "no remaining candidate lowered the disagreement"; break; }
      if (round == o_.max_rounds) r_.stop_reason = fmt::format("round limit ({}) reached", o_.max_rounds);
    }
    if (r_.stop_reason.empty() && current_.disagreeing == 0) r_.stop_reason = "fully repaired";
    r_.final_disagreeing = current_.disagreeing;
    r_.final_agree = current_.agree;
    r_.repaired = working_;
    r_.patch.edits = log_.edits();
    r_.full_runs = eval_.full_runs();
    r_.partial_runs = eval_.partial_runs();
    return {};
  }

 private:
  void say(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  // Under mpirun every rank must stop at the same point (each call is then collective): the
  // ranks agree that time is up when any rank's clock says so.
  bool out_of_time() {
    if (r_.time_limit_reached) return true;
    const Communicator& comm = compare::ranks_of(o_.localize.compare);
    const bool mine = seconds_since(start_) >= o_.time_limit_seconds;
    if (comm.size() > 1 ? comm.all_true(!mine) : !mine) return false;
    r_.time_limit_reached = true;
    r_.stop_reason = fmt::format("time limit ({:.0f} s) reached", o_.time_limit_seconds);
    return true;
  }

  Clock::time_point deadline() const {
    return start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.time_limit_seconds));
  }

  // After a kept edit: the working Target is the new base for partial runs, and the screening
  // subset follows the images that now disagree.
  void rebase() {
    if (o_.partial_execution) (void)eval_.set_base(working_, o_.partial_budget_bytes);
    std::vector<size_t> disagreeing, agreeing;
    for (size_t i = 0; i < current_.agree.size(); ++i) (current_.agree[i] ? agreeing : disagreeing).push_back(i);
    screen_.clear();
    const size_t n = current_.agree.size();
    // A screen is worth it only when it is much smaller than the whole set.
    if (o_.allow_equal || disagreeing.empty() ||
        std::min(disagreeing.size(), o_.screen_disagreeing) + std::min(agreeing.size(), o_.screen_agreeing) > n / 2)
      return;
    auto a = seeded_sample(disagreeing, o_.screen_disagreeing, 11);
    auto b = seeded_sample(agreeing, o_.screen_agreeing, 12);
    screen_ = a;
    screen_.insert(screen_.end(), b.begin(), b.end());
    std::sort(screen_.begin(), screen_.end());
    screen_disagreeing_ = a.size();
  }

  static std::vector<size_t> seeded_sample(std::vector<size_t> v, size_t keep, uint64_t salt) {
    if (v.size() <= keep) return v;
    uint64_t x = 0x9E3779B97F4A7C15ull * (salt + 1);
    for (size_t i = v.size() - 1; i > 0; --i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64: the same subset on every run
      std::swap(v[i], v[x % (i + 1)]);
    }
    v.resize(keep);
    std::sort(v.begin(), v.end());
    return v;
  }

  // Whether a candidate's score is an improvement under the options' rules.
  bool acceptable(const compare::CandidateScore& s, std::string& reason) const {
    size_t regressions = 0;
    for (size_t i = 0; i < s.agree.size(); ++i) regressions += current_.agree[i] && !s.agree[i];
    if (s.disagreeing < current_.disagreeing) {
      if (o_.regression == RegressionPolicy::kStrict && regressions) {
        reason = fmt::format("{} image(s) that agreed would disagree", regressions);
        return false;
      }
      return true;
    }
    if (o_.allow_equal && s.disagreeing == current_.disagreeing && regressions == 0 &&
        s.distance < current_.distance - 1e-9)
      return true;
    reason = s.disagreeing == current_.disagreeing ? "no change in disagreement"
                                                   : fmt::format("disagreement would rise to {}", s.disagreeing);
    return false;
  }

  // Screening: whether the working Target (edits applied) lowers the disagreement on the
  // screening subset. Always true without a subset.
  bool passes_screen(size_t& screened_disagreeing) {
    if (screen_.empty()) return true;
    auto s = eval_.score(working_, screen_);
    if (!s.ok()) return true;  // let the full run report why it does not run
    screened_disagreeing = s->disagreeing;
    return s->disagreeing < screen_disagreeing_;
  }

  // Applies edits, scores, keeps or undoes. Returns whether they were kept.
  // `screened`: the caller already saw the edits lower the disagreement on the screening subset.
  bool try_candidate(const std::string& type, const std::string& description, const Finding* finding,
                     const std::vector<model::Edit>& edits, const std::optional<data::Preset>& preset,
                     bool screened_already = false) {
    RepairStep step;
    step.round = round_;
    step.type = type;
    step.description = description;
    if (finding) {
      step.source_node = finding->source_node;
      step.target_node = finding->target_node;
    }
    step.edits = edits.size();
    step.disagreeing_before = current_.disagreeing;
    if (finding) {
      step.finding_summary = finding->summary;
      if (!finding->target_node.empty()) step.target_nodes.push_back(finding->target_node);
    } else {
      step.target_nodes = group_nodes_;
      step.finding_summaries = group_summaries_;
    }
    const auto t0 = Clock::now();
    // Counts are per finding (a group stands for group_size_ of them), as the paper's Table 2.
    const size_t findings = is_group(type) ? std::max<size_t>(group_size_, 1) : 1;
    for (auto& [name, c] : type_counts(type)) c->tried += findings;
    if (auto st = log_.apply_all(edits); !st.ok()) {
      step.reason = "no longer applies: " + st.error().message;
      step.disagreeing_after = current_.disagreeing;
      r_.steps.push_back(step);
      return false;
    }
    // An edit of the graph input's shape (ID) changes what the images must be resized to: the
    // same preprocessing, bound again to the edited input.
    std::optional<data::Preset> rebound;
    bool rebinding = false;
    if (!preset && changes_input_shape(edits)) {
      rebound = rebound_preset();
      rebinding = true;
    }
    const std::optional<data::Preset>& feed = preset ? preset : rebound;
    size_t screened = 0;
    if (!feed && !screened_already && !passes_screen(screened)) {
      for (size_t i = 0; i < edits.size(); ++i) log_.undo_last();
      step.screened_out = true;
      step.reason = fmt::format("no drop on the {} screening images ({} of them disagree, {} would)", screen_.size(),
                                screen_disagreeing_, screened);
      step.disagreeing_after = current_.disagreeing;
      step.seconds = seconds_since(t0);
      say(fmt::format("round {} {} rejected on screen: {} ({})", round_, type, description, step.reason));
      r_.steps.push_back(std::move(step));
      return false;
    }
    auto score = feed ? eval_.score_with_preset(working_, *feed) : eval_.score(working_);
    std::string reason;
    bool keep = score.ok() && acceptable(*score, reason);
    if (keep && score->partial) {  // a partial run proposes, a full run decides
      score = eval_.score_full(working_);
      keep = score.ok() && acceptable(*score, reason);
    }
    if (!score.ok()) reason = "the edited Target does not run: " + score.error().message;
    if (keep && feed) {
      if (auto st = eval_.set_target_preset(working_, *feed); !st.ok()) reason = st.error().message;
      if (!rebinding) r_.patch.preprocess = *feed;
      target_side_.preset = *feed;
      input_rebound_ = input_rebound_ || rebinding;
    }
    if (keep) kept_after_preprocessing_ = !(feed && !rebinding);
    if (keep && feed && !rebinding) last_preset_step_ = step;  // what a revisit would undo
    if (keep) {
      for (auto& [name, c] : type_counts(type)) c->kept += findings;
      accept(step, std::move(score).value());
      return record(std::move(step), std::nullopt, t0, description);
    }
    for (size_t i = 0; i < edits.size(); ++i) log_.undo_last();
    step.reason = reason;
    return record(std::move(step), score.ok() ? std::optional(score->disagreeing) : std::nullopt, t0, description);
  }

  // A kept step: `score` becomes the current one and the next base. Counts stay with the caller.
  void accept(RepairStep& step, compare::CandidateScore score) {
    current_ = std::move(score);
    ++kept_;
    step.kept = true;
    step.reason = "kept";
    r_.history.push_back(current_.discrepancy);
    rebase();
  }

  // Logs a decided step: after = the new count if kept, else the candidate's (`scored`) if it ran.
  bool record(RepairStep step, std::optional<size_t> scored, Clock::time_point t0, const std::string& what) {
    step.disagreeing_after = step.kept ? current_.disagreeing : scored.value_or(current_.disagreeing);
    step.seconds = seconds_since(t0);
    say(fmt::format("round {} {} {}: {} -> {} ({})", round_, step.type, step.kept ? "kept" : "rejected",
                    step.disagreeing_before, step.disagreeing_after, what));
    const bool kept = step.kept;
    r_.steps.push_back(std::move(step));
    return kept;
  }

  // The Target's preprocessing, to be bound again to an input whose shape an edit changed.
  data::Preset rebound_preset() const {
    data::Preset p = eval_.target_preset();
    p.width = p.height = 0;
    return p;
  }

  static bool changes_input_shape(const std::vector<model::Edit>& edits) {
    return std::any_of(edits.begin(), edits.end(),
                       [](const model::Edit& e) { return e.kind == model::EditKind::kSetGraphInput; });
  }

  static bool is_group(const std::string& type) { return !type.empty() && type.back() == '*'; }

  // A group ("WB*", "LH*") counts towards its type.
  std::vector<std::pair<std::string, TypeCounts*>> type_counts(const std::string& type) {
    const std::string t = is_group(type) ? type.substr(0, type.size() - 1) : type;
    return {{t, &r_.counts[t]}};
  }

  // Disagreeing images on the screening subset (every image without one) with `edits`
  // applied, then undone; nullopt if they fail.
  std::optional<size_t> probe(const std::vector<model::Edit>& edits) {
    ++probes_;
    if (!log_.apply_all(edits).ok()) return std::nullopt;
    auto s = eval_.score(working_, screen_);
    for (size_t i = 0; i < edits.size(); ++i) log_.undo_last();
    if (!s.ok()) return std::nullopt;
    return s->disagreeing;
  }

  static std::vector<model::Edit> concat(const std::vector<const RepairCandidate*>& cs) {
    std::vector<model::Edit> out;
    for (auto* c : cs) out.insert(out.end(), c->edits.begin(), c->edits.end());
    return out;
  }

  bool bisection_spent() {
    return probes_ >= static_cast<size_t>(std::max(o_.max_bisection_probes, 0)) || out_of_time();
  }

  // A small subset of `cands` that, with `fixed`, reaches `goal` disagreements or fewer
  // (delta debugging: halves first, then each half with the other held fixed). Anytime: when
  // the probe budget runs out, the sets it returns still reach the goal.
  std::vector<const RepairCandidate*> minimize(std::vector<const RepairCandidate*> cands,
                                               const std::vector<const RepairCandidate*>& fixed, size_t goal) {
    if (cands.size() <= 1 || bisection_spent()) return cands;
    const size_t half = cands.size() / 2;
    std::vector<const RepairCandidate*> a(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(half));
    std::vector<const RepairCandidate*> b(cands.begin() + static_cast<std::ptrdiff_t>(half), cands.end());
    auto with = [&](const std::vector<const RepairCandidate*>& part) {
      auto all = fixed;
      all.insert(all.end(), part.begin(), part.end());
      return all;
    };
    if (auto s = probe(concat(with(a))); s && *s <= goal) return minimize(a, fixed, goal);
    if (bisection_spent()) return cands;
    if (auto s = probe(concat(with(b))); s && *s <= goal) return minimize(b, fixed, goal);
    auto ka = minimize(a, with(b), goal);
    auto kb = minimize(b, with(ka), goal);
    ka.insert(ka.end(), kb.begin(), kb.end());
    return ka;
  }

  localize::DetectionView detection_view() const {
    localize::DetectionView v;
    v.image_dir = images_;
    v.files = eval_.files();
    v.usable.assign(v.files.size(), true);
    v.agree = current_.agree;
    v.source_preset = eval_.source_preset();
    v.target_preset = eval_.target_preset();
    return v;
  }

  Status repair_round() {
    const auto t0 = Clock::now();
    say(fmt::format("round {}: localizing faults (static checks{})", round_, pp_due_ ? ", preprocessing" : ""));
    localize::LocalizeOptions lo = o_.localize;
    lo.compare.progress = ProgressMode::kQuiet;
    lo.preprocessing_sample = o_.preprocessing_sample;
    // One process stops the ranking at the deadline; ranks could stop it at different layers, so
    // they check the time limit between steps only (docs/scaling.md).
    if (compare::ranks_of(o_.localize.compare).size() == 1) lo.activation.deadline = deadline();
    lo.activation.max_similar = std::min(lo.activation.max_similar, o_.ranking_max_similar);
    lo.activation.max_dissimilar = std::min(lo.activation.max_dissimilar, o_.ranking_max_dissimilar);
    localize::LocalizeStages stages;
    stages.preprocessing = pp_due_;
    stages.activation_analysis = false;  // ranked later, only if the cheap candidates leave work
    const auto view = detection_view();
    FETAFIX_ASSIGN_OR_RETURN(auto loc, localize::localize_detected(source_, target_side_, view, lo, stages));
    pp_due_ = false;
    std::vector<Finding> findings = loc.findings;
    for (auto& f : find_extra_outputs(*source_.model, working_)) findings.push_back(std::move(f));
    r_.timings.push_back({fmt::format("round {} localize", round_), seconds_since(t0)});
    const auto t1 = Clock::now();

    std::vector<RepairCandidate> candidates;
    for (const auto& f : findings) {
      const std::string type(localize::fault_type_name(f.type));
      const auto key = std::make_tuple(type, f.source_node, f.target_node, f.summary);
      if (seen_.insert(key).second) r_.counts[type].localized++;
      auto c = plan_repair(*source_.model, working_, f);
      if (!c.ok()) {
        RepairStep step;
        step.round = round_;
        step.type = type;
        step.description = f.summary;
        step.source_node = f.source_node;
        step.target_node = f.target_node;
        step.finding_summary = f.summary;
        if (!f.target_node.empty()) step.target_nodes.push_back(f.target_node);
        step.reason = "no repair planned: " + c.error().message;
        step.disagreeing_before = step.disagreeing_after = current_.disagreeing;
        r_.steps.push_back(std::move(step));
        continue;
      }
      candidates.push_back(std::move(c).value());
    }
    sort_candidates(candidates);

    std::set<const RepairCandidate*> handled;      // tried (input-based) or kept (layer findings)
    std::set<const RepairCandidate*> kept_inputs;  // input-based ones kept
    std::map<std::string, int> rejections;
    for (const auto& c : candidates) {  // input-based go first: they change what layers see
      if (!input_based(c.finding.type) || out_of_time()) continue;
      handled.insert(&c);
      const std::string type(localize::fault_type_name(c.finding.type));
      if (rejections[type] >= o_.max_rejections) continue;
      if (try_candidate(type, c.description, &c.finding, c.edits, c.preset)) {
        rejections[type] = 0;
        kept_inputs.insert(&c);
        pp_due_ = c.finding.type != FaultType::kPP && !r_.patch.preprocess;
      } else {
        rejections[type]++;
      }
    }
    if (current_.disagreeing == 0) {
      record_localization(std::move(loc), candidates);
      return finish_round(t1);
    }

    // Weight findings first as a group: one evaluation instead of one per layer when they help
    // together; bisection (on the screening subset) only when the whole group is rejected.
    std::vector<const RepairCandidate*> weights;
    for (const auto& c : candidates)
      if (c.finding.type == FaultType::kWB && c.finding.equivalence != Equivalence::kEquivalent) weights.push_back(&c);
    if (weights.size() > 1 && !out_of_time()) try_group("WB*", weights, handled, describe_weights);
    if (current_.disagreeing == 0) {
      record_localization(std::move(loc), candidates);
      return finish_round(t1);
    }
    // The same hyperparameter difference on many nodes (a converter drops every Clip's max, or
    // every Conv's pads) is one fault made many times: one node's fix alone may change no label.
    for (const auto& [key, members] : hyperparameter_groups(candidates)) {
      if (members.size() < 2 || out_of_time()) continue;
      if (std::any_of(members.begin(), members.end(), [&](auto* c) { return handled.count(c) > 0; })) continue;
      try_group("LH*", members, handled, describe_hyperparameters);
      if (current_.disagreeing == 0) break;
    }
    if (current_.disagreeing == 0) {
      record_localization(std::move(loc), candidates);
      return finish_round(t1);
    }

    // What is left goes one finding at a time, in the order of the layer ranking.
    if (!out_of_time()) {
      const auto t2 = Clock::now();
      say(fmt::format("round {}: ranking layers by activation analysis and local replay", round_));
      localize::LocalizeResult ranked;
      ranked.matching = loc.matching;
      for (const auto& c : candidates) ranked.findings.push_back(c.finding);
      FETAFIX_TRY_STATUS(localize::rank_layers(source_, target_side_, detection_view(), lo, ranked));
      loc.activation = ranked.activation;
      loc.replay = std::move(ranked.replay);
      std::map<std::tuple<std::string, std::string, std::string>, int> rank;
      for (const auto& f : ranked.findings)
        rank[{std::string(localize::fault_type_name(f.type)), f.source_node, f.summary}] = f.layer_rank;
      for (auto& c : candidates) {
        auto it = rank.find({std::string(localize::fault_type_name(c.finding.type)), c.finding.source_node,
                             c.finding.summary});
        if (it != rank.end()) c.finding.layer_rank = it->second;
      }
      r_.timings.push_back({fmt::format("round {} ranking", round_), seconds_since(t2)});
    }
    std::vector<const RepairCandidate*> order;
    for (const auto& c : candidates) order.push_back(&c);
    std::stable_sort(order.begin(), order.end(), [](const RepairCandidate* a, const RepairCandidate* b) {
      return candidate_before(*a, *b);
    });
    record_localization(std::move(loc), candidates);
    for (const auto* c : order) {
      if (handled.count(c)) continue;
      if (out_of_time()) break;
      const std::string type(localize::fault_type_name(c->finding.type));
      if (rejections[type] >= o_.max_rejections) continue;
      if (try_candidate(type, c->description, &c->finding, c->edits, c->preset)) {
        rejections[type] = 0;
        handled.insert(c);
        if (current_.disagreeing == 0) break;
      } else {
        rejections[type]++;
      }
    }
    if (kept_ == kept_at_round_start_ && current_.disagreeing > 0 && o_.joint_step && !out_of_time()) {
      std::vector<const RepairCandidate*> rest;
      for (const auto* c : order)
        if (!kept_inputs.count(c) && !(handled.count(c) && !input_based(c->finding.type)) &&
            c->finding.type != FaultType::kPP && c->finding.equivalence != Equivalence::kEquivalent)
          rest.push_back(c);
      // CG findings are the least certain (a differently built graph differs in structure for
      // no fault): if the whole set fails, once more without them. resnet101v2-tf-to-keras: a
      // CG region replacement around the layer whose dilations are repaired kept the set at
      // 89 -> 89; without it, 89 -> 0.
      std::vector<const RepairCandidate*> structural;
      for (const auto* c : rest)
        if (c->finding.type != FaultType::kCG) structural.push_back(c);
      if (!rest.empty() && !try_joint(rest) && !structural.empty() && structural.size() < rest.size() &&
          !out_of_time())
        try_joint(structural);
    }
    return finish_round(t1);
  }

  // The preset the PP check finds best for the working Target (which the images are fed as
  // `current`, unbound), on a seeded sample of the detection images; nullopt when none beats
  // `current` there by kDefaultPresetMinGain.
  std::optional<data::Preset> best_preset_for(const data::Preset& current) {
    std::vector<size_t> all(eval_.images());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    const auto chosen = seeded_sample(all, 2 * std::max<size_t>(o_.preprocessing_sample, 1), 13);
    localize::PreprocessingCheckOptions pp;
    pp.presets = o_.localize.presets_to_try;
    pp.compare = o_.localize.compare;
    pp.compare.progress = ProgressMode::kQuiet;
    for (size_t i : chosen) pp.files.push_back(eval_.files()[i]);
    compare::ModelSide side = target_side_;
    side.model = &working_;
    side.preset = current;
    auto report = localize::measure_preprocessing(source_, side, images_, pp);
    if (!report.ok()) return std::nullopt;
    auto findings = localize::preprocessing_findings(*report, o_.localize.preprocessing_min_gain);
    if (findings.empty() || !report->best) return std::nullopt;
    data::Preset best = report->trials[*report->best].bound;
    return best;
  }

  // When no finding alone lowers the disagreement — several faults each enough to break every
  // label (an input transposed, resized and a layer's pads dropped) — they are tried together:
  // each re-planned on the Target with the ones before it applied (input-based first: an ID
  // edit and a TSS edit both rewrite the graph input), then one score decides. PP is left out
  // (its presets are alternatives, not a fault to stack) and its check runs again next round.
  bool try_joint(const std::vector<const RepairCandidate*>& members) {
    RepairStep step;
    step.round = round_;
    step.type = "JOINT";
    step.disagreeing_before = current_.disagreeing;
    const auto t0 = Clock::now();
    const size_t log_before = log_.size();
    std::vector<const Finding*> applied;
    std::vector<std::string> skipped;
    for (const auto* c : members) {
      if (out_of_time()) break;  // what is applied so far is still scored
      auto plan = plan_repair(*source_.model, working_, c->finding);
      if (!plan.ok() || plan->preset || !log_.apply_all(plan->edits).ok()) {
        skipped.push_back(c->finding.summary);
        continue;
      }
      applied.push_back(&c->finding);
      step.finding_summaries.push_back(c->finding.summary);
      if (!c->finding.target_node.empty()) step.target_nodes.push_back(c->finding.target_node);
    }
    std::map<std::string, size_t> per_type;
    for (const auto* f : applied) per_type[std::string(localize::fault_type_name(f->type))]++;
    std::vector<std::string> parts;
    for (const auto& [type, n] : per_type) parts.push_back(fmt::format("{} {}", type, n));
    step.description = fmt::format("{} finding{} applied {}({}){}", applied.size(), applied.size() == 1 ? "" : "s",
                                   applied.size() == 1 ? "" : "together ", fmt::join(parts, ", "),
                                   skipped.empty() ? "" : fmt::format("; {} could not be planned", skipped.size()));
    step.edits = log_.size() - log_before;
    auto undo = [&] {
      while (log_.size() > log_before) log_.undo_last();
    };
    // One finding alone was scored already (and rejected) in the round: only the preset search
    // below is new for it.
    const bool alone = applied.size() == 1;
    if (applied.empty() || (alone && r_.patch.preprocess)) {
      undo();
      return false;
    }
    std::vector<model::Edit> edits(log_.edits().begin() + static_cast<std::ptrdiff_t>(log_before), log_.edits().end());
    const bool rebinding = changes_input_shape(edits);
    data::Preset feed = rebinding ? rebound_preset() : eval_.target_preset();
    Result<compare::CandidateScore> score = make_error("not scored");
    std::string reason;
    bool keep = false;
    if (!alone) {
      score = rebinding ? eval_.score_with_preset(working_, feed) : eval_.score_full(working_);
      keep = score.ok() && acceptable(*score, reason);
    }
    // The preprocessing may be wrong too: with the edits in place, the PP check (on a seeded
    // sample) proposes a preset, and the whole set decides with it.
    std::optional<data::Preset> preset;
    if (!keep && (alone || score.ok()) && !r_.patch.preprocess && !out_of_time()) {
      if (auto best = best_preset_for(feed); best) {
        auto with = eval_.score_with_preset(working_, *best);
        std::string why;
        if (with.ok() && acceptable(*with, why)) {
          score = std::move(with);
          reason.clear();
          keep = true;
          preset = best;
          feed = *best;
          r_.counts["PP"].localized++;
          r_.counts["PP"].tried++;
          step.description += fmt::format(", with preset '{}'", best->name);
        } else if (alone) {
          score = std::move(with);
          reason = why;
        }
      }
    }
    if (alone && !score.ok()) {  // no preset to try with it: nothing new was scored
      undo();
      return false;
    }
    for (const auto& [type, n] : per_type) r_.counts[type].tried += n;
    const bool rebinding_or_preset = rebinding || preset.has_value();
    if (keep && rebinding_or_preset) {
      if (auto st = eval_.set_target_preset(working_, feed); !st.ok()) {
        reason = st.error().message;
      } else {
        target_side_.preset = feed;
        input_rebound_ = input_rebound_ || rebinding;
        if (preset) {
          r_.patch.preprocess = *preset;
          r_.counts["PP"].kept++;
        }
      }
    }
    const std::string what = step.description;
    if (keep && reason.empty()) {
      kept_after_preprocessing_ = !preset;
      for (const auto& [type, n] : per_type) r_.counts[type].kept += n;
      if (!r_.patch.preprocess) pp_due_ = true;  // the preprocessing can be judged again now
      if (preset) step.finding_summaries.push_back("preprocessing: preset '" + preset->name + "'");
      accept(step, std::move(score).value());
      return record(std::move(step), std::nullopt, t0, what);
    }
    undo();
    step.reason = score.ok() ? reason : "the edited Target does not run: " + score.error().message;
    return record(std::move(step), score.ok() ? std::optional(score->disagreeing) : std::nullopt, t0, what);
  }

  // Keeps the round's localization for reports, with the ranks the candidates ended up with.
  void record_localization(localize::LocalizeResult loc, const std::vector<RepairCandidate>& candidates) {
    std::map<std::tuple<std::string, std::string, std::string>, int> rank;
    for (const auto& c : candidates)
      rank[{std::string(localize::fault_type_name(c.finding.type)), c.finding.source_node, c.finding.summary}] =
          c.finding.layer_rank;
    for (auto& f : loc.findings) {
      auto it = rank.find({std::string(localize::fault_type_name(f.type)), f.source_node, f.summary});
      if (it != rank.end()) f.layer_rank = it->second;
    }
    r_.localizations.push_back(std::move(loc));
  }

  Status finish_round(Clock::time_point t1) {
    if (current_.disagreeing > 0 && !out_of_time()) revisit_preprocessing();
    r_.timings.push_back({fmt::format("round {} repair", round_), seconds_since(t1)});
    return {};
  }

  // PP goes first, so a preset can be kept because it hides part of a fault found only later
  // (feeding [-1, 1] inputs keeps unbounded activations small). Once later repairs are kept, the
  // Target's own preprocessing is tried again and restored when it now disagrees less.
  void revisit_preprocessing() {
    if (!r_.patch.preprocess || !kept_after_preprocessing_) return;
    kept_after_preprocessing_ = false;
    data::Preset own = original_preset_;
    if (input_rebound_) own.width = own.height = 0;  // an ID repair changed the input size
    RepairStep step;
    step.round = round_;
    step.type = "PP";
    step.description = fmt::format("PP: back to the Target's own preset '{}' instead of '{}'", own.name,
                                   r_.patch.preprocess->name);
    if (last_preset_step_) {  // names the finding whose preset it undoes
      step.source_node = last_preset_step_->source_node;
      step.target_node = last_preset_step_->target_node;
      step.finding_summary = last_preset_step_->finding_summary;
      step.target_nodes = last_preset_step_->target_nodes;
    }
    step.reverts = true;
    step.disagreeing_before = current_.disagreeing;
    const auto t0 = Clock::now();
    auto score = eval_.score_with_preset(working_, own);
    std::string reason;
    if (score.ok() && acceptable(*score, reason)) {
      if (auto st = eval_.set_target_preset(working_, own); st.ok()) {
        target_side_.preset = own;
        r_.patch.preprocess.reset();
        auto& pp = r_.counts["PP"];
        if (pp.kept > 0) --pp.kept;  // the preset it undoes is no longer a kept repair
        accept(step, std::move(score).value());
      } else {
        step.reason = st.error().message;
      }
    } else {
      step.reason = score.ok() ? reason : "the Target does not run with it: " + score.error().message;
    }
    const std::string what = step.description;
    record(std::move(step), score.ok() ? std::optional(score->disagreeing) : std::nullopt, t0, what);
  }

  using Members = std::vector<const RepairCandidate*>;
  using Describe = std::string (*)(const Members& set, size_t of);

  // Non-equivalent LH findings grouped by what differs: op, attribute, kind and both values.
  static std::map<std::string, Members> hyperparameter_groups(const std::vector<RepairCandidate>& candidates) {
    std::map<std::string, Members> groups;
    for (const auto& c : candidates) {
      const Finding& f = c.finding;
      if (f.type != FaultType::kLH || f.equivalence == Equivalence::kEquivalent) continue;
      const auto& e = f.evidence;
      auto text = [&](const char* k) { return e.contains(k) ? e[k].dump() : std::string("-"); };
      groups[fmt::format("{}|{}|{}|{}|{}", text("source_op"), text("attribute"), text("kind"), text("source_value"),
                         text("target_value"))]
          .push_back(&c);
    }
    return groups;
  }

  static std::vector<std::string> target_nodes_of(const Members& set) {
    std::vector<std::string> names;
    for (auto* c : set)
      if (std::find(names.begin(), names.end(), c->finding.target_node) == names.end())
        names.push_back(c->finding.target_node);
    return names;
  }

  static std::string listed(const std::vector<std::string>& names) {
    constexpr size_t kListed = 4;
    std::string out = fmt::format("{}", fmt::join(names.begin(), names.begin() + std::min(kListed, names.size()), ", "));
    if (names.size() > kListed) out += fmt::format(" and {} more", names.size() - kListed);
    return out;
  }

  static std::string describe_weights(const Members& set, size_t of) {
    const auto names = target_nodes_of(set);
    return fmt::format("Source weights into {} of {} differing tensors ({} layers): {}", set.size(), of, names.size(),
                       listed(names));
  }

  static std::string describe_hyperparameters(const Members& set, size_t of) {
    const auto& e = set.front()->finding.evidence;
    const std::string value = e.contains("source_value") && !e["source_value"].is_null() ? e["source_value"].dump() : "none";
    return fmt::format("LH: the Source's {} {} on {} of {} {} nodes: {}", e.value("attribute", "?"), value, set.size(),
                       of, e.value("target_op", "?"), listed(target_nodes_of(set)));
  }

  // Tries `members` as one step ("WB*" or "LH*"): screening first (do they help together at
  // all?), then the whole group is decided on every image. Each member puts the Source's own
  // value back, so a kept group leaves the Target like the Source everywhere the checks saw a
  // difference — keeping only the few that flip the detection images left validation images
  // disagreeing (2 % on the corpus's int8 cases) and cost a bisection plus a second full pass.
  // Only when the group is rejected (it makes images worse somewhere) does delta debugging look
  // for the subset that carries the gain.
  void try_group(const std::string& label, const Members& members, std::set<const RepairCandidate*>& handled,
                 Describe describe) {
    const auto group_edits = concat(members);
    probes_ = 0;
    const size_t start = screen_.empty() ? current_.disagreeing : screen_disagreeing_;
    auto together = probe(group_edits);
    if (!together || *together >= start) {
      say(fmt::format("round {}: the {} {} fixes together do not lower the disagreement{}", round_, members.size(),
                      label, screen_.empty() ? "" : " on the screening images"));
      return;
    }
    auto attempt = [&](const Members& set) {
      group_nodes_ = target_nodes_of(set);
      group_size_ = set.size();
      group_summaries_.clear();
      for (auto* c : set) group_summaries_.push_back(c->finding.summary);
      const bool kept = try_candidate(label, describe(set, members.size()), nullptr, concat(set), std::nullopt,
                                      /*screened_already=*/&set == &members);
      group_nodes_.clear();
      group_summaries_.clear();
      group_size_ = 0;
      if (kept)
        for (auto* c : set) handled.insert(c);
      return kept;
    };
    if (attempt(members) || out_of_time()) return;
    const auto t0 = Clock::now();
    Members smallest = minimize(members, {}, *together);
    say(fmt::format("round {}: bisection kept {} of {} {} fixes ({} probes on {} images, {:.1f} s)", round_,
                    smallest.size(), members.size(), label, probes_,
                    screen_.empty() ? current_.agree.size() : screen_.size(), seconds_since(t0)));
    if (smallest.size() >= members.size() || !attempt(smallest) || current_.disagreeing == 0) return;
    // Whatever the rest of the group adds on top is tried as one more step.
    Members rest;
    for (auto* c : members)
      if (!handled.count(c)) rest.push_back(c);
    if (!rest.empty()) attempt(rest);
  }

  static bool candidate_before(const RepairCandidate& a, const RepairCandidate& b) {
    const Finding &fa = a.finding, &fb = b.finding;
    const bool ia = input_based(fa.type), ib = input_based(fb.type);
    if (ia != ib) return ia;
    if (ia) return static_cast<int>(fa.type) < static_cast<int>(fb.type);
    const int ea = equivalence_order(fa.equivalence), eb = equivalence_order(fb.equivalence);
    if (ea != eb) return ea < eb;
    const int ra = fa.layer_rank < 0 ? INT32_MAX : fa.layer_rank, rb = fb.layer_rank < 0 ? INT32_MAX : fb.layer_rank;
    if (ra != rb) return ra < rb;
    return static_cast<int>(fa.type) < static_cast<int>(fb.type);
  }

  static void sort_candidates(std::vector<RepairCandidate>& cs) {
    std::stable_sort(cs.begin(), cs.end(), candidate_before);
  }

  const compare::ModelSide& source_;
  compare::ModelSide target_side_;
  fs::path images_;
  const RepairOptions& o_;
  RepairResult& r_;
  compare::LabelEvaluator& eval_;
  onnx::ModelProto working_;
  model::EditLog log_;
  compare::CandidateScore current_;
  Clock::time_point start_;
  int round_ = 0;
  size_t kept_ = 0;
  bool pp_due_ = true;
  std::vector<size_t> screen_;       // screening subset (empty: none)
  size_t screen_disagreeing_ = 0;    // of it, how many disagree now
  size_t probes_ = 0;
  size_t kept_at_round_start_ = 0;
  std::optional<RepairStep> last_preset_step_;  // the step that kept the current PP preset
  data::Preset original_preset_;              // the Target's preprocessing as given
  bool input_rebound_ = false;                // an ID repair re-bound the preprocessing to a new input
  bool kept_after_preprocessing_ = false;     // a repair was kept after the last kept PP preset
  std::vector<std::string> group_nodes_;      // Target nodes of the group being tried
  std::vector<std::string> group_summaries_;  // its findings' summaries
  size_t group_size_ = 0;                     // its findings
  std::set<std::tuple<std::string, std::string, std::string, std::string>> seen_;
};

Result<Validation> validate(const compare::ModelSide& source, const compare::ModelSide& target,
                            const RepairResult& r, const fs::path& dir, const compare::CompareOptions& co) {
  FETAFIX_ASSIGN_OR_RETURN(auto eval, compare::LabelEvaluator::create(source, target, dir, co));
  FETAFIX_ASSIGN_OR_RETURN(auto before, eval->score(*target.model));
  // Bound again to the repaired model's input: an ID repair may have changed its size.
  auto after = eval->score_with_preset(r.repaired, r.patch.preprocess ? *r.patch.preprocess : target.preset);
  if (!after.ok()) return after.error();
  Validation v;
  v.images = eval->images();
  v.initial_disagreeing = before.disagreeing;
  v.final_disagreeing = after->disagreeing;
  for (size_t i = 0; i < v.images; ++i)
    if (before.agree[i] && !after->agree[i])
      v.newly_disagreeing.push_back(fs::relative(eval->files()[i], dir).generic_string());
  return v;
}

}  // namespace

Result<RepairResult> repair_target(const compare::ModelSide& source, const compare::ModelSide& target,
                                   const fs::path& image_dir, const RepairOptions& options) {
  RepairResult r;
  const auto t0 = Clock::now();
  FETAFIX_ASSIGN_OR_RETURN(auto eval, compare::LabelEvaluator::create(source, target, image_dir, options.localize.compare));
  r.timings.push_back({"source run and image cache", seconds_since(t0)});
  Loop loop(source, target, image_dir, options, r, *eval);
  FETAFIX_TRY_STATUS(loop.run());
  if (options.validation_images) {
    const auto tv = Clock::now();
    FETAFIX_ASSIGN_OR_RETURN(r.validation, validate(source, target, r, *options.validation_images, options.localize.compare));
    r.timings.push_back({"validation", seconds_since(tv)});
  }
  r.timings.push_back({"total", seconds_since(t0)});
  return r;
}

nlohmann::json to_json(const RepairResult& r) {
  using nlohmann::json;
  json steps = json::array();
  for (const auto& s : r.steps)
    steps.push_back({{"round", s.round}, {"type", s.type}, {"description", s.description},
                     {"source_node", s.source_node}, {"target_node", s.target_node}, {"kept", s.kept},
                     {"reason", s.reason}, {"disagreeing_before", s.disagreeing_before},
                     {"disagreeing_after", s.disagreeing_after}, {"edits", s.edits}, {"seconds", s.seconds},
                     {"screened_out", s.screened_out}, {"target_nodes", s.target_nodes},
                     {"finding_summaries", s.finding_summaries}, {"reverts", s.reverts}});
  json counts = json::object();
  for (const auto& [type, c] : r.counts)
    counts[type] = {{"localized", c.localized}, {"tried", c.tried}, {"kept", c.kept}};
  json timings = json::object();
  for (const auto& t : r.timings) timings[t.phase] = t.seconds;
  json j{{"schema", "fetafix.repair/1"},
         {"images", r.images},
         {"initial_disagreeing", r.initial_disagreeing},
         {"final_disagreeing", r.final_disagreeing},
         {"initial_discrepancy", r.images ? static_cast<double>(r.initial_disagreeing) / r.images : 0.0},
         {"final_discrepancy", r.images ? static_cast<double>(r.final_disagreeing) / r.images : 0.0},
         {"history", r.history},
         {"steps", std::move(steps)},
         {"counts", std::move(counts)},
         {"kept_edits", r.patch.edits.size()},
         {"preprocess", r.patch.preprocess ? r.patch.preprocess->to_json() : json(nullptr)},
         {"stop_reason", r.stop_reason},
         {"time_limit_reached", r.time_limit_reached},
         {"evaluations", {{"full", r.full_runs}, {"partial", r.partial_runs}}},
         {"timings_seconds", std::move(timings)}};
  json per_image = json::array();
  for (size_t i = 0; i < r.image_files.size(); ++i)
    per_image.push_back({{"file", r.image_files[i]},
                         {"agreed_before", i < r.initial_agree.size() && r.initial_agree[i]},
                         {"agrees_after", i < r.final_agree.size() && r.final_agree[i]}});
  j["per_image"] = std::move(per_image);
  if (r.validation)
    j["validation"] = {{"images", r.validation->images},
                       {"initial_disagreeing", r.validation->initial_disagreeing},
                       {"final_disagreeing", r.validation->final_disagreeing},
                       {"newly_disagreeing", r.validation->newly_disagreeing}};
  return j;
}

std::string format_report(const RepairResult& r) {
  std::string out;
  auto pct = [&](size_t n, size_t of) { return of ? 100.0 * n / of : 0.0; };
  out += fmt::format("Detection images: {}   disagreement {:.2f}% ({}) -> {:.2f}% ({})\n", r.images,
                     pct(r.initial_disagreeing, r.images), r.initial_disagreeing, pct(r.final_disagreeing, r.images),
                     r.final_disagreeing);
  if (r.validation)
    out += fmt::format("Validation images: {}   disagreement {:.2f}% ({}) -> {:.2f}% ({}); newly disagreeing: {}\n",
                       r.validation->images, pct(r.validation->initial_disagreeing, r.validation->images),
                       r.validation->initial_disagreeing, pct(r.validation->final_disagreeing, r.validation->images),
                       r.validation->final_disagreeing, r.validation->newly_disagreeing.size());
  out += "Kept repairs:\n";
  size_t kept = 0;
  for (const auto& s : r.steps)
    if (s.kept) {
      ++kept;
      out += fmt::format("  [{}] {}  ({} -> {} disagreeing)\n", s.type, s.description, s.disagreeing_before,
                         s.disagreeing_after);
    }
  if (!kept) out += "  none\n";
  out += "Per type (localized / tried / kept):";
  for (const auto& [type, c] : r.counts) out += fmt::format("  {} {}/{}/{}", type, c.localized, c.tried, c.kept);
  out += fmt::format("\nStopped: {}\n", r.stop_reason);
  return out;
}

}  // namespace fetafix::repair
