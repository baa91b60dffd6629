#include "repair/driver.h"

#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "compare/compare.h"
#include "compare/evaluator.h"
#include "compare/pair_setup.h"
#include "localize/input_checks.h"
#include "repair/loop.h"
#include "repair/repair.h"

namespace fetafix::repair {
namespace fs = std::filesystem;
using localize::Equivalence;
using localize::FaultType;
using localize::Finding;

namespace detail {
namespace {

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

// Input-based findings first, by type; then layer findings by equivalence, rank and type.
bool candidate_before(const RepairCandidate& a, const RepairCandidate& b) {
  const Finding &fa = a.finding, &fb = b.finding;
  const bool ia = localize::is_input_level(fa.type()), ib = localize::is_input_level(fb.type());
  if (ia != ib) return ia;
  if (ia) return static_cast<int>(fa.type()) < static_cast<int>(fb.type());
  const int ea = equivalence_order(fa.equivalence), eb = equivalence_order(fb.equivalence);
  if (ea != eb) return ea < eb;
  const int ra = fa.layer_rank < 0 ? INT32_MAX : fa.layer_rank, rb = fb.layer_rank < 0 ? INT32_MAX : fb.layer_rank;
  if (ra != rb) return ra < rb;
  return static_cast<int>(fa.type()) < static_cast<int>(fb.type());
}

}  // namespace

Loop::Loop(const compare::ModelSide& source, const compare::ModelSide& target, const RepairOptions& o,
           RepairResult& r, compare::LabelEvaluator& eval)
    : source_(source), target_side_(target), o_(o), r_(r), eval_(eval), working_(*target.model),
      log_(working_), acceptance_(o, eval), start_(Clock::now()), original_preset_(target.preset) {
  target_side_.model = &working_;
}

Status Loop::run() {
  const auto t0 = Clock::now();
  FETAFIX_ASSIGN_OR_RETURN(auto initial, eval_.score_full(working_));
  r_.timings.push_back({"initial Target run", seconds_since(t0)});
  r_.images = eval_.images();
  r_.initial_disagreeing = initial.disagreeing;
  r_.initial_agree = initial.agree;
  for (const auto& f : eval_.samples().files()) r_.image_files.push_back(f.name);
  r_.history.push_back(initial.discrepancy);
  const auto t1 = Clock::now();
  acceptance_.set_current(std::move(initial), working_);
  r_.timings.push_back({"partial-execution base", seconds_since(t1)});
  say(fmt::format("initial disagreement {:.2f}% ({} of {} images)", 100 * acceptance_.current().discrepancy,
                  acceptance_.disagreeing(), r_.images));
  for (int round = 1; round <= o_.max_rounds; ++round) {
    if (acceptance_.disagreeing() == 0) { r_.stop_reason = "fully repaired"; break; }
    if (out_of_time()) break;
    round_ = round;
    kept_at_round_start_ = kept_;
    FETAFIX_TRY_STATUS(repair_round());
    if (acceptance_.disagreeing() == 0) { r_.stop_reason = "fully repaired"; break; }
    if (r_.time_limit_reached || stopped_) break;
    if (kept_ == kept_at_round_start_) { r_.stop_reason = "no remaining candidate lowered the disagreement"; break; }
    if (round == o_.max_rounds) r_.stop_reason = fmt::format("round limit ({}) reached", o_.max_rounds);
  }
  if (r_.stop_reason.empty() && acceptance_.disagreeing() == 0) r_.stop_reason = "fully repaired";
  if (!report_steps()) stopped_ = true;  // asked to stop at the last step: still stopped
  r_.final_disagreeing = acceptance_.disagreeing();
  r_.final_agree = acceptance_.current().agree;
  r_.repaired = working_;
  r_.patch.edits = log_.edits();
  r_.full_runs = eval_.full_runs();
  r_.partial_runs = eval_.partial_runs();
  return {};
}

// ---- a round: localize, plan, then input findings, groups, layer findings one by one, the joint
// step, and the preprocessing revisit; it ends early when nothing disagrees any more.

Status Loop::repair_round() {
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
  FETAFIX_ASSIGN_OR_RETURN(auto loc, localize_round(lo));
  r_.timings.push_back({fmt::format("round {} localize", round_), seconds_since(t0)});
  const auto t1 = Clock::now();

  std::vector<RepairCandidate> candidates = plan_candidates(loc.findings);
  std::set<const RepairCandidate*> handled;      // tried (input-based) or kept (layer findings)
  std::set<const RepairCandidate*> kept_inputs;  // input-based ones kept
  rejections_.clear();
  const auto done = [&] { return acceptance_.disagreeing() == 0; };
  try_input_findings(candidates, handled, kept_inputs);  // they change what layers see
  if (!done()) try_weight_group(candidates, handled);
  if (!done()) {
    const size_t kept_before = kept_;
    try_hyperparameter_groups(candidates, handled);
    // A weight group that lowered nothing while an LH fault broke the same images may lower it
    // now: retried whole (paddleocr-multi: the 54 int8 weights only help once the Clip bounds are
    // back; without the retry the layer findings one by one kept 2 of them, leaving 52 int8).
    if (!done() && kept_ > kept_before) try_weight_group(candidates, handled);
  }
  if (done()) {
    record_localization(std::move(loc), candidates);
    return finish_round(t1);
  }
  // What is left goes one finding at a time, in the order of the layer ranking.
  if (!out_of_time()) FETAFIX_TRY_STATUS(rank_candidates(lo, loc, candidates));
  Members order;
  for (const auto& c : candidates) order.push_back(&c);
  std::stable_sort(order.begin(), order.end(),
                   [](const RepairCandidate* a, const RepairCandidate* b) { return candidate_before(*a, *b); });
  record_localization(std::move(loc), candidates);
  try_layer_findings(order, handled);
  if (kept_ == kept_at_round_start_ && acceptance_.disagreeing() > 0 && o_.joint_step && !out_of_time())
    try_joint_phase(order, handled, kept_inputs);
  return finish_round(t1);
}

// The static checks (and PP when due) on the current Target, with the agreement flags the
// evaluator has: no image runs through both models again. The ranking comes later, only if the
// cheap candidates leave work.
Result<localize::LocalizeResult> Loop::localize_round(const localize::LocalizeOptions& lo) {
  localize::LocalizeStages stages;
  stages.preprocessing = pp_due_;
  stages.activation_analysis = false;
  const auto view = detection_view();
  FETAFIX_ASSIGN_OR_RETURN(auto loc, localize::localize_detected(source_, target_side_, view, lo, stages));
  pp_due_ = false;
  return loc;
}

// One candidate per fault (counted once over all rounds, by id), in trying order; a fault no
// strategy can repair is logged as a step that was not tried. Findings localize did not judge a
// fault (equivalent, harmless on these samples, notes: finding.h's Verdict) are neither counted
// nor repaired: their edit would change no outcome.
std::vector<RepairCandidate> Loop::plan_candidates(const std::vector<Finding>& findings) {
  std::vector<RepairCandidate> candidates;
  for (const auto& f : findings) {
    if (!f.is_fault()) continue;
    if (seen_.insert(f.id).second) counts_of(r_, f.type()).localized++;
    auto c = plan_repair(*source_.model, working_, f);
    if (!c.ok()) {
      RepairStep step = make_step(StepKind::kFinding, f.type(), f.summary, {&f});
      step.reason = "no repair planned: " + c.error().message;
      step.disagreeing_after = acceptance_.disagreeing();
      r_.steps.push_back(std::move(step));
      continue;
    }
    candidates.push_back(std::move(c).value());
  }
  std::stable_sort(candidates.begin(), candidates.end(), candidate_before);
  return candidates;
}

void Loop::try_input_findings(const std::vector<RepairCandidate>& candidates, std::set<const RepairCandidate*>& handled,
                              std::set<const RepairCandidate*>& kept_inputs) {
  for (const auto& c : candidates) {
    if (!localize::is_input_level(c.finding.type()) || out_of_time()) continue;
    handled.insert(&c);
    const FaultType type = c.finding.type();
    if (rejections_[type] >= o_.max_rejections) continue;
    if (try_candidate(c)) {
      rejections_[type] = 0;
      kept_inputs.insert(&c);
      pp_due_ = type != FaultType::kPP && !r_.patch.preprocess;
    } else {
      rejections_[type]++;
    }
  }
}

// Ranks the layers by activation analysis and gives the candidates their findings' ranks.
Status Loop::rank_candidates(const localize::LocalizeOptions& lo, localize::LocalizeResult& loc,
                             std::vector<RepairCandidate>& candidates) {
  const auto t0 = Clock::now();
  say(fmt::format("round {}: ranking layers by activation analysis and local replay", round_));
  localize::LocalizeResult ranked;
  ranked.matching = loc.matching;
  for (const auto& c : candidates) ranked.findings.push_back(c.finding);
  FETAFIX_TRY_STATUS(localize::rank_layers(source_, target_side_, detection_view(), lo, ranked));
  loc.activation = ranked.activation;
  loc.replay = std::move(ranked.replay);
  std::map<std::string, int> rank;  // by finding id
  for (const auto& f : ranked.findings) rank[f.id] = f.layer_rank;
  for (auto& c : candidates)
    if (auto it = rank.find(c.finding.id); it != rank.end()) c.finding.layer_rank = it->second;
  r_.timings.push_back({fmt::format("round {} ranking", round_), seconds_since(t0)});
  return {};
}

void Loop::try_layer_findings(const Members& order, std::set<const RepairCandidate*>& handled) {
  for (const auto* c : order) {
    if (handled.count(c)) continue;
    if (out_of_time()) break;
    const FaultType type = c->finding.type();
    if (rejections_[type] >= o_.max_rejections) continue;
    if (try_candidate(*c)) {
      rejections_[type] = 0;
      handled.insert(c);
      if (acceptance_.disagreeing() == 0) break;
    } else {
      rejections_[type]++;
    }
  }
}

// Keeps the round's localization for reports, with the ranks the candidates ended up with.
void Loop::record_localization(localize::LocalizeResult loc, const std::vector<RepairCandidate>& candidates) {
  std::map<std::string, int> rank;  // by finding id
  for (const auto& c : candidates) rank[c.finding.id] = c.finding.layer_rank;
  for (auto& f : loc.findings)
    if (auto it = rank.find(f.id); it != rank.end()) f.layer_rank = it->second;
  r_.localizations.push_back(std::move(loc));
}

Status Loop::finish_round(Clock::time_point t1) {
  if (acceptance_.disagreeing() > 0 && !out_of_time()) revisit_preprocessing();
  r_.timings.push_back({fmt::format("round {} repair", round_), seconds_since(t1)});
  return {};
}

localize::DetectionView Loop::detection_view() const {
  localize::DetectionView v;
  v.image_dir = eval_.samples().dir();
  v.samples = eval_.samples();
  v.files = eval_.files();
  v.usable.assign(v.files.size(), true);
  v.agree = acceptance_.current().agree;
  v.source_preset = eval_.source_preset();
  v.target_preset = eval_.target_preset();
  return v;
}

// ---- one step

// A step for `findings`: one finding (its nodes), a group (its members' distinct Target nodes and
// summaries) or a JOINT step (each member's Target node and summary).
RepairStep Loop::make_step(StepKind kind, FaultType type, std::string description,
                           const std::vector<const Finding*>& findings) const {
  RepairStep step;
  step.round = round_;
  step.kind = kind;
  step.type = type;
  step.description = std::move(description);
  step.disagreeing_before = acceptance_.disagreeing();
  for (const auto* f : findings) {
    step.finding_ids.push_back(f->id);
    const std::string& node = f->target_node;
    const bool listed = std::find(step.target_nodes.begin(), step.target_nodes.end(), node) != step.target_nodes.end();
    if (kind == StepKind::kGroup ? !listed : !node.empty()) step.target_nodes.push_back(node);
    if (kind != StepKind::kFinding) step.finding_summaries.push_back(f->summary);
  }
  if (kind == StepKind::kFinding && findings.size() == 1) {
    step.source_node = findings[0]->source_node;
    step.target_node = findings[0]->target_node;
  }
  return step;
}

bool Loop::try_candidate(const RepairCandidate& c) {
  return try_step({StepKind::kFinding, c.finding.type(), c.description, {&c.finding}, c.edits, c.preset, false});
}

// Applies the step's edits, screens them, scores them, and keeps or undoes them. Returns whether
// they were kept. Counts are per finding (a group counts each member), as the paper's Table 2.
bool Loop::try_step(const StepSpec& spec) {
  RepairStep step = make_step(spec.kind, spec.type, spec.description, spec.findings);
  step.edits = spec.edits.size();
  const auto t0 = Clock::now();
  const size_t findings = spec.kind == StepKind::kGroup ? std::max<size_t>(spec.findings.size(), 1) : 1;
  TypeCounts& counts = counts_of(r_, spec.type);
  counts.tried += findings;
  const size_t log_before = log_.size();
  if (auto st = log_.apply_all(spec.edits); !st.ok()) {
    step.reason = "no longer applies: " + st.error().message;
    step.disagreeing_after = acceptance_.disagreeing();
    r_.steps.push_back(step);
    return false;
  }
  // An edit of the graph input's shape (ID) changes what the images must be resized to: the
  // same preprocessing, bound again to the edited input.
  const bool rebinding = !spec.preset && changes_input_shape(spec.edits);
  const std::optional<data::Preset> feed = spec.preset ? spec.preset : rebinding ? std::optional(rebound_preset()) : std::nullopt;
  size_t screened = 0;
  if (!feed && !spec.screened_already && !acceptance_.passes_screen(working_, screened)) {
    undo_to(log_before);
    step.screened_out = true;
    step.reason = fmt::format("no drop on the {} screening images ({} of them disagree, {} would)",
                              acceptance_.screen().size(), acceptance_.screen_disagreeing(), screened);
    step.disagreeing_after = acceptance_.disagreeing();
    step.seconds = seconds_since(t0);
    say(fmt::format("round {} {} rejected on screen: {} ({})", round_, step.type_label(), step.description, step.reason));
    r_.steps.push_back(std::move(step));
    return false;
  }
  auto score = feed ? eval_.score_with_preset(working_, *feed) : eval_.score(working_);
  std::string reason;
  bool keep = score.ok() && acceptance_.acceptable(*score, reason);
  if (keep && score->partial) {  // a partial run proposes, a full run decides
    score = eval_.score_full(working_);
    keep = score.ok() && acceptance_.acceptable(*score, reason);
  }
  if (!score.ok()) reason = "the edited Target does not run: " + score.error().message;
  if (!keep) {
    undo_to(log_before);
    step.reason = reason;
    return record(std::move(step), score.ok() ? std::optional(score->disagreeing) : std::nullopt, t0);
  }
  if (feed) {
    if (auto st = eval_.set_target_preset(working_, *feed); !st.ok()) reason = st.error().message;
    if (!rebinding) r_.patch.preprocess = *feed;
    target_side_.preset = *feed;
    input_rebound_ = input_rebound_ || rebinding;
  }
  kept_after_preprocessing_ = !(feed && !rebinding);
  if (feed && !rebinding) last_preset_step_ = step;  // what a revisit would undo
  counts.kept += findings;
  accept(step, std::move(score).value());
  return record(std::move(step), std::nullopt, t0);
}

// A kept step: `score` becomes the current one and the next base. Counts stay with the caller.
void Loop::accept(RepairStep& step, compare::CandidateScore score) {
  ++kept_;
  step.kept = true;
  step.reason = "kept";
  r_.history.push_back(score.discrepancy);
  acceptance_.set_current(std::move(score), working_);
}

// Logs a decided step: after = the new count if kept, else the candidate's (`scored`) if it ran.
bool Loop::record(RepairStep step, std::optional<size_t> scored, Clock::time_point t0) {
  step.disagreeing_after = step.kept ? acceptance_.disagreeing() : scored.value_or(acceptance_.disagreeing());
  step.seconds = seconds_since(t0);
  say(fmt::format("round {} {} {}: {} -> {} ({})", round_, step.type_label(), step.kept ? "kept" : "rejected",
                  step.disagreeing_before, step.disagreeing_after, step.description));
  const bool kept = step.kept;
  r_.steps.push_back(std::move(step));
  return kept;
}

void Loop::undo_to(size_t log_size) {
  while (log_.size() > log_size) log_.undo_last();
}

// The Target's preprocessing, to be bound again to an input whose shape an edit changed.
data::Preset Loop::rebound_preset() const {
  data::Preset p = eval_.target_preset();
  p.width = p.height = 0;
  return p;
}

// ---- time

void Loop::say(const std::string& line) const {
  if (o_.log) o_.log(line);
}

// Under mpirun every rank must stop at the same point (each call is then collective): the ranks
// agree that time is up when any rank's clock says so.
bool Loop::out_of_time() {
  if (r_.time_limit_reached || stopped_) return true;
  if (!report_steps()) {
    stopped_ = true;
    r_.stop_reason = "stopped by the progress callback";
    return true;
  }
  const Communicator& comm = compare::ranks_of(o_.localize.compare);
  const bool mine = seconds_since(start_) >= o_.time_limit_seconds;
  if (comm.size() > 1 ? comm.all_true(!mine) : !mine) return false;
  r_.time_limit_reached = true;
  r_.stop_reason = fmt::format("time limit ({:.0f} s) reached", o_.time_limit_seconds);
  return true;
}

// Hands the steps decided since the last call to options.on_step; false when it asks to stop.
bool Loop::report_steps() {
  bool go_on = true;
  for (; reported_steps_ < r_.steps.size(); ++reported_steps_)
    if (o_.on_step && go_on) go_on = o_.on_step(r_.steps[reported_steps_]);
  return go_on;
}

Clock::time_point Loop::deadline() const {
  return start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.time_limit_seconds));
}

}  // namespace detail

