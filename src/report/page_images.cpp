// The images, patch, and time-and-notes sections of the report page.
#include "report/page.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "model/attributes.h"
#include "model/graph.h"
#include "model/weights.h"
#include "report/thumbnail.h"

namespace fetafix::report::detail {
namespace fs = std::filesystem;

std::string Page::topk_html(const std::vector<int64_t>& ids, const std::vector<float>& scores, int64_t reference,
                      bool mark) const {
  std::string s = "<ol class=\"topk\">";
  for (size_t i = 0; i < ids.size(); ++i) {
    const char* cls = !mark ? (i == 0 ? "hit" : "") : ids[i] == reference ? "hit" : "miss";
    out(s, "<li class=\"{}\" title=\"rank {}\">{}<span class=\"sc\">{}</span></li>", cls, i + 1, ids[i] < 0 ? std::string("–") : std::to_string(ids[i]),
        i < scores.size() ? (i == 0 ? fmt::format("{:.1f}%", 100.0 * scores[i]) : fmt::format("{:.2f}", scores[i])) : "");
  }
  return s + "</ol>";
}

std::string Page::target_topk(const compare::ImageRecord& r) const {
  const auto& ids = r.target_in_source.size() == r.target.ids.size() ? r.target_in_source : r.target.ids;
  return topk_html(ids, r.target.scores, r.source.ids.empty() ? -2 : r.source.ids[0], true);
}

// The images that disagreed before or after, with what became of each: a repair says itself
// which images agreed before and after; the compares add top-k lists.
ImageRows Page::image_rows() const {
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
  ImageRows out;
  auto add = [&](ImageRow row) {
    if (!row.status.empty()) (row.status == "fixed" ? out.fixed : row.status == "still" ? out.still : out.fresh)++;
    ++out.total;
    if (out.rows.size() < o_.max_image_rows) out.rows.push_back(std::move(row));
  };
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
      ImageRow row{rec.file, &rec, find(after_by_file, rec.file), "", "", ""};
      if (rec.agree && (!row.after || row.after->agree)) continue;
      if (row.after) row.status = !rec.agree && row.after->agree ? "fixed" : !rec.agree ? "still" : "new";
      add(std::move(row));
    }
  } else {
    out.any = false;
  }
  out.with_status = per_image || in_.after;
  return out;
}

void Page::images(std::string& s) {
  ImageRows rows = image_rows();
  if (!rows.any) return;
  open_section(s, "images", "Images that disagreed",
               rows.with_status ? "Top-1 disagreement before and after the repair; the Target's lists are in the "
                                  "Source's label numbering. Green: the Source's top-1."
                                : "Images whose top-1 labels differ; the Target's list is in the Source's label "
                                  "numbering. Green: the Source's top-1.");
  if (rows.with_status)
    out(s, "<div class=\"meta\">{}{}{}</div>", badge("fixed", fmt::format("{} fixed", rows.fixed)),
        badge("still", fmt::format("{} still disagree", rows.still)),
        badge("new", fmt::format("{} newly disagree", rows.fresh)));
  if (rows.rows.empty()) {
    s += "<p class=\"note\">No image disagreed.</p></section>\n";
    return;
  }
  // Thumbnails: decoding full photos is the slow part, so it runs in parallel.
  tbb::parallel_for(size_t{0}, rows.rows.size(), [&](size_t i) {
    auto& row = rows.rows[i];
    auto uri = thumbnail_data_uri(in_.image_dir / row.file, o_.thumbnail_px, o_.thumbnail_quality);
    if (uri.ok()) row.thumb = std::move(uri).value();
    else row.thumb_error = uri.error().message;
  });
  s += "<div class=\"table-scroll\"><table><thead><tr><th>Preview</th><th>Image</th><th>Source top-k</th>";
  if (!rows.with_status) s += "<th>Target top-k</th>";
  else {
    if (before_) s += "<th>Target before</th>";
    if (in_.after) s += "<th>Target after</th>";
    s += "<th>Status</th>";
  }
  s += "</tr></thead><tbody>";
  for (const auto& row : rows.rows) image_row(s, row, rows.with_status);
  s += "</tbody></table></div>";
  if (rows.total > rows.rows.size())
    out(s, "<p class=\"muted\">{} more images are not listed (the --json log has every image).</p>",
        rows.total - rows.rows.size());
  s += "</section>\n";
}

void Page::image_row(std::string& s, const ImageRow& row, bool with_status) const {
  const compare::ImageRecord* src = row.before ? row.before : row.after;
  s += "<tr><td>";
  if (!row.thumb.empty())
    out(s, "<img class=\"thumb\" loading=\"lazy\" decoding=\"async\" alt=\"{}\" src=\"{}\">", escape(row.file), row.thumb);
  else
    out(s, "<div class=\"thumb\" title=\"{}\"></div>", escape(row.thumb_error));
  out(s, "</td><td class=\"file\">{}</td><td>{}</td>", escape(row.file),
      src ? topk_html(src->source.ids, src->source.scores, -2, false) : "–");
  if (before_ || !with_status) out(s, "<td>{}</td>", row.before ? target_topk(*row.before) : "–");
  if (with_status) {
    if (in_.after) out(s, "<td>{}</td>", row.after ? target_topk(*row.after) : "–");
    out(s, "<td>{}</td>",
        badge(row.status, row.status == "still" ? "still disagrees" : row.status == "new" ? "newly disagrees" : row.status));
  }
  s += "</tr>";
}

std::string Page::edit_delta(const model::Edit& e) const {
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

void Page::patch(std::string& s) {
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

void Page::timings(std::string& s) {
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

}  // namespace fetafix::report::detail
