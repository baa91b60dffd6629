// `--report FILE.html` of compare, localize and repair: one self-contained HTML page (inline
// CSS, inline SVG charts, thumbnails as data: URIs, a small inline script; nothing fetched
// from anywhere) that shows what the JSON logs hold in a form people would rather look at:
// the summary, the repair history (the paper's Figure 4), the layer ranking, Source and
// Target side by side around every finding, the images that disagreed, and the patch.
// Sections without data (no repair in `compare`, say) are left out. Layout: docs/report.md.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "compare/compare.h"
#include "localize/localize.h"
#include "repair/driver.h"
#include "report/graph_diff.h"

namespace fetafix::report {

struct ReportInput {
  std::string command;  // "compare", "localize" or "repair": titles and the exit code's meaning
  compare::ModelSide source, target;     // models (may be null for compare-only reports), labels, presets
  std::filesystem::path image_dir;       // thumbnails are read from here
  // Source vs the Target as given (top-k lists). For localize the localization's `detection` is
  // used when this is null; repair may leave it null (its per-image labels then come from the
  // repair alone, without top-k lists).
  const compare::CompareResult* before = nullptr;
  const compare::CompareResult* after = nullptr;             // Source vs the repaired Target (top-k lists)
  // localize's result. Repair reports use the repair's own `localizations` (one per round) and
  // fall back to this as round 1 only when the repair carries none.
  const localize::LocalizeResult* localization = nullptr;
  const repair::RepairResult* repair = nullptr;
  int exit_code = 0;
  double seconds = 0;                                        // the command's wall time
};

struct ReportOptions {
  int thumbnail_px = 96;          // longer side of each thumbnail
  int thumbnail_quality = 80;     // JPEG quality
  size_t max_image_rows = 200;    // disagreeing images listed (the rest are counted)
  size_t max_chart_layers = 40;   // layers in the ranking chart (the table lists all)
  size_t max_side_by_side = 500;  // findings with a side-by-side view (the rest: summary only)
  size_t open_findings = 30;      // findings shown expanded; the rest start folded
  SideBySideOptions side_by_side;
};

// What became of a finding in the repair loop.
enum class RepairStatus { kNotRepaired, kKept, kRejected, kNotTried };
struct FindingOutcome {
  RepairStatus status = RepairStatus::kNotRepaired;  // kNotRepaired: no repair ran (compare, localize)
  std::string reason;                                 // the step's reason (rejected), or why not tried
};
// Whether a repair step was made for this finding: a step of the same round (round 0: any
// round; a revert: any later round) that lists the finding's id (RepairStep::finding_ids).
bool step_names(const repair::RepairStep& step, const localize::Finding& finding, int round = 0);
// Kept: a kept step names the finding. Rejected: only rejected steps name it (the last one's
// reason). Not tried: no step names it. `round`: the repair round that localized the findings
// (0: match steps of any round).
std::vector<FindingOutcome> finding_outcomes(const std::vector<localize::Finding>& findings,
                                             const repair::RepairResult* repair, int round = 0);

// One view of what a repair localized over all its rounds, for the Model Explorer files: round
// 1's matching (the Target as given), the first ranking that ran (activation analysis and local
// replay), and every distinct finding (by id) of every round.
localize::LocalizeResult repair_localization_summary(const repair::RepairResult& repair);

Result<std::string> render_report(const ReportInput& input, const ReportOptions& options = {});
// Renders and writes atomically.
Status write_report(const std::filesystem::path& path, const ReportInput& input, const ReportOptions& options = {});

}  // namespace fetafix::report