namespace {

Result<Validation> validate(const compare::ModelSide& source, const compare::ModelSide& target,
                            const RepairResult& r, const data::SampleSet& samples, const compare::CompareOptions& co) {
  FETAFIX_ASSIGN_OR_RETURN(auto eval, compare::LabelEvaluator::create(source, target, samples, co));
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
      v.newly_disagreeing.push_back(eval->samples().files()[i].name);
  return v;
}

}  // namespace

std::string RepairStep::type_label() const {
  switch (kind) {
    case StepKind::kFinding: return std::string(localize::fault_type_name(type));
    case StepKind::kGroup: return std::string(localize::fault_type_name(type)) + "*";
    case StepKind::kJoint: return "JOINT";
  }
  return "?";
}

Result<RepairResult> repair_target(const compare::ModelSide& source, const compare::ModelSide& target,
                                   const fs::path& image_dir, const RepairOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto samples, compare::open_samples(image_dir, options.localize.compare));
  return repair_target(source, target, std::move(samples), options);
}

Result<RepairResult> repair_target(const compare::ModelSide& source, const compare::ModelSide& target,
                                   data::SampleSet samples, const RepairOptions& options) {
  RepairResult r;
  using detail::Clock;
  using detail::seconds_since;
  const auto t0 = Clock::now();
  FETAFIX_ASSIGN_OR_RETURN(auto eval,
                           compare::LabelEvaluator::create(source, target, std::move(samples), options.localize.compare));
  r.timings.push_back({"source run and image cache", seconds_since(t0)});
  detail::Loop loop(source, target, options, r, *eval);
  FETAFIX_TRY_STATUS(loop.run());
  if (loop.stopped()) return make_error("stopped by the progress callback after {} steps", r.steps.size());
  if (options.validation) {
    const auto tv = Clock::now();
    FETAFIX_ASSIGN_OR_RETURN(r.validation, validate(source, target, r, *options.validation, options.localize.compare));
    r.timings.push_back({"validation", seconds_since(tv)});
  }
  r.timings.push_back({"total", seconds_since(t0)});
  return r;
}

