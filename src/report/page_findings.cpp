// The layer-ranking and findings sections of the report page.
#include "report/page.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>


namespace fetafix::report::detail {
namespace fs = std::filesystem;

void Page::ranking(std::string& s) {
  if (rounds_.empty()) return;
  open_section(s, "ranking", "Layer ranking",
               "Layer-local replay: the error each matched layer's Target region adds by itself, fed the Source's "
               "own activations (relative L2; it does not propagate, so it points at the layer that changed). "
               "Activation analysis (the paper's): the share of output elements whose Target−Source difference on "
               "images that disagree is unlike the one on images that agree (Kruskal–Wallis). Red bars carry a "
               "fault finding.");
  // Repair ranks only in rounds where the cheap candidates leave disagreement behind.
  std::vector<size_t> ranked_rounds;
  for (size_t k = 0; k < rounds_.size(); ++k)
    if (!rounds_[k]->activation.ranked.empty() || !rounds_[k]->replay.ranked.empty()) ranked_rounds.push_back(k);
  if (ranked_rounds.empty()) {
    std::string why = rounds_.front()->activation.skipped_reason;
    if (why.empty())
      why = in_.repair ? "the repair ranks layers only when the input-level fixes and the group of weight fixes leave "
                         "images disagreeing, and this run did not need it"
                       : "no matched layers";
    out(s, "<p class=\"note\">No ranking: {}</p></section>\n", escape(why));
    return;
  }
  const int first_round = in_.repair ? 1 : 0;
  for (size_t k : ranked_rounds) {
    const int round = first_round + static_cast<int>(k);
    if (in_.repair && rounds_.size() > 1)
      out(s, "<h3 class=\"round\">Round {}<span class=\"muted\">{}</span></h3>", round,
          round == 1 ? "the Target as given" : "the Target as repaired so far");
    replay_ranking_of(s, rounds_[k]->replay, round);
    if (!rounds_[k]->activation.ranked.empty()) ranking_of(s, rounds_[k]->activation, round);
  }
  s += "</section>\n";
}

// Anchors of ranked layers: round 1 (or a localize report) keeps the short form.
std::string Page::layer_anchor(int round, int rank) {
  return round <= 1 ? fmt::format("layer-{}", rank + 1) : fmt::format("layer-r{}-{}", round, rank + 1);
}

// Each layer's bar colour: red when a fault finding of the round names it, green when only
// harmless or equivalent ones do.
std::string Page::layer_class(int round, const std::string& source_node) const {
  std::string cls = "plain";
  for (size_t i = 0; i < findings_.size(); ++i) {
    if (round_of_[i] != round || source_node.empty() || findings_[i].source_node != source_node) continue;
    if (findings_[i].is_fault()) return "fault";
    cls = "harmless";
  }
  return cls;
}

// One chart for both rankings: the label column is as wide as the longest label needs.
std::string layer_bar_chart(const std::vector<Bar>& bars) {
  BarChartOptions bo;
  bo.width = 1100;
  size_t longest = 0;
  for (const auto& b : bars) longest = std::max(longest, std::min<size_t>(46, b.label.size()));
  bo.label_width = std::clamp(static_cast<int>(longest * 7.4 + 20), 120, 400);
  return horizontal_bar_chart(bars, bo);
}

namespace {

std::string replay_error_text(const localize::RegionError& e) {
  if (e.status == localize::ReplayStatus::kOutputShapeDiffers) return "output shape differs";
  if (e.nan_mismatches > 0) return fmt::format("NaN on one side ({})", e.nan_mismatches);
  if (std::isinf(e.relative_l2)) return "∞ (Source all zero)";
  return number(e.relative_l2);
}

}  // namespace

void Page::replay_ranking_of(std::string& s, const localize::LocalReplay& r, int round) {
  out(s, "<h4>By layer-local replay</h4>");
  if (r.ranked.empty()) {
    out(s, "<p class=\"note\">Not run: {}</p>", escape(r.skipped_reason.empty() ? "no matched layers" : r.skipped_reason));
    return;
  }
  const auto exceeding = r.exceeding();
  out(s, "<div class=\"meta\"><span>{} disagreeing images</span><span>{} of {} layers above the tolerance {}</span></div>",
      r.images, exceeding.size(), r.ranked.size(), number(r.tolerance));
  // A changed shape or a one-sided NaN outranks every finite error: its bar is full length.
  double longest = 0;
  for (const auto* l : exceeding)
    if (std::isfinite(l->error.severity())) longest = std::max(longest, l->error.severity());
  std::vector<Bar> bars;
  for (const auto* l : exceeding) {
    if (bars.size() >= o_.max_chart_layers) break;
    const double severity = l->error.severity();
    bars.push_back({fmt::format("{}. {}", l->rank + 1, l->source_node),
                    std::isfinite(severity) ? severity : (longest > 0 ? longest : 1.0), replay_error_text(l->error),
                    layer_class(round, l->source_node),
                    fmt::format("{} ↔ {}: relative L2 {}, max |Δ| {} (max |Source| {})", l->source_node, l->target_node,
                                replay_error_text(l->error), number(l->error.max_abs_error),
                                number(l->error.max_abs_source)),
                    ""});
  }
  if (bars.empty()) {
    out(s, "<p class=\"note\">No layer adds error above the tolerance by itself.</p>");
    return;
  }
  s += layer_bar_chart(bars);
  if (exceeding.size() > bars.size())
    out(s, "<p class=\"muted\">Top {} of {} layers above the tolerance.</p>", bars.size(), exceeding.size());
}

void Page::ranking_of(std::string& s, const localize::ActivationAnalysis& a, int round) {
  out(s, "<h4>By activation analysis (the paper's)</h4>");
  out(s, "<div class=\"meta\"><span>{} similar images (of {}) and {} dissimilar (of {}) per repeat</span><span>{} repeat(s)</span>"
         "<span>{} pass(es) over the images</span></div>",
      a.similar_used, a.similar_available, a.dissimilar_used, a.dissimilar_available, a.repeats, a.passes);
  // Findings per ranked layer.
  std::map<std::string, std::vector<size_t>> by_node;
  for (size_t i = 0; i < findings_.size(); ++i)
    if (round_of_[i] == round && !findings_[i].source_node.empty()) by_node[findings_[i].source_node].push_back(i);
  std::vector<Bar> bars;
  for (const auto& l : a.ranked) {
    if (l.rank < 0 || bars.size() >= o_.max_chart_layers) continue;
    bars.push_back({fmt::format("{}. {}", l.rank + 1, l.source_node), l.problematic_fraction,
                    percent(l.problematic_fraction), layer_class(round, l.source_node),
                    fmt::format("{} ↔ {}: {} of {} elements problematic; mean |Δ| similar {}, dissimilar {}",
                                l.source_node, l.target_node, percent(l.problematic_fraction), l.elements,
                                number(l.mean_abs_diff_similar), number(l.mean_abs_diff_dissimilar)),
                    "#" + layer_anchor(round, l.rank)});
  }
  s += layer_bar_chart(bars);
  size_t analysed = 0;
  for (const auto& l : a.ranked) analysed += l.rank >= 0;
  if (analysed > bars.size()) out(s, "<p class=\"muted\">Top {} of {} ranked layers; the table lists all.</p>", bars.size(), analysed);

  out(s, "<details class=\"more\"{}><summary>Per-layer difference statistics ({} layers)</summary><div class=\"table-scroll\">"
         "<table><thead><tr><th class=\"num\">Rank</th><th>Source layer</th><th>Target layer</th><th class=\"num\">Elements</th>"
         "<th class=\"num\">Problematic</th><th class=\"num\">Per repeat</th><th class=\"num\">Mean |Δ| similar</th>"
         "<th class=\"num\">Mean |Δ| dissimilar</th><th>Findings</th></tr></thead><tbody>",
      a.ranked.size() <= 25 ? " open" : "", a.ranked.size());
  for (const auto& l : a.ranked) {
    std::string per_repeat;
    for (size_t i = 0; i < l.per_repeat_fraction.size(); ++i) per_repeat += (i ? " · " : "") + percent(l.per_repeat_fraction[i]);
    std::string fl;
    if (auto it = by_node.find(l.source_node); l.rank >= 0 && it != by_node.end())
      for (size_t i : it->second)
        out(fl, "<a href=\"#{}\">{}</a> ", finding_anchor(i), badge(type_name(findings_[i].type()), type_name(findings_[i].type())));
    std::string target = escape(l.target_node);
    if (!l.target_permutation.empty())
      target += fmt::format(" <span class=\"muted\" title=\"Target read through this transpose\">perm {}</span>",
                            shape_to_string(l.target_permutation));
    if (l.rank < 0) {
      out(s, "<tr><td class=\"num\">–</td><td><code>{}</code></td><td><code>{}</code></td><td colspan=\"6\" class=\"muted\">"
             "skipped: {}</td></tr>",
          escape(l.source_node), target, escape(l.skipped_reason));
      continue;
    }
    out(s, "<tr id=\"{}\"><td class=\"num\">{}</td><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td>"
           "<td class=\"num\"><b>{}</b></td><td class=\"num nowrap\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        layer_anchor(round, l.rank), l.rank + 1, escape(l.source_node), target, l.elements, percent(l.problematic_fraction, 2), per_repeat,
        number(l.mean_abs_diff_similar), number(l.mean_abs_diff_dissimilar), fl);
  }
  s += "</tbody></table></div></details>";
}

std::string Page::node_html(const NodeCell& c, const NodeCell* other, const std::set<std::string>& differing,
                      const std::string& fault_attribute) const {
  std::string cls = "node";
  if (c.core) cls += " core";
  if (c.focus) cls += " focus";
  if (c.unmatched_core) cls += " unmatched";
  std::string s = fmt::format("<div class=\"{}\"><span class=\"op\">{}</span><span class=\"nm\">{}</span>", cls,
                              escape(c.op), escape(c.name));
  if (c.unmatched_core) s += " " + badge("rejected", "unmatched");
  std::string attrs, weights;
  for (const auto& [k, v] : c.attributes) {
    const bool diff = differing.count(k) > 0;
    out(attrs, "<span class=\"a{}\"><i>{}</i> {}</span>",
        diff ? (c.focus && k == fault_attribute ? " diff fault" : " diff") : "", escape(k), escape(v));
  }
  if (other)  // attributes only the other side sets: show the gap where the reader looks for it
    for (const auto& [k, v] : other->attributes) {
      const bool here = std::any_of(c.attributes.begin(), c.attributes.end(), [&](const auto& a) { return a.first == k; });
      if (!here)
        out(attrs, "<span class=\"a diff absent{}\"><i>{}</i> absent</span>",
            c.focus && k == fault_attribute ? " fault" : "", escape(k));
    }
  for (const auto& w : c.weights)
    out(weights, "<span class=\"w{}\" title=\"input {}\"><i>[{}]</i> {} {}{}</span>", w.difference.empty() ? "" : " diff",
        w.input_index, w.input_index, escape(w.value), escape(w.type),
        w.difference.empty() ? "" : " — " + escape(w.difference));
  if (!attrs.empty()) s += "<div class=\"attrs\">" + attrs + "</div>";
  if (!weights.empty()) s += "<div class=\"ws\">" + weights + "</div>";
  return s + "</div>";
}

std::string Page::side_by_side_html(const std::vector<DiffRow>& rows, const Finding& f) const {
  const auto* lh = std::get_if<localize::HyperparametersEvidence>(&f.evidence);
  const std::string fault_attribute = lh ? lh->attribute : "";
  std::string s = fmt::format(
      "<div class=\"table-scroll\"><table class=\"sbs\"><thead><tr><th class=\"side-s\">Source · {}</th><th class=\"mid\">"
      "</th><th class=\"side-t\">Target · {}</th></tr></thead><tbody>",
      escape(fs::path(in_.source.label).filename().string()), escape(fs::path(in_.target.label).filename().string()));
  for (const auto& r : rows) {
    const char* cls = r.kind == RowKind::kMatched ? "matched" : r.kind == RowKind::kSameOp ? "same-op"
                      : r.kind == RowKind::kSourceOnly                                      ? "source-only"
                                                                                            : "target-only";
    std::string mid;
    switch (r.kind) {
      case RowKind::kMatched: mid = "<span class=\"link\">⟷</span>matched " + escape(r.confidence); break;
      case RowKind::kSameOp: mid = "<span class=\"link\">≈</span>same op"; break;
      case RowKind::kSourceOnly: mid = "only in Source"; break;
      case RowKind::kTargetOnly: mid = "only in Target"; break;
    }
    if (!r.differing_attributes.empty())
      mid += fmt::format("<br><span style=\"color:var(--warn)\">{} attr. differ</span>", r.differing_attributes.size());
    const NodeCell* so = r.source ? &*r.source : nullptr;
    const NodeCell* to = r.target ? &*r.target : nullptr;
    out(s, "<tr class=\"{}\"><td class=\"cell-s\">{}</td><td class=\"mid\">{}</td><td class=\"cell-t\">{}</td></tr>", cls,
        so ? node_html(*so, to, r.differing_attributes, fault_attribute) : "", mid,
        to ? node_html(*to, so, r.differing_attributes, fault_attribute) : "");
  }
  return s + "</tbody></table></div>";
}

// PP evidence reads best as its table of presets tried.
std::string Page::preprocessing_trials(const localize::PreprocessingEvidence& e) const {
  std::string s = "<div class=\"table-scroll\"><table><thead><tr><th>Preset</th><th>Role</th><th class=\"num\">Disagreement</th>"
                  "<th class=\"num\">Top-k agreement</th><th>Note</th></tr></thead><tbody>";
  const std::string best = e.trials.empty() ? std::string() : e.best_trial().preset;
  for (const auto& t : e.trials) {
    std::string note = t.measured ? "" : t.skipped_reason;
    if (t.measured && !t.same_as.empty()) note = "same as " + t.same_as;
    const bool is_best = t.preset == best && t.measured;
    out(s, "<tr{}><td><b>{}</b>{}{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"muted\">{}</td></tr>",
        is_best ? " style=\"background:var(--good-soft)\"" : "", escape(t.preset), is_best ? " " : "",
        is_best ? badge("kept", "best") : "", escape(t.role), t.measured ? percent(t.disagreement) : "–", t.measured ? percent(t.top_k_agreement) : "–",
        escape(note));
  }
  return s + "</tbody></table></div>";
}

void Page::findings(std::string& s) {
  if (rounds_.empty()) return;
  open_section(s, "findings", "Findings, side by side",
               "Source and Target around each finding: matched core layers sit side by side, nodes of the same op are "
               "aligned between them, and nodes without a counterpart get a hatched row. Differing attributes are "
               "highlighted; weights with a WB finding are red.");
  if (findings_.empty()) {
    s += "<p class=\"note\">Nothing was found: Source and Target agree where fetafix looks.</p></section>\n";
    return;
  }
  s += "<div class=\"legend\"><span><span class=\"sw\" style=\"box-shadow:0 0 0 2px var(--accent)\"></span>the finding's node</span>"
       "<span><span class=\"sw\" style=\"background:#fff3c4\"></span>attribute differs</span>"
       "<span><span class=\"sw\" style=\"background:var(--bad-soft)\"></span>the fault / differing weight</span>"
       "<span><span class=\"sw\" style=\"border:1px dashed var(--bad)\"></span>core layer without a partner</span>"
       "<span><span class=\"sw\" style=\"background:repeating-linear-gradient(135deg,#f6f7fa,#f6f7fa 3px,#e3e6ec 3px,#e3e6ec 6px)\">"
       "</span>no counterpart</span></div>";
  finding_filters(s);
  for (size_t i = 0; i < findings_.size(); ++i) {
    // A repair's findings by round: later rounds localize again on the Target as repaired so far.
    if (in_.repair && rounds_.size() > 1 && (i == 0 || round_of_[i] != round_of_[i - 1])) {
      size_t n = 0, faults = 0;
      for (size_t j = i; j < findings_.size() && round_of_[j] == round_of_[i]; ++j, ++n)
        faults += findings_[j].is_fault();
      out(s, "<h3 class=\"round\" id=\"findings-round-{}\">Round {}<span class=\"muted\">{} finding{} ({} fault{}) on the "
             "Target {}</span></h3>",
          round_of_[i], round_of_[i], n, n == 1 ? "" : "s", faults, faults == 1 ? "" : "s",
          round_of_[i] == 1 ? "as given" : "as repaired so far");
    }
    finding_card(s, i);
  }
  s += "</section>\n";
}

// Filters: all, faults, harmless, by repair outcome, by type.
void Page::finding_filters(std::string& s) const {
  std::set<std::string> types;
  std::set<RepairStatus> statuses;
  for (size_t i = 0; i < findings_.size(); ++i) {
    types.insert(type_name(findings_[i].type()));
    statuses.insert(outcomes_[i].status);
  }
  s += "<div class=\"filters\"><button data-filter=\"all\" class=\"on\">All</button>"
       "<button data-filter=\"fault:1\">Faults</button><button data-filter=\"fault:0\">Harmless</button>";
  for (RepairStatus st : {RepairStatus::kKept, RepairStatus::kRejected, RepairStatus::kNotTried})
    if (statuses.count(st)) out(s, "<button data-filter=\"status:{}\">{}</button>", status_key(st), status_text(st));
  for (FaultType type : localize::kAllFaultTypes)
    if (const std::string t = type_name(type); types.count(t)) out(s, "<button data-filter=\"type:{}\">{}</button>", t, t);
  s += "</div>";
}

namespace {

// What reverting the finding changed on the samples (issue 17's impact) and its numeric size.
void out_impact(std::string& s, const localize::Impact& impact) {
  std::string text = localize::impact_outcome_text(impact);
  const std::string size = localize::impact_size_text(impact);
  if (!size.empty()) text += (text.empty() ? "" : "; ") + size;
  if (!text.empty()) out(s, "<p class=\"reason\"><b>Impact:</b> {}</p>", escape(text));
}

}  // namespace

// One finding's card: its badges, outcome, nodes, the side-by-side view (PP: the presets tried)
// and the evidence.
void Page::finding_card(std::string& s, size_t i) const {
  const Finding& f = findings_[i];
  const auto& oc = outcomes_[i];
  const bool fault = f.is_fault();
  const std::string t = type_name(f.type());
  out(s, "<details class=\"finding {}\" id=\"{}\" data-type=\"{}\" data-fault=\"{}\" data-status=\"{}\"{}>",
      fault ? "fault" : "harmless", finding_anchor(i), t, fault ? 1 : 0, status_key(oc.status),
      fault && i < o_.open_findings ? " open" : "");
  out(s, "<summary><span class=\"idx\">#{}</span>{}", i + 1, badge(t, t));
  if (in_.repair && rounds_.size() > 1) s += badge("round", fmt::format("round {}", round_of_[i]));
  out(s, "<span class=\"text\">{}</span>", escape(f.summary));
  if (f.layer_rank >= 0) s += badge("rank", fmt::format("rank {}", f.layer_rank + 1));
  if (f.equivalence != Equivalence::kNotChecked) {
    const std::string e(localize::equivalence_name(f.equivalence));
    s += badge(e, e, e == "equivalent" ? "the Target computes the same function here on real activations"
                                       : "the Target computes something else here on real activations");
  }
  // Not a fault: equivalent (the badge above says so), harmless on these samples, or a note.
  const bool note = f.verdict == localize::Verdict::kNote, unseen = f.verdict == localize::Verdict::kHarmless;
  s += badge(fault ? "fault" : "harmless", fault ? "fault" : note ? "note" : unseen ? "harmless on these samples" : "harmless",
             note ? "the data fits both models" : unseen ? "no sample disagrees: it changes no outcome here" : "");
  if (oc.status != RepairStatus::kNotRepaired) s += badge(status_key(oc.status), status_text(oc.status), oc.reason);
  s += "</summary><div class=\"body\">";
  if (!oc.reason.empty() && oc.status != RepairStatus::kNotRepaired)
    out(s, "<p class=\"reason\"><b>{}:</b> {}</p>", status_text(oc.status), escape(oc.reason));
  if (!f.source_node.empty() || !f.target_node.empty())
    out(s, "<p class=\"reason\">Source <code>{}</code> ↔ Target <code>{}</code></p>",
        escape(f.source_node.empty() ? "–" : f.source_node), escape(f.target_node.empty() ? "–" : f.target_node));
  out_impact(s, f.impact);
  std::string view;
  if (const auto* pp = std::get_if<localize::PreprocessingEvidence>(&f.evidence)) {
    view = preprocessing_trials(*pp);
  } else if (source_graph_ && target_graph_ && i < o_.max_side_by_side) {
    auto rows = side_by_side(*source_graph_, *target_graph_, loc_of_[i]->matching, f, weight_diffs_, o_.side_by_side);
    if (!rows.empty()) view = side_by_side_html(rows, f);
  }
  s += view;
  std::string evidence = localize::evidence_json(f).dump(2);
  if (evidence.size() > 6000) evidence = evidence.substr(0, 6000) + "\n… (truncated; the --json log has it all)";
  out(s, "<details class=\"more\"{}><summary>Evidence</summary><pre class=\"evidence\">{}</pre></details>",
      view.empty() ? " open" : "", escape(evidence));
  s += "</div></details>\n";
}

}  // namespace fetafix::report::detail
