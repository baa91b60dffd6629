#include "report/html.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace fetafix::report {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(std::span<const unsigned char> bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string percent(double share, int digits) {
  if (!std::isfinite(share)) return "–";
  return fmt::format("{:.{}f}%", 100.0 * share, digits);
}

std::string number(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "NaN" : (value > 0 ? "∞" : "−∞");
  if (value == 0) return "0";
  const double a = std::fabs(value);
  if (a >= 1e5 || a < 1e-3) return fmt::format("{:.2e}", value);
  if (a >= 100 || a == std::floor(a)) return fmt::format("{:.0f}", value);
  return fmt::format("{:.3g}", value);
}

namespace {

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `ticks` intervals.
double nice_step(double range, int ticks) {
  if (range <= 0) return 1;
  const double raw = range / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

std::string fixed(double v) { return fmt::format("{:.1f}", v); }

}  // namespace

std::string horizontal_bar_chart(const std::vector<Bar>& bars, const BarChartOptions& o) {
  double max_value = o.max_value;
  for (const auto& b : bars)
    if (std::isfinite(b.value)) max_value = std::max(max_value, b.value);
  if (max_value <= 0) max_value = 1;
  const int value_width = 90;
  const int plot_width = std::max(60, o.width - o.label_width - value_width);
  const int height = static_cast<int>(bars.size()) * (o.bar_height + o.gap) + o.gap;
  std::string s = fmt::format(
      "<svg class=\"chart hbar\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      fmt::arg("w", o.width), fmt::arg("h", height));
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double y = o.gap + static_cast<double>(i) * (o.bar_height + o.gap);
    const double v = std::isfinite(b.value) ? std::clamp(b.value, 0.0, max_value) : 0.0;
    const double len = std::max(v > 0 ? 1.5 : 0.0, plot_width * v / max_value);
    const double text_y = y + o.bar_height * 0.5;
    s += "<g>";
    if (!b.title.empty()) s += "<title>" + escape(b.title) + "</title>";
    // Track behind the bar so empty bars still read as rows.
    s += fmt::format("<rect class=\"track\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>", o.label_width,
                     fixed(y), plot_width, o.bar_height);
    s += fmt::format("<rect class=\"bar {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>", escape(b.css_class),
                     o.label_width, fixed(y), fixed(len), o.bar_height);
    std::string label = b.label;
    if (label.size() > 46) label = label.substr(0, 21) + "…" + label.substr(label.size() - 22);
    const std::string text = fmt::format("<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\" "
                                         "dominant-baseline=\"central\">{}</text>",
                                         o.label_width - 8, fixed(text_y), escape(label));
    s += b.href.empty() ? text : "<a href=\"" + escape(b.href) + "\">" + text + "</a>";
    s += fmt::format("<text class=\"value\" x=\"{}\" y=\"{}\" dominant-baseline=\"central\">{}</text>",
                     o.label_width + plot_width + 8, fixed(text_y), escape(b.value_text));
    s += "</g>";
  }
  s += "</svg>";
  return s;
}

std::string line_chart(const std::vector<LinePoint>& points, const LineChartOptions& o) {
  const double left = 64, right = 24, top = 20;
  const bool rotate = points.size() > 12;
  const double bottom = rotate ? 86 : 48;
  const double pw = o.width - left - right, ph = o.height - top - bottom;
  double max_y = 0;
  for (const auto& p : points)
    if (std::isfinite(p.y)) max_y = std::max(max_y, p.y);
  if (max_y <= 0) max_y = o.y_is_share ? 0.05 : 1;
  const double step = nice_step(max_y * 1.1, 5);
  const double y_top = std::ceil(max_y * 1.1 / step) * step;
  auto px = [&](size_t i) {
    return points.size() <= 1 ? left + pw / 2 : left + pw * static_cast<double>(i) / static_cast<double>(points.size() - 1);
  };
  auto py = [&](double y) { return top + ph * (1 - std::clamp(y, 0.0, y_top) / y_top); };

  std::string s = fmt::format(
      "<svg class=\"chart line\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      fmt::arg("w", o.width), fmt::arg("h", o.height));
  for (double t = 0; t <= y_top + step / 2; t += step) {
    const double y = py(t);
    s += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", fixed(left), fixed(left + pw),
                     fixed(y), fixed(y));
    const std::string tick = o.y_is_share ? percent(t, step < 0.01 ? 1 : 0) : number(t);
    s += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"central\">{}</text>",
                     fixed(left - 8), fixed(y), escape(tick));
  }
  s += fmt::format("<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", fixed(left), fixed(left + pw),
                   fixed(top + ph), fixed(top + ph));
  if (!o.y_label.empty())
    s += fmt::format("<text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
                     fixed(top + ph / 2), escape(o.y_label));
  if (!points.empty()) {
    std::string line, area = fmt::format("M{} {} ", fixed(px(0)), fixed(top + ph));
    for (size_t i = 0; i < points.size(); ++i) {
      const std::string xy = fixed(px(i)) + " " + fixed(py(points[i].y));
      line += (i ? " L" : "M") + xy;
      area += "L" + xy + " ";
    }
    area += fmt::format("L{} {} Z", fixed(px(points.size() - 1)), fixed(top + ph));
    s += "<path class=\"area\" d=\"" + area + "\"/>";
    s += "<path class=\"series\" d=\"" + line + "\"/>";
    // Label every point while they fit; thin them out (keeping the last) when they do not.
    const size_t every = std::max<size_t>(1, (points.size() + 15) / 16);
    const double radius = points.size() > 40 ? 2.5 : points.size() > 20 ? 3.5 : 4.5;
    for (size_t i = 0; i < points.size(); ++i) {
      s += "<g>";
      if (!points[i].title.empty()) s += "<title>" + escape(points[i].title) + "</title>";
      s += fmt::format("<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"{}\"/>", fixed(px(i)), fixed(py(points[i].y)),
                       radius);
      s += "</g>";
      const bool last = i + 1 == points.size();
      // The last point is always labelled; a thinned-out label too close to it is dropped.
      if (!last && (i % every != 0 || (every > 1 && points.size() - 1 - i < every))) continue;
      const double lx = px(i), ly = top + ph + 16;
      if (rotate)
        s += fmt::format("<text class=\"tick\" transform=\"translate({} {}) rotate(-40)\" text-anchor=\"end\">{}</text>",
                         fixed(lx), fixed(ly - 4), escape(points[i].label));
      else
        s += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", fixed(lx), fixed(ly),
                         escape(points[i].label));
    }
  }
  s += "</svg>";
  return s;
}