std::string_view outcome_name(RepairOutcome outcome) {
  switch (outcome) {
    case RepairOutcome::kRepaired: return "repaired";
    case RepairOutcome::kImproved: return "improved";
    case RepairOutcome::kNoImprovement: return "no_improvement";
  }
  return "no_improvement";
}

nlohmann::json to_json(const RepairStep& s) {
  return {{"round", s.round}, {"type", s.type_label()}, {"description", s.description},
          {"source_node", s.source_node}, {"target_node", s.target_node}, {"kept", s.kept},
          {"reason", s.reason}, {"disagreeing_before", s.disagreeing_before},
          {"disagreeing_after", s.disagreeing_after}, {"edits", s.edits}, {"seconds", s.seconds},
          {"screened_out", s.screened_out}, {"target_nodes", s.target_nodes},
          {"finding_summaries", s.finding_summaries}, {"reverts", s.reverts},
          {"finding_ids", s.finding_ids}};
}

nlohmann::json to_json(const RepairResult& r) {
  using nlohmann::json;
  json steps = json::array();
  for (const auto& s : r.steps) steps.push_back(to_json(s));
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
      out += fmt::format("  [{}] {}  ({} -> {} disagreeing)\n", s.type_label(), s.description, s.disagreeing_before,
                         s.disagreeing_after);
    }
  if (!kept) out += "  none\n";
  out += "Per type (localized / tried / kept):";
  for (const auto& [type, c] : r.counts) out += fmt::format("  {} {}/{}/{}", type, c.localized, c.tried, c.kept);
  out += fmt::format("\nStopped: {}\n", r.stop_reason);
  return out;
}

}  // namespace fetafix::repair
