#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "common/fs.h"
#include "model/attributes.h"
#include "model/graph.h"
#include "match/match.h"
#include "model/weights.h"
#include "report/assets.h"
#include "report/html.h"
#include "report/thumbnail.h"

namespace fetafix::report {
namespace fs = std::filesystem;
using localize::Equivalence;
using localize::FaultType;
using localize::Finding;

namespace {

template <class... Args>
void out(std::string& s, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(s), f, std::forward<Args>(args)...);
}

std::string type_name(FaultType t) { return std::string(localize::fault_type_name(t)); }

// The badge class of a step: its fault type (a group's too), or JOINT.
std::string step_badge_class(const repair::RepairStep& st) {
  return st.kind == repair::StepKind::kJoint ? "JOINT" : type_name(st.type);
}

const char* status_key(RepairStatus s) {
  switch (s) {
    case RepairStatus::kKept: return "kept";
    case RepairStatus::kRejected: return "rejected";
    case RepairStatus::kNotTried: return "not_tried";
    case RepairStatus::kNotRepaired: return "none";
  }
  return "none";
}

const char* status_text(RepairStatus s) {
  switch (s) {
    case RepairStatus::kKept: return "kept";
    case RepairStatus::kRejected: return "rejected";
    case RepairStatus::kNotTried: return "not tried";
    case RepairStatus::kNotRepaired: return "";
  }
  return "";
}

std::string badge(const std::string& cls, const std::string& text, const std::string& title = "") {
  return fmt::format("<span class=\"badge b-{}\"{}>{}</span>", escape(cls),
                     title.empty() ? "" : " title=\"" + escape(title) + "\"", escape(text));
}

std::string preset_text(const data::Preset& p) {
  std::string s = p.name.empty() ? "custom" : p.name;
  if (p.width > 0 && p.height > 0) s += fmt::format(" · {}×{}", p.width, p.height);
  if (p.layout) s += *p.layout == data::Layout::kNCHW ? " · NCHW" : " · NHWC";
  s += p.channels == data::ChannelOrder::kRGB ? " · RGB" : " · BGR";
  if (p.dtype == DType::kUInt8) s += " · uint8";
  return s;
}

std::string preset_html(const data::Preset& p) {
  return fmt::format("<span title=\"{}\">{}</span>", escape(p.to_json().dump()), escape(preset_text(p)));
}

struct ExitInfo {
  std::string text, css;
};

ExitInfo exit_info(const std::string& command, int code) {
  if (code == kExitBadInput) return {"bad input", "fail"};
  if (code == kExitInternal) return {"internal error", "fail"};
  if (command == "compare") return code == 0 ? ExitInfo{"models agree on every image", "ok"}
                                             : ExitInfo{"some images disagree", "partial"};
  if (command == "localize") return code == 0 ? ExitInfo{"nothing found", "ok"} : ExitInfo{"faults found", "partial"};
  if (code == kExitOk) return {"fully repaired", "ok"};
  if (code == kExitDifferent) return {"improved, not fully repaired", "partial"};
  if (code == kExitNoImprovement) return {"no improvement", "fail"};
  return {"exit code " + std::to_string(code), "partial"};
}

std::string seconds_text(double s) {
  if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
  if (s < 120) return fmt::format("{:.1f} s", s);
  return fmt::format("{:.0f} min {:.0f} s", std::floor(s / 60), std::fmod(s, 60));
}

// ------------------------------------------------------------------------------ the page

class Page {
 public:
  Page(const ReportInput& in, const ReportOptions& o) : in_(in), o_(o) {
    // A repair's localizations have no `detection` (its labels came from the evaluator).
    before_ = in.before ? in.before
              : in.localization && !in.localization->detection.records.empty() ? &in.localization->detection
                                                                                : nullptr;
    if (in.repair && !in.repair->localizations.empty()) {
      for (size_t k = 0; k < in.repair->localizations.size(); ++k) rounds_.push_back(&in.repair->localizations[k]);
    } else if (in.localization) {
      rounds_.push_back(in.localization);
    }
    const int first_round = in.repair ? 1 : 0;
    for (size_t k = 0; k < rounds_.size(); ++k) {
      std::vector<Finding> fs = rounds_[k]->findings;
      const int round = first_round + static_cast<int>(k);
      auto oc = finding_outcomes(fs, in.repair, round);
      for (size_t i = 0; i < fs.size(); ++i) {
        findings_.push_back(std::move(fs[i]));
        outcomes_.push_back(std::move(oc[i]));
        round_of_.push_back(round);
        loc_of_.push_back(rounds_[k]);
      }
    }
  }