std::string grouped_bar_chart(const std::vector<BarGroup>& groups, const std::vector<std::string>& series,
                              const std::vector<std::string>& series_classes, int width, int height) {
  const double left = 44, right = 12, top = 28, bottom = 30;
  const double pw = width - left - right, ph = height - top - bottom;
  double max_v = 0;
  for (const auto& g : groups)
    for (double v : g.values) max_v = std::max(max_v, v);
  if (max_v <= 0) max_v = 1;
  const double step = std::max(1.0, nice_step(max_v, 4));
  const double y_top = std::ceil(max_v / step) * step;
  std::string s = fmt::format(
      "<svg class=\"chart groups\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" "
      "xmlns=\"http://www.w3.org/2000/svg\">",
      fmt::arg("w", width), fmt::arg("h", height));
  for (double t = 0; t <= y_top + step / 2; t += step) {
    const double y = top + ph * (1 - t / y_top);
    s += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", fixed(left), fixed(left + pw),
                     fixed(y), fixed(y));
    s += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"central\">{}</text>",
                     fixed(left - 6), fixed(y), number(t));
  }
  // Legend along the top.
  double lx = left;
  for (size_t k = 0; k < series.size(); ++k) {
    s += fmt::format("<rect class=\"bar {}\" x=\"{}\" y=\"4\" width=\"12\" height=\"12\" rx=\"2\"/>",
                     k < series_classes.size() ? escape(series_classes[k]) : "", fixed(lx));
    s += fmt::format("<text class=\"tick\" x=\"{}\" y=\"10\" dominant-baseline=\"central\">{}</text>", fixed(lx + 16),
                     escape(series[k]));
    lx += 24 + 8.0 * static_cast<double>(series[k].size());
  }
  const double group_w = groups.empty() ? pw : pw / static_cast<double>(groups.size());
  const double bar_w = std::min(28.0, group_w * 0.8 / std::max<size_t>(1, series.size()));
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + group_w * static_cast<double>(g) + (group_w - bar_w * static_cast<double>(series.size())) / 2;
    for (size_t k = 0; k < groups[g].values.size() && k < series.size(); ++k) {
      const double v = groups[g].values[k];
      const double h = ph * v / y_top, x = gx + bar_w * static_cast<double>(k);
      s += fmt::format("<g><title>{} {}: {}</title><rect class=\"bar {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" "
                       "rx=\"2\"/></g>",
                       escape(groups[g].category), escape(series[k]), number(v),
                       k < series_classes.size() ? escape(series_classes[k]) : "", fixed(x + 1), fixed(top + ph - h),
                       fixed(bar_w - 2), fixed(h));
      if (v > 0)
        s += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", fixed(x + bar_w / 2),
                         fixed(top + ph - h - 4), number(v));
    }
    s += fmt::format("<text class=\"tick strong\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     fixed(left + group_w * (static_cast<double>(g) + 0.5)), fixed(top + ph + 18),
                     escape(groups[g].category));
  }
  s += fmt::format("<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>", fixed(left), fixed(left + pw),
                   fixed(top + ph), fixed(top + ph));
  s += "</svg>";
  return s;
}

}  // namespace fetafix::report
