// The summary and repair-history sections of the report page.
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

void Page::card(std::string& s, const char* css, const std::string& key, const std::string& value, const std::string& detail) {
  out(s, "<div class=\"card {}\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"d\">{}</div></div>", css,
      escape(key), escape(value), escape(detail));
}

void Page::summary(std::string& s) {
  open_section(s, "summary", "Summary", "");
  summary_meta(s);
  s += "<div class=\"cards\">";
  disagreement_cards(s);
  if (!rounds_.empty()) findings_card(s);
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
  models_table(s);
  if (in_.repair && !in_.repair->stop_reason.empty())
    out(s, "<p class=\"muted\">Repair stopped: {}.</p>", escape(in_.repair->stop_reason));
  s += "</section>\n";
}

// The exit status, the wall time and what the comparison looked at.
void Page::summary_meta(std::string& s) const {
  const ExitInfo exit = exit_info(in_.command, in_.exit_code);
  out(s, "<div class=\"meta\"><span class=\"status {}\">{} <span class=\"code\">exit {}</span></span>", exit.css,
      escape(exit.text), in_.exit_code);
  out(s, "<span>took <b>{}</b></span>", seconds_text(in_.seconds));
  if (before_) {
    out(s, "<span>top-{} lists compared</span>", before_->summary.top_k);
    if (before_->summary.label_offset != 0) out(s, "<span>label offset {}</span>", before_->summary.label_offset);
  }
  s += "</div>";
}

// Images, disagreement before and after (and on the validation images).
void Page::disagreement_cards(std::string& s) {
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
}

// The faults of the first localization (what the converter got wrong; later rounds look again at
// the Target as repaired so far), the harmless differences, and the findings of later rounds.
void Page::findings_card(std::string& s) {
  const int first = round_of_.empty() ? 0 : round_of_.front();
  size_t faults = 0, harmless = 0, later = 0;
  for (size_t i = 0; i < findings_.size(); ++i) {
    if (round_of_[i] != first) ++later;
    else if (findings_[i].is_fault()) ++faults;
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

// Models and presets.
void Page::models_table(std::string& s) const {
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
}

void Page::history(std::string& s) {
  if (!in_.repair) return;
  const auto& r = *in_.repair;
  open_section(s, "history", "Repair history",
               "Label disagreement on the detection images at the start and after each kept edit set (the paper's "
               "Figure 4). An edit set is kept only when disagreement strictly drops.");
  history_charts(s);
  if (r.validation) validation_paragraph(s, *r.validation);
  steps_table(s);
  s += "</section>\n";
}

// Figure 4 beside the per-type counts (localized / tried / kept).
void Page::history_charts(std::string& s) const {
  const auto& r = *in_.repair;
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
}

void Page::validation_paragraph(std::string& s, const repair::Validation& v) const {
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

// Every step, kept or not, linked to the findings it was made for.
void Page::steps_table(std::string& s) const {
  const auto& r = *in_.repair;
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
}

}  // namespace fetafix::report::detail
