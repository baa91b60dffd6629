// The few pieces the HTML report is built from, without a template engine or a JavaScript
// charting library: escaping (every piece of text from a model or a file name goes through
// it), base64 for inline images, number formatting, and inline-SVG charts. Everything is
// deterministic, so the same inputs give the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fetafix::report {

// Text for an element body or a double-quoted attribute value: & < > " ' escaped.
std::string escape(std::string_view text);

// RFC 4648 base64 with padding (for data: URIs).
std::string base64(std::span<const unsigned char> bytes);

// "12.5%" from a share in [0,1]; digits after the point.
std::string percent(double share, int digits = 1);
// Compact number for tables: 3 significant digits, scientific beyond 1e5 or below 1e-3.
std::string number(double value);

// One bar of a horizontal bar chart.
struct Bar {
  std::string label;        // left of the bar
  double value = 0;
  std::string value_text;   // right of the bar
  std::string css_class;    // colours the bar (the report's stylesheet defines them)
  std::string title;        // tooltip
  std::string href;         // makes the label a link when set
};
struct BarChartOptions {
  int width = 760;
  int bar_height = 18;
  int gap = 6;
  int label_width = 300;
  double max_value = 0;     // 0 = largest value
};
std::string horizontal_bar_chart(const std::vector<Bar>& bars, const BarChartOptions& options = {});

// A step/line chart of one series: y[i] at x = i, with point labels (e.g. Figure 4 of the
// paper: disagreement after each kept edit).
struct LinePoint {
  double y = 0;
  std::string label;        // under the x axis
  std::string title;        // tooltip of the point
};
struct LineChartOptions {
  int width = 760;
  int height = 280;
  std::string y_label;
  bool y_is_share = true;   // axis ticks as percentages
};
std::string line_chart(const std::vector<LinePoint>& points, const LineChartOptions& options = {});

// Grouped bars: one group per category, one bar per series (e.g. localized / tried / kept).
struct BarGroup {
  std::string category;
  std::vector<double> values;  // one per series
};
std::string grouped_bar_chart(const std::vector<BarGroup>& groups, const std::vector<std::string>& series,
                              const std::vector<std::string>& series_classes, int width = 520, int height = 240);

}  // namespace fetafix::report
