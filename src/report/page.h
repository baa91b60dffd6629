// The HTML report's page (report.h says what it shows), internal to src/report: one class
// whose sections are defined by topic in report.cpp (the page, its header and data),
// page_summary.cpp (summary, repair history), page_findings.cpp (layer ranking, findings side by
// side) and page_images.cpp (images, patch, timings).
#pragma once

#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "report/graph_diff.h"
#include "report/html.h"
#include "report/report.h"

namespace fetafix::report::detail {
using localize::Equivalence;
using localize::FaultType;
using localize::Finding;


template <class... Args>
void out(std::string& s, fmt::format_string<Args...> f, Args&&... args) {
  fmt::format_to(std::back_inserter(s), f, std::forward<Args>(args)...);
}

inline std::string type_name(FaultType t) { return std::string(localize::fault_type_name(t)); }

// The badge class of a step: its fault type (a group's too), or JOINT.
inline std::string step_badge_class(const repair::RepairStep& st) {
  return st.kind == repair::StepKind::kJoint ? "JOINT" : type_name(st.type);
}

inline const char* status_key(RepairStatus s) {
  switch (s) {
    case RepairStatus::kKept: return "kept";
    case RepairStatus::kRejected: return "rejected";
    case RepairStatus::kNotTried: return "not_tried";
    case RepairStatus::kNotRepaired: return "none";
  }
  return "none";
}

inline const char* status_text(RepairStatus s) {
  switch (s) {
    case RepairStatus::kKept: return "kept";
    case RepairStatus::kRejected: return "rejected";
    case RepairStatus::kNotTried: return "not tried";
    case RepairStatus::kNotRepaired: return "";
  }
  return "";
}

inline std::string badge(const std::string& cls, const std::string& text, const std::string& title = "") {
  return fmt::format("<span class=\"badge b-{}\"{}>{}</span>", escape(cls),
                     title.empty() ? "" : " title=\"" + escape(title) + "\"", escape(text));
}

inline std::string preset_text(const data::Preset& p) {
  std::string s = p.name.empty() ? "custom" : p.name;
  if (p.width > 0 && p.height > 0) s += fmt::format(" · {}×{}", p.width, p.height);
  if (p.layout) s += *p.layout == data::Layout::kNCHW ? " · NCHW" : " · NHWC";
  s += p.channels == data::ChannelOrder::kRGB ? " · RGB" : " · BGR";
  if (p.dtype == DType::kUInt8) s += " · uint8";
  return s;
}

inline std::string preset_html(const data::Preset& p) {
  return fmt::format("<span title=\"{}\">{}</span>", escape(p.to_json().dump()), escape(preset_text(p)));
}

struct ExitInfo {
  std::string text, css;
};

inline ExitInfo exit_info(const std::string& command, int code) {
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

inline std::string seconds_text(double s) {
  if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
  if (s < 120) return fmt::format("{:.1f} s", s);
  return fmt::format("{:.0f} min {:.0f} s", std::floor(s / 60), std::fmod(s, 60));
}

// A row of the images section.
struct ImageRow {
  std::string file;
  const compare::ImageRecord* before = nullptr;
  const compare::ImageRecord* after = nullptr;
  std::string status;  // fixed, still, new, or "" (no repair)
  std::string thumb, thumb_error;
};
struct ImageRows {
  std::vector<ImageRow> rows;  // the first ReportOptions::max_image_rows
  size_t fixed = 0, still = 0, fresh = 0, total = 0;
  bool with_status = false;    // before and after a repair
  bool any = true;             // false: nothing says which images disagreed
};

// A horizontal bar chart of ranked layers (both rankings), its label column fitted to the labels.
std::string layer_bar_chart(const std::vector<Bar>& bars);

class Page {
 public:
  Page(const ReportInput& in, const ReportOptions& o);
  Result<std::string> render();

 private:
  Status prepare_graphs();
  size_t images_total() const;
  size_t disagreeing_before() const;
  std::string finding_anchor(size_t i) const { return fmt::format("finding-{}", i + 1); }
  void header(std::string& s) const;
  void open_section(std::string& s, const char* id, const char* title, const std::string& lead);
  void card(std::string& s, const char* css, const std::string& key, const std::string& value, const std::string& detail);
  void summary(std::string& s);
  void summary_meta(std::string& s) const;
  void disagreement_cards(std::string& s);
  void findings_card(std::string& s);
  void models_table(std::string& s) const;
  void history(std::string& s);
  void history_charts(std::string& s) const;
  void validation_paragraph(std::string& s, const repair::Validation& v) const;
  void steps_table(std::string& s) const;
  void ranking(std::string& s);
  // Anchors of ranked layers: round 1 (or a localize report) keeps the short form.
  static std::string layer_anchor(int round, int rank);
  void ranking_of(std::string& s, const localize::ActivationAnalysis& a, int round);
  // The layers whose local replay error exceeds the tolerance, by replay rank.
  void replay_ranking_of(std::string& s, const localize::LocalReplay& r, int round);
  std::string layer_class(int round, const std::string& source_node) const;
  std::string node_html(const NodeCell& c, const NodeCell* other, const std::set<std::string>& differing,
                        const std::string& fault_attribute) const;
  std::string side_by_side_html(const std::vector<DiffRow>& rows, const Finding& f) const;
  // PP evidence reads best as its table of presets tried.
  std::string preprocessing_trials(const localize::PreprocessingEvidence& e) const;
  void findings(std::string& s);
  void finding_filters(std::string& s) const;
  void finding_card(std::string& s, size_t i) const;
  std::string topk_html(const std::vector<int64_t>& ids, const std::vector<float>& scores, int64_t reference,
                        bool mark) const;
  std::string target_topk(const compare::ImageRecord& r) const;
  ImageRows image_rows() const;
  void images(std::string& s);
  void image_row(std::string& s, const ImageRow& row, bool with_status) const;
  std::string edit_delta(const model::Edit& e) const;
  void patch(std::string& s);
  void timings(std::string& s);

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

}  // namespace fetafix::report::detail