  Result<std::string> render() {
    std::string body;
    FETAFIX_TRY_STATUS(prepare_graphs());
    summary(body);
    history(body);
    ranking(body);
    findings(body);
    images(body);
    patch(body);
    timings(body);

    std::string s;
    s.reserve(body.size() + 32768);
    out(s, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out(s, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // No network: nothing may be fetched, whatever a model or file name contains.
    out(s, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
           "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
    out(s, "<title>fetafix {} report — {}</title>\n", escape(in_.command), escape(fs::path(in_.target.label).filename().string()));
    out(s, "<script>{}</script>\n<style>{}</style>\n</head>\n<body>\n", assets::kErrorProbe, assets::kStyle);
    header(s);
    s += "<main><div class=\"wrap\">\n";
    s += body;
    s += "</div></main>\n";
    out(s, "<footer>Generated by <b>fetafix {}</b> · one self-contained file: no network access, no external scripts or "
           "fonts.</footer>\n",
        escape(in_.command));
    s += "<div id=\"render-check\" data-status=\"static\"></div>\n";
    out(s, "<script>{}</script>\n</body>\n</html>\n", assets::kScript);
    return s;
  }

 private:
  // ---- data shared by the sections

  Status prepare_graphs() {
    if (rounds_.empty() || !in_.source.model || !in_.target.model) return {};
    const auto& core_ops = match::default_core_ops();
    FETAFIX_ASSIGN_OR_RETURN(source_graph_, GraphContext::create(*in_.source.model, core_ops));
    FETAFIX_ASSIGN_OR_RETURN(target_graph_, GraphContext::create(*in_.target.model, core_ops));
    weight_diffs_ = weight_differences(findings_);
    return {};
  }

  size_t images_total() const {
    if (in_.repair) return in_.repair->images;
    return before_ ? before_->summary.images_compared : 0;
  }
  size_t disagreeing_before() const {
    if (in_.repair) return in_.repair->initial_disagreeing;
    return before_ ? before_->summary.disagreeing : 0;
  }

  std::string finding_anchor(size_t i) const { return fmt::format("finding-{}", i + 1); }

  // ---- header

  void header(std::string& s) const {
    const char* title = in_.command == "repair" ? "Repair report" : in_.command == "localize" ? "Fault localization report"
                                                                                              : "Comparison report";
    out(s, "<header class=\"top\"><div class=\"wrap\"><h1>{}</h1>", title);
    out(s, "<div class=\"sub\">fetafix {} · Source vs converted Target", escape(in_.command));
    if (!in_.image_dir.empty()) out(s, " · images from <code>{}</code>", escape(in_.image_dir.string()));
    s += "</div><div class=\"models\">";
    out(s, "<div class=\"model-chip\"><b>Source</b><code>{}</code></div>", escape(in_.source.label));
    out(s, "<div class=\"model-chip\"><b>Target</b><code>{}</code></div>", escape(in_.target.label));
    s += "</div></div></header>\n<nav class=\"toc\"><div class=\"wrap\">";
    for (const auto& [id, text] : toc_) out(s, "<a href=\"#{}\">{}</a>", id, escape(text));
    s += "</div></nav>\n";
  }

  void open_section(std::string& s, const char* id, const char* title, const std::string& lead) {
    toc_.emplace_back(id, title);
    out(s, "<section id=\"{}\" data-section=\"{}\"><h2>{}</h2>", id, id, title);
    if (!lead.empty()) out(s, "<p class=\"lead\">{}</p>", lead);
  }

  // ---- summary

  void card(std::string& s, const char* css, const std::string& key, const std::string& value, const std::string& detail) {
    out(s, "<div class=\"card {}\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div></div>", css,
        escape(key), escape(value), escape(detail));
  }

  void summary(std::string& s) {
    open_section(s, "summary", "Summary", "");
    const ExitInfo exit = exit_info(in_.command, in_.exit_code);
    out(s, "<div class=\"meta\"><span class=\"status {}\">{} <span class=\"code\">exit {}</span></span>", exit.css,
        escape(exit.text), in_.exit_code);
    out(s, "<span>took <b>{}</b></span>", seconds_text(in_.seconds));
    if (before_) {
      out(s, "<span>top-{} lists compared</span>", before_->summary.top_k);
      if (before_->summary.label_offset != 0) out(s, "<span>label offset {}</span>", before_->summary.label_offset);
    }
    s += "</div><div class=\"cards\">";
    const size_t n = images_total();
    if (before_) {
      std::string detail = fmt::format("compared of {} found", before_->summary.images_found);
      if (before_->summary.images_skipped) detail += fmt::format(", {} skipped", before_->summary.images_skipped);
      card(s, "", "Detection images", std::to_string(n), detail);
    }
    const size_t b = disagreeing_before();
    if (before_ || in_.repair)
      card(s, b ? "bad" : "good", "Disagreement before", percent(n ? double(b) / n : 0),
           fmt::format("{} of {} images disagree on top-1", b, n));
    if (in_.repair) {
      const size_t a = in_.repair->final_disagreeing;
      std::string detail = fmt::format("{} of {} images", a, n);
      if (b > a) detail += fmt::format(" · {} fixed", b - a);
      card(s, a ? (a < b ? "accent" : "bad") : "good", "Disagreement after", percent(n ? double(a) / n : 0), detail);
      if (const auto& v = in_.repair->validation) {
        std::string d = fmt::format("{} → {} of {} images", v->initial_disagreeing, v->final_disagreeing, v->images);
        if (!v->newly_disagreeing.empty()) d += fmt::format(" · {} newly disagree", v->newly_disagreeing.size());
        card(s, v->final_disagreeing <= v->initial_disagreeing ? "good" : "bad", "Validation after",
             percent(v->images ? double(v->final_disagreeing) / v->images : 0),
             fmt::format("before {} · {}", percent(v->images ? double(v->initial_disagreeing) / v->images : 0), d));
      }
    }
    if (!rounds_.empty()) {
      // The first localization is what the converter got wrong; later rounds look again at the
      // Target as repaired so far.
      const int first = round_of_.empty() ? 0 : round_of_.front();
      size_t faults = 0, harmless = 0, later = 0;
      for (size_t i = 0; i < findings_.size(); ++i) {
        if (round_of_[i] != first) ++later;
        else if (findings_[i].equivalence != Equivalence::kEquivalent) ++faults;
        else ++harmless;
      }
      std::string detail = harmless ? fmt::format("and {} difference{} found harmless", harmless, harmless == 1 ? "" : "s")
                                    : std::string("no harmless differences");
      if (rounds_.size() > 1)
        detail += fmt::format(" · {} finding{} in round{}", later, later == 1 ? "" : "s",
                              rounds_.size() == 2 ? std::string(" 2") : fmt::format("s 2–{}", rounds_.size()));
      card(s, faults ? "bad" : "good", in_.repair ? "Faults localized (round 1)" : "Faults localized", std::to_string(faults),
           detail);
    }
    if (in_.repair) {
      size_t kept = 0;
      for (const auto& st : in_.repair->steps) kept += st.kept;
      card(s, "accent", "Edit sets kept", std::to_string(kept),
           fmt::format("of {} tried · {} edits in the patch", in_.repair->steps.size(), in_.repair->patch.edits.size()));
    }
    if (before_ && !in_.repair)
      card(s, "", "Top-k agreement", percent(before_->summary.top_k_agreement),
           fmt::format("Source top-1 in Target top-{}: {}", before_->summary.top_k,
                       percent(before_->summary.source_top1_in_target_top_k)));
    s += "</div>";

    // Models and presets.
    s += "<h3>Models</h3><div class=\"table-scroll\"><table><thead><tr><th>Role</th><th>Model</th><th>Preprocessing</th>"
         "<th class=\"num\">Classes</th></tr></thead><tbody>";
    const data::Preset& sp = before_ ? before_->source_preset : in_.source.preset;
    const data::Preset& tp = before_ ? before_->target_preset : in_.target.preset;
    out(s, "<tr><td><b style=\"color:var(--src)\">Source</b></td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
        escape(in_.source.label), preset_html(sp), before_ ? std::to_string(before_->summary.source_classes) : "–");
    out(s, "<tr><td><b style=\"color:var(--tgt)\">Target</b></td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
        escape(in_.target.label), preset_html(tp), before_ ? std::to_string(before_->summary.target_classes) : "–");
    if (in_.repair) {
      out(s, "<tr><td><b style=\"color:var(--good)\">Repaired</b></td><td>the Target with the patch below</td><td>{}</td><td></td></tr>",
          in_.repair->patch.preprocess ? preset_html(*in_.repair->patch.preprocess) + " " + badge("kept", "changed by PP")
                                       : preset_html(tp));
    }
    s += "</tbody></table></div>";
    if (in_.repair && !in_.repair->stop_reason.empty())
      out(s, "<p class=\"muted\">Repair stopped: {}.</p>", escape(in_.repair->stop_reason));
    s += "</section>\n";
  }

  // ---- repair history (Figure 4) and per-type counts

  void history(std::string& s) {
    if (!in_.repair) return;
    const auto& r = *in_.repair;
    open_section(s, "history", "Repair history",
                 "Label disagreement on the detection images at the start and after each kept edit set (the paper's "
                 "Figure 4). An edit set is kept only when disagreement strictly drops.");
    std::vector<LinePoint> points;
    points.push_back({r.history.empty() ? 0.0 : r.history[0], "start",
                      fmt::format("start: {} of {} images disagree", r.initial_disagreeing, r.images)});
    size_t k = 0;
    for (const auto& st : r.steps) {
      if (!st.kept) continue;
      ++k;
      const double y = k < r.history.size() ? r.history[k] : (r.images ? double(st.disagreeing_after) / r.images : 0);
      points.push_back({y, fmt::format("{} {}", k, st.type_label()),
                        fmt::format("{}: {} → {} disagreeing — {}", st.type_label(), st.disagreeing_before, st.disagreeing_after,
                                    st.description)});
    }
    s += "<div class=\"grid2\"><div>";
    s += line_chart(points, {.width = 680, .height = 300, .y_label = "label disagreement", .y_is_share = true});
    s += "</div><div>";
    // Per-type counts: localized / tried / kept.
    std::vector<BarGroup> groups;
    std::string rows;
    for (FaultType type : localize::kAllFaultTypes) {
      const std::string t = type_name(type);
      auto it = r.counts.find(t);
      if (it == r.counts.end()) continue;
      const auto& c = it->second;
      groups.push_back({t, {double(c.localized), double(c.tried), double(c.kept)}});
      out(rows, "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
          badge(t, t), c.localized, c.tried, c.kept);
    }
    if (groups.empty()) {
      s += "<p class=\"muted\">No fault was localized, so nothing was tried.</p>";
    } else {
      s += grouped_bar_chart(groups, {"localized", "tried", "kept"}, {"s-localized", "s-tried", "s-kept"}, 440, 230);
      s += "<table><thead><tr><th>Type</th><th class=\"num\">Localized</th><th class=\"num\">Tried</th>"
           "<th class=\"num\">Kept</th></tr></thead><tbody>" + rows + "</tbody></table>";
    }
    s += "</div></div>";
    if (r.validation) {
      const auto& v = *r.validation;
      out(s, "<h3>Validation on independent images</h3><p>{} images: {} disagreed before the repair ({}), {} after ({}).",
          v.images, v.initial_disagreeing, percent(v.images ? double(v.initial_disagreeing) / v.images : 0),
          v.final_disagreeing, percent(v.images ? double(v.final_disagreeing) / v.images : 0));
      if (!v.newly_disagreeing.empty()) {
        out(s, " Newly disagreeing ({}): ", v.newly_disagreeing.size());
        for (size_t i = 0; i < v.newly_disagreeing.size() && i < 20; ++i)
          out(s, "{}<code>{}</code>", i ? ", " : "", escape(v.newly_disagreeing[i]));
        if (v.newly_disagreeing.size() > 20) s += ", …";
      } else {
        s += " No image that agreed before disagrees after.";
      }
      s += "</p>";
    }
    // Every step, kept or not.
    size_t kept = 0, screened = 0;
    for (const auto& st : r.steps) {
      kept += st.kept;
      screened += st.screened_out;
    }
    out(s, "<h3>Steps ({})</h3>", r.steps.size());
    out(s, "<div class=\"meta\"><span>{} kept · {} rejected{}</span><span title=\"whole-model runs of the Target vs runs "
           "that re-execute only what an edit changes, from cached values\">Target evaluations: <b>{}</b> full · <b>{}</b> "
           "partial</span></div>",
        kept, r.steps.size() - kept,
        screened ? fmt::format(", {} of them screened out on a subset of the images without a run on all of them", screened) : "",
        r.full_runs, r.partial_runs);
    if (r.steps.empty()) {
      s += "<p class=\"muted\">No edit was tried.</p>";
    } else {
      s += "<details class=\"more\"" + std::string(r.steps.size() <= 30 ? " open" : "") +
           "><summary>Every edit set tried, in order</summary><div class=\"table-scroll\"><table><thead><tr>"
           "<th class=\"num\">Round</th><th>Type</th><th>Edit set</th><th class=\"num\">Disagreeing</th><th>Decision</th>"
           "<th class=\"num\">Time</th></tr></thead><tbody>";
      for (const auto& st : r.steps) {
        // Links to the findings the step was made for (a WB* group names several).
        std::vector<size_t> named;
        for (size_t i = 0; i < findings_.size(); ++i)
          if (round_of_[i] == st.round && step_names(st, findings_[i], st.round)) named.push_back(i);
        std::string links;
        constexpr size_t kMaxLinks = 8;
        for (size_t j = 0; j < named.size() && j < kMaxLinks; ++j)
          out(links, "{}<a href=\"#{}\">{}{}</a>", j ? ", " : " ", finding_anchor(named[j]), j ? "" : (named.size() > 1 ? "findings " : "finding "),
              named[j] + 1);
        if (named.size() > kMaxLinks) out(links, " and {} more", named.size() - kMaxLinks);
        const char* decision = st.kept ? "kept" : st.screened_out ? "screened out" : "rejected";
        out(s, "<tr><td class=\"num\">{}</td><td>{}</td><td>{}{}</td><td class=\"num nowrap\">{} → {}</td><td>{}{}</td>"
               "<td class=\"num nowrap\">{}</td></tr>",
            st.round, badge(step_badge_class(st), st.type_label()), escape(st.description), links, st.disagreeing_before,
            st.disagreeing_after, badge(st.kept ? "kept" : st.screened_out ? "screened" : "rejected", decision),
            st.kept ? "" : " <span class=\"muted\">" + escape(st.reason) + "</span>", seconds_text(st.seconds));
      }
      s += "</tbody></table></div></details>";
    }
    s += "</section>\n";
  }

  // ---- layer ranking

  void ranking(std::string& s) {
    if (rounds_.empty()) return;
    open_section(s, "ranking", "Layer ranking",
                 "Activation analysis: for each matched layer, the share of output elements whose Target−Source "
                 "difference on images that disagree is unlike the one on images that agree (Kruskal–Wallis). "
                 "Higher means more suspicious; red bars carry a fault finding.");
    // Repair ranks only in rounds where the cheap candidates leave disagreement behind.
    std::vector<size_t> ranked_rounds;
    for (size_t k = 0; k < rounds_.size(); ++k)
      if (!rounds_[k]->activation.ranked.empty()) ranked_rounds.push_back(k);
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
      ranking_of(s, rounds_[k]->activation, round);
    }
    s += "</section>\n";
  }

  // Anchors of ranked layers: round 1 (or a localize report) keeps the short form.
  static std::string layer_anchor(int round, int rank) {
    return round <= 1 ? fmt::format("layer-{}", rank + 1) : fmt::format("layer-r{}-{}", round, rank + 1);
  }

  void ranking_of(std::string& s, const localize::ActivationAnalysis& a, int round) {
    out(s, "<div class=\"meta\"><span>{} similar images (of {}) and {} dissimilar (of {}) per repeat</span><span>{} repeat(s)</span>"
           "<span>{} pass(es) over the images</span></div>",
        a.similar_used, a.similar_available, a.dissimilar_used, a.dissimilar_available, a.repeats, a.passes);
    // Findings per ranked layer.
    std::map<int, std::vector<size_t>> by_rank;
    for (size_t i = 0; i < findings_.size(); ++i)
      if (round_of_[i] == round && findings_[i].layer_rank >= 0) by_rank[findings_[i].layer_rank].push_back(i);
    std::vector<Bar> bars;
    for (const auto& l : a.ranked) {
      if (l.rank < 0 || bars.size() >= o_.max_chart_layers) continue;
      std::string cls = "plain";
      if (auto it = by_rank.find(l.rank); it != by_rank.end()) {
        cls = "harmless";
        for (size_t i : it->second)
          if (findings_[i].equivalence != Equivalence::kEquivalent) cls = "fault";
      }
      bars.push_back({fmt::format("{}. {}", l.rank + 1, l.source_node), l.problematic_fraction,
                      percent(l.problematic_fraction), cls,
                      fmt::format("{} ↔ {}: {} of {} elements problematic; mean |Δ| similar {}, dissimilar {}",
                                  l.source_node, l.target_node, percent(l.problematic_fraction), l.elements,
                                  number(l.mean_abs_diff_similar), number(l.mean_abs_diff_dissimilar)),
                      "#" + layer_anchor(round, l.rank)});
    }
    BarChartOptions bo;
    bo.width = 1100;
    size_t longest = 0;
    for (const auto& b : bars) longest = std::max(longest, std::min<size_t>(46, b.label.size()));
    bo.label_width = std::clamp(static_cast<int>(longest * 7.4 + 20), 120, 400);
    s += horizontal_bar_chart(bars, bo);
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
      if (auto it = by_rank.find(l.rank); l.rank >= 0 && it != by_rank.end())
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

  // ---- findings, side by side

  std::string node_html(const NodeCell& c, const NodeCell* other, const std::set<std::string>& differing,
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

  std::string side_by_side_html(const std::vector<DiffRow>& rows, const Finding& f) const {
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
  std::string preprocessing_trials(const localize::PreprocessingEvidence& e) const {
    std::string s = "<div class=\"table-scroll\"><table><thead><tr><th>Preset</th><th>Role</th><th class=\"num\">Disagreement</th>"
                    "<th class=\"num\">Top-k agreement</th><th>Note</th></tr></thead><tbody>";
    const std::string best = e.trials.empty() ? std::string() : e.best_trial().preset;
    for (const auto& t : e.trials) {
      std::string note = t.measured ? "" : t.skipped_reason;
      if (t.measured && !t.same_as.empty()) note = "same as " + t.same_as;
      const bool is_best = t.preset == best && t.measured;
      out(s, "<tr{}><td><b>{}</b>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"muted\">{}</td></tr>",
          is_best ? " style=\"background:var(--good-soft)\"" : "", escape(t.preset), is_best ? " " + badge("kept", "best") : "",
          escape(t.role), t.measured ? percent(t.disagreement) : "–", t.measured ? percent(t.top_k_agreement) : "–",
          escape(note));
    }
    return s + "</tbody></table></div>";
  }

  void findings(std::string& s) {
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
    // Filters: all, faults, harmless, by repair outcome, by type.
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

    for (size_t i = 0; i < findings_.size(); ++i) {
      const Finding& f = findings_[i];
      const auto& oc = outcomes_[i];
      // A repair's findings by round: later rounds localize again on the Target as repaired so far.
      if (in_.repair && rounds_.size() > 1 && (i == 0 || round_of_[i] != round_of_[i - 1])) {
        size_t n = 0, faults = 0;
        for (size_t j = i; j < findings_.size() && round_of_[j] == round_of_[i]; ++j, ++n)
          faults += findings_[j].equivalence != Equivalence::kEquivalent;
        out(s, "<h3 class=\"round\" id=\"findings-round-{}\">Round {}<span class=\"muted\">{} finding{} ({} fault{}) on the "
               "Target {}</span></h3>",
            round_of_[i], round_of_[i], n, n == 1 ? "" : "s", faults, faults == 1 ? "" : "s",
            round_of_[i] == 1 ? "as given" : "as repaired so far");
      }
      const bool fault = f.equivalence != Equivalence::kEquivalent;
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
      s += badge(fault ? "fault" : "harmless", fault ? "fault" : "harmless");
      if (oc.status != RepairStatus::kNotRepaired) s += badge(status_key(oc.status), status_text(oc.status), oc.reason);
      s += "</summary><div class=\"body\">";
      if (!oc.reason.empty() && oc.status != RepairStatus::kNotRepaired)
        out(s, "<p class=\"reason\"><b>{}:</b> {}</p>", status_text(oc.status), escape(oc.reason));
      if (!f.source_node.empty() || !f.target_node.empty())
        out(s, "<p class=\"reason\">Source <code>{}</code> ↔ Target <code>{}</code></p>",
            escape(f.source_node.empty() ? "–" : f.source_node), escape(f.target_node.empty() ? "–" : f.target_node));
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
    s += "</section>\n";
  }

  // ---- images that disagreed

  std::string topk_html(const std::vector<int64_t>& ids, const std::vector<float>& scores, int64_t reference,
                        bool mark) const {
    std::string s = "<ol class=\"topk\">";
    for (size_t i = 0; i < ids.size(); ++i) {
      const char* cls = !mark ? (i == 0 ? "hit" : "") : ids[i] == reference ? "hit" : "miss";
      out(s, "<li class=\"{}\" title=\"rank {}\">{}<span class=\"sc\">{}</span></li>", cls, i + 1, ids[i] < 0 ? std::string("–") : std::to_string(ids[i]),
          i < scores.size() ? (i == 0 ? fmt::format("{:.1f}%", 100.0 * scores[i]) : fmt::format("{:.2f}", scores[i])) : "");
    }
    return s + "</ol>";
  }

  std::string target_topk(const compare::ImageRecord& r) const {
    const auto& ids = r.target_in_source.size() == r.target.ids.size() ? r.target_in_source : r.target.ids;
    return topk_html(ids, r.target.scores, r.source.ids.empty() ? -2 : r.source.ids[0], true);
  }

  void images(std::string& s) {
    struct Row {
      std::string file;
      const compare::ImageRecord* before = nullptr;
      const compare::ImageRecord* after = nullptr;
      std::string status;  // fixed, still, new, or "" (no repair)
      std::string thumb, thumb_error;
    };
    auto by_file = [](const compare::CompareResult* c) {
      std::map<std::string, const compare::ImageRecord*> m;
      if (c)
        for (const auto& r : c->records)
          if (r.error.empty()) m[r.file] = &r;
      return m;
    };
    const auto before_by_file = by_file(before_), after_by_file = by_file(in_.after);
    auto find = [](const std::map<std::string, const compare::ImageRecord*>& m, const std::string& f) {
      auto it = m.find(f);
      return it == m.end() ? nullptr : it->second;
    };
    std::vector<Row> rows;
    size_t fixed = 0, still = 0, fresh = 0, total = 0;
    auto add = [&](Row row) {
      if (!row.status.empty()) (row.status == "fixed" ? fixed : row.status == "still" ? still : fresh)++;
      ++total;
      if (rows.size() < o_.max_image_rows) rows.push_back(std::move(row));
    };
    // A repair says itself which images agreed before and after; the compares add top-k lists.
    const repair::RepairResult* r = in_.repair;
    const bool per_image = r && !r->image_files.empty() && r->initial_agree.size() == r->image_files.size() &&
                           r->final_agree.size() == r->image_files.size();
    if (per_image) {
      for (size_t i = 0; i < r->image_files.size(); ++i) {
        const bool a = r->initial_agree[i], b = r->final_agree[i];
        if (a && b) continue;
        const std::string& f = r->image_files[i];
        add({f, find(before_by_file, f), find(after_by_file, f), !a && b ? "fixed" : !a ? "still" : "new", "", ""});
      }
    } else if (before_) {
      for (const auto& rec : before_->records) {
        if (!rec.error.empty()) continue;
        Row row{rec.file, &rec, find(after_by_file, rec.file), "", "", ""};
        if (rec.agree && (!row.after || row.after->agree)) continue;
        if (row.after) row.status = !rec.agree && row.after->agree ? "fixed" : !rec.agree ? "still" : "new";
        add(std::move(row));
      }
    } else {
      return;
    }
    const bool with_status = per_image || in_.after;
    const bool before_lists = before_ != nullptr, after_lists = in_.after != nullptr;
    open_section(s, "images", "Images that disagreed",
                 with_status ? "Top-1 disagreement before and after the repair; the Target's lists are in the Source's "
                               "label numbering. Green: the Source's top-1."
                             : "Images whose top-1 labels differ; the Target's list is in the Source's label numbering. "
                               "Green: the Source's top-1.");
    if (with_status)
      out(s, "<div class=\"meta\">{}{}{}</div>", badge("fixed", fmt::format("{} fixed", fixed)),
          badge("still", fmt::format("{} still disagree", still)), badge("new", fmt::format("{} newly disagree", fresh)));
    if (rows.empty()) {
      s += "<p class=\"note\">No image disagreed.</p></section>\n";
      return;
    }
    // Thumbnails: decoding full photos is the slow part, so it runs in parallel.
    tbb::parallel_for(size_t{0}, rows.size(), [&](size_t i) {
      auto uri = thumbnail_data_uri(in_.image_dir / rows[i].file, o_.thumbnail_px, o_.thumbnail_quality);
      if (uri.ok()) rows[i].thumb = std::move(uri).value();
      else rows[i].thumb_error = uri.error().message;
    });
    s += "<div class=\"table-scroll\"><table><thead><tr><th>Preview</th><th>Image</th><th>Source top-k</th>";
    if (!with_status) s += "<th>Target top-k</th>";
    else {
      if (before_lists) s += "<th>Target before</th>";
      if (after_lists) s += "<th>Target after</th>";
      s += "<th>Status</th>";
    }
    s += "</tr></thead><tbody>";
    for (const auto& row : rows) {
      const compare::ImageRecord* src = row.before ? row.before : row.after;
      s += "<tr><td>";
      if (!row.thumb.empty())
        out(s, "<img class=\"thumb\" loading=\"lazy\" decoding=\"async\" alt=\"{}\" src=\"{}\">", escape(row.file), row.thumb);
      else
        out(s, "<div class=\"thumb\" title=\"{}\"></div>", escape(row.thumb_error));
      out(s, "</td><td class=\"file\">{}</td><td>{}</td>", escape(row.file),
          src ? topk_html(src->source.ids, src->source.scores, -2, false) : "–");
      if (before_lists || !with_status) out(s, "<td>{}</td>", row.before ? target_topk(*row.before) : "–");
      if (with_status) {
        if (after_lists) out(s, "<td>{}</td>", row.after ? target_topk(*row.after) : "–");
        out(s, "<td>{}</td>",
            badge(row.status, row.status == "still" ? "still disagrees" : row.status == "new" ? "newly disagrees" : row.status));
      }
      s += "</tr>";
    }
    s += "</tbody></table></div>";
    if (total > rows.size()) out(s, "<p class=\"muted\">{} more images are not listed (the --json log has every image).</p>", total - rows.size());
    s += "</section>\n";
  }

  // ---- the patch

  std::string edit_delta(const model::Edit& e) const {
    const onnx::ModelProto* t = in_.target.model;
    if (!t) return "";
    if (e.kind == model::EditKind::kSetWeight) {
      auto old = model::get_weight(*t, e.value);
      if (!old.ok()) return "";
      const auto a = old->to_float(), b = e.tensor.to_float();
      if (a.size() != b.size()) return fmt::format("was {}{}", dtype_name(old->dtype), shape_to_string(old->shape));
      size_t changed = 0;
      double max_d = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(double(a[i]) - double(b[i]));
        if (d > 0 || std::isnan(a[i]) != std::isnan(b[i])) ++changed;
        if (std::isfinite(d)) max_d = std::max(max_d, d);
      }
      std::string s = fmt::format("{} of {} values change, max |Δ| {}", changed, a.size(), number(max_d));
      if (old->dtype != e.tensor.dtype)
        s += fmt::format(" ({} → {})", dtype_name(old->dtype), dtype_name(e.tensor.dtype));
      return s;
    }
    if (e.kind == model::EditKind::kSetAttribute || e.kind == model::EditKind::kRemoveAttribute) {
      const std::string name = e.kind == model::EditKind::kSetAttribute ? e.attribute.name() : e.attribute_name;
      std::string was = "absent";
      if (auto i = model::find_node(t->graph(), e.node))
        if (const auto* a = model::find_attribute(t->graph().node(static_cast<int>(*i)), name)) was = attribute_text(*a);
      return e.kind == model::EditKind::kSetAttribute ? fmt::format("{}: {} → {}", name, was, attribute_text(e.attribute))
                                                      : fmt::format("{}: {} → absent", name, was);
    }
    if (e.kind == model::EditKind::kInsertNode) {
      std::string s = fmt::format("inputs {}", fmt::join(e.node_proto.input(), ", "));
      for (const auto& a : e.node_proto.attribute()) s += fmt::format(" · {} {}", a.name(), attribute_text(a));
      return s;
    }
    return "";
  }

  void patch(std::string& s) {
    if (!in_.repair) return;
    const auto& p = in_.repair->patch;
    open_section(s, "patch", "The patch",
                 "The kept edits, in the order they are applied (fetafix apply PATCH TARGET -o OUT replays them).");
    if (p.preprocess)
      out(s, "<h3>Preprocessing</h3><p>Feed the Target with preset <b>{}</b>:</p><pre class=\"evidence\">{}</pre>",
          escape(preset_text(*p.preprocess)), escape(p.preprocess->to_json().dump(2)));
    if (p.edits.empty()) {
      s += p.preprocess ? "<p class=\"muted\">No graph edit.</p>" : "<p class=\"note\">No edit was kept.</p>";
    } else {
      out(s, "<h3>Graph edits ({})</h3><ul class=\"patch\">", p.edits.size());
      for (const auto& e : p.edits) {
        const std::string delta = edit_delta(e);
        out(s, "<li><span class=\"kind\">{}</span><span class=\"what\">{}</span>{}</li>", escape(model::edit_kind_name(e.kind)),
            escape(model::describe(e)), delta.empty() ? "" : "<span class=\"delta\">" + escape(delta) + "</span>");
      }
      s += "</ul>";
    }
    s += "</section>\n";
  }

  // ---- timings and notes

  void timings(std::string& s) {
    std::vector<Bar> bars;
    auto add = [&](const std::string& prefix, const std::vector<localize::PhaseTime>& ts) {
      for (const auto& t : ts)
        if (t.phase != "total") bars.push_back({prefix + t.phase, t.seconds, seconds_text(t.seconds), "phase", "", ""});
    };
    if (in_.repair) add("", in_.repair->timings);
    else if (in_.localization) add("", in_.localization->timings);
    // Notes of every round, each once.
    std::vector<std::string> notes;
    for (size_t k = 0; k < rounds_.size(); ++k)
      for (const auto& n : rounds_[k]->notes) {
        std::string line = in_.repair && rounds_.size() > 1 ? fmt::format("round {}: {}", k + 1, n) : n;
        if (std::none_of(notes.begin(), notes.end(), [&](const std::string& x) { return x.ends_with(n); }))
          notes.push_back(std::move(line));
      }
    const bool has_notes = !notes.empty();
    std::vector<std::string> warnings = before_ ? before_->warnings : std::vector<std::string>{};
    if (bars.empty() && !has_notes && warnings.empty()) return;
    open_section(s, "notes", "Time and notes", "");
    if (!bars.empty()) {
      BarChartOptions bo;
      bo.width = 900;
      bo.label_width = 260;
      s += horizontal_bar_chart(bars, bo);
    }
    if (has_notes || !warnings.empty()) {
      s += "<ul>";
      for (const auto& n : warnings) out(s, "<li class=\"muted\">warning: {}</li>", escape(n));
      if (has_notes)
        for (const auto& n : notes) out(s, "<li class=\"muted\">{}</li>", escape(n));
      s += "</ul>";
    }
    s += "</section>\n";
  }

  const ReportInput& in_;
  const ReportOptions& o_;
  const compare::CompareResult* before_ = nullptr;
  std::vector<const localize::LocalizeResult*> rounds_;  // localize: one; repair: one per round
  std::vector<Finding> findings_;                        // every round's, in round order
  std::vector<FindingOutcome> outcomes_;
  std::vector<int> round_of_;                            // the repair round of each finding (0: no repair)
  std::vector<const localize::LocalizeResult*> loc_of_;  // the localization each finding came from
  std::shared_ptr<const GraphContext> source_graph_, target_graph_;
  WeightDifferences weight_diffs_;
  std::vector<std::pair<std::string, std::string>> toc_;
};

}  // namespace

bool step_names(const repair::RepairStep& st, const Finding& f, int round) {
  if (round > 0 && st.round != round && !st.reverts) return false;  // a revert may come rounds later
  return std::find(st.finding_ids.begin(), st.finding_ids.end(), f.id) != st.finding_ids.end();
}

std::vector<FindingOutcome> finding_outcomes(const std::vector<Finding>& findings, const repair::RepairResult* repair,
                                             int round) {
  std::vector<FindingOutcome> out(findings.size());
  if (!repair) return out;
  // Whether the round's last step brought disagreement to 0 (nothing after it was needed).
  bool round_finished = false;
  int last_round = 0;
  for (const auto& st : repair->steps) {
    last_round = std::max(last_round, st.round);
    if (round <= 0 || st.round == round) round_finished = st.kept && st.disagreeing_after == 0;
  }
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding& f = findings[i];
    bool kept = false;
    std::string rejected;
    for (const auto& st : repair->steps) {
      if (!step_names(st, f, round)) continue;
      if (st.kept && st.reverts) {  // a later step undid it
        kept = false;
        rejected = "kept, then undone: " + st.description;
      } else if (st.kept) {
        kept = true;
      } else {
        rejected = st.screened_out ? "screened out: " + st.reason : st.reason;
      }
    }
    if (kept) {
      out[i] = {RepairStatus::kKept, "disagreement dropped with this edit"};
    } else if (!rejected.empty()) {
      out[i] = {RepairStatus::kRejected, rejected};
    } else if (round_finished) {
      out[i] = {RepairStatus::kNotTried, "disagreement reached 0 before it came up"};
    } else if (round > 0 && round < last_round) {
      out[i] = {RepairStatus::kNotTried,
                fmt::format("not tried in round {} (rejected edits of its type in a row end the type's turn); the next "
                            "round localized again", round)};
    } else {
      out[i] = {RepairStatus::kNotTried, repair->stop_reason.empty() ? "the repair stopped first"
                                                                     : "the repair stopped first: " + repair->stop_reason};
    }
  }
  return out;
}

localize::LocalizeResult repair_localization_summary(const repair::RepairResult& repair) {
  localize::LocalizeResult out;
  if (!repair.localizations.empty()) {
    out.matching = repair.localizations.front().matching;
    for (const auto& loc : repair.localizations)
      if (!loc.activation.ranked.empty()) {
        out.activation = loc.activation;
        break;
      }
  }
  std::set<std::string> seen;  // finding ids
  for (const auto& loc : repair.localizations)
    for (const auto& f : loc.findings)
      if (seen.insert(f.id).second) out.findings.push_back(f);
  return out;
}

Result<std::string> render_report(const ReportInput& input, const ReportOptions& options) {
  // Sections are built before the header, which lists them in its table of contents.
  Page page(input, options);
  return page.render();
}

Status write_report(const fs::path& path, const ReportInput& input, const ReportOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto html, render_report(input, options));
  return write_file_atomic(path, html);
}

}  // namespace fetafix::report
