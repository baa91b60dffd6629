#include "localize/op_forms.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "localize/op_forms_eval.h"
#include "model/attributes.h"
#include "model/opset.h"
#include "model/weights.h"

namespace fetafix::localize {
namespace {

// An attribute's value, its ONNX default when absent, or the default when it has another type.
template <class T>
T value_or(const Result<T>& r) {
  return r.ok() ? r.value() : T{};
}

// ---- the chain ending at a value ----

// A chain: the element-wise nodes between one varying input x and the output.
struct Chain {
  std::string x;
  std::vector<size_t> nodes;  // graph order
};

bool absorbable(const model::GraphView& view, size_t n) {
  const auto& node = view.node(n);
  return node.output_size() == 1 && forms::is_elementwise(node.op_type());
}

// The nodes computing `value` from `x` alone (other inputs constants), or nullopt when another
// varying value feeds in, an intermediate value is read outside the chain, or it gets too long.
std::optional<Chain> chain_from(const onnx::ModelProto& model, const model::GraphView& view, const std::string& value,
                                const std::string& x, size_t max_nodes) {
  std::set<size_t> nodes;
  size_t counted = 0;  // Identity nodes (left by Q/DQ removal) do not count towards the limit
  std::function<bool(const std::string&)> visit = [&](const std::string& v) -> bool {
    if (v == x) return true;
    if (model::is_weight(model, v)) return true;
    auto p = view.producer(v);
    if (!p || !absorbable(view, *p)) return false;
    if (!nodes.insert(*p).second) return true;
    if (view.node(*p).op_type() != "Identity" && ++counted > max_nodes) return false;
    for (const auto& in : view.node(*p).input())
      if (!in.empty() && !visit(in)) return false;
    return true;
  };
  if (!visit(value) || nodes.empty()) return std::nullopt;
  // x must really be read (a chain of constants is not a function of x).
  bool reads_x = false;
  for (size_t n : nodes)
    for (const auto& in : view.node(n).input()) reads_x |= in == x;
  if (!reads_x) return std::nullopt;
  for (size_t n : nodes) {
    const std::string& out = view.node(n).output(0);
    if (out == value) continue;
    if (view.is_graph_output(out)) return std::nullopt;
    for (const auto& use : view.consumers(out))
      if (!nodes.count(use.node)) return std::nullopt;
  }
  return Chain{x, {nodes.begin(), nodes.end()}};
}

// Varying values upstream of `value` through element-wise nodes, nearest first (each a
// candidate x; the caller tries the farthest first).
std::vector<std::string> candidate_inputs(const onnx::ModelProto& model, const model::GraphView& view,
                                          const std::string& value, size_t max_nodes) {
  std::vector<std::string> order;
  std::set<std::string> seen{value};
  std::deque<std::string> queue{value};
  size_t expanded = 0;
  while (!queue.empty() && expanded <= max_nodes) {
    const std::string v = queue.front();
    queue.pop_front();
    auto p = view.producer(v);
    if (!p || !absorbable(view, *p)) continue;
    if (view.node(*p).op_type() != "Identity") ++expanded;
    for (const auto& in : view.node(*p).input()) {
      if (in.empty() || model::is_weight(model, in) || !seen.insert(in).second) continue;
      order.push_back(in);
      queue.push_back(in);
    }
  }
  return order;
}

OpForm finish(OpForm form, const model::GraphView& view, const std::vector<size_t>& nodes, const std::string& x,
              const std::string& output) {
  form.input = x;
  if (auto shape = view.shape(x)) form.input_shape = *shape;
  form.output = output;
  form.nodes = nodes;
  for (size_t n : nodes) {
    form.node_names.push_back(view.node_name(n));
    if (!form.spelling.empty()) form.spelling += ' ';
    form.spelling += view.node(n).op_type();
  }
  return form;
}

std::optional<OpForm> recognize_elementwise(const onnx::ModelProto& model, const model::GraphView& view,
                                            const std::string& value, const OpFormOptions& o) {
  auto inputs = candidate_inputs(model, view, value, o.max_chain_nodes);
  for (auto it = inputs.rbegin(); it != inputs.rend(); ++it) {  // the longest chain first
    auto chain = chain_from(model, view, value, *it, o.max_chain_nodes);
    if (!chain) continue;
    auto form = forms::identify_chain(model, view, chain->nodes, chain->x, o.rtol);
    if (form) return finish(std::move(*form), view, chain->nodes, chain->x, value);
  }
  return std::nullopt;
}

// ---- Resize / Upsample and Softmax from their attributes ----

std::optional<OpForm> recognize_resize(const onnx::ModelProto& model, const model::GraphView& view, size_t n) {
  const auto& node = view.node(n);
  const int64_t opset = model::default_opset(model);
  OpForm f;
  f.function = OpFunction::kResize;
  const bool legacy = node.op_type() == "Upsample" || opset < 11;  // asymmetric, floor
  f.modes["mode"] = value_or(model::get_string_or(node, "mode", "nearest"));
  f.modes["coordinate_transformation_mode"] =
      legacy ? "asymmetric" : value_or(model::get_string_or(node, "coordinate_transformation_mode", "half_pixel"));
  f.modes["nearest_mode"] = legacy ? "floor" : value_or(model::get_string_or(node, "nearest_mode", "round_prefer_floor"));
  f.numbers["cubic_coeff_a"] = {value_or(model::get_float_or(node, "cubic_coeff_a", -0.75f))};
  f.numbers["exclude_outside"] = {double(value_or(model::get_int_or(node, "exclude_outside", 0)))};
  f.numbers["antialias"] = {double(value_or(model::get_int_or(node, "antialias", 0)))};
  // The scales input (Upsample/Resize 10: input 1; Resize 11+: input 2), when constant.
  const int scales_at = node.op_type() == "Upsample" || opset < 11 ? 1 : 2;
  if (node.input_size() > scales_at && !node.input(scales_at).empty())
    if (auto t = model::get_weight(model, node.input(scales_at)); t.ok() && t->numel() > 0) {
      auto v = t->to_float();
      f.numbers["scales"] = std::vector<double>(v.begin(), v.end());
    }
  return finish(std::move(f), view, {n}, node.input(0), node.output(0));
}

std::optional<OpForm> recognize_softmax(const onnx::ModelProto& model, const model::GraphView& view, size_t n) {
  const auto& node = view.node(n);
  const int64_t opset = model::default_opset(model);
  OpForm f;
  f.function = OpFunction::kSoftmax;
  f.modes["kind"] = node.op_type() == "Softmax" ? "softmax" : node.op_type() == "LogSoftmax" ? "log_softmax" : "hardmax";
  const int64_t axis = value_or(model::get_int_or(node, "axis", opset < 13 ? 1 : -1));
  auto shape = view.shape(node.input(0));
  f.rank = shape ? static_cast<int64_t>(shape->size()) : -1;
  if (f.rank < 0) {
    f.axes = {axis};  // raw: comparable only with another raw axis
    f.modes["semantics"] = opset < 13 ? "coerced_2d" : "single_axis";
    return finish(std::move(f), view, {n}, node.input(0), node.output(0));
  }
  const int64_t a = axis < 0 ? axis + f.rank : axis;
  const int64_t last = opset < 13 ? f.rank - 1 : a;  // below 13 every axis from `axis` on
  std::vector<double> sizes;
  for (int64_t k = a; k <= last && k >= 0 && k < f.rank; ++k) {
    const int64_t d = (*shape)[static_cast<size_t>(k)];
    if (d == 1) continue;  // a softmax over a size-1 axis changes nothing
    f.axes.push_back(k);
    sizes.push_back(static_cast<double>(d));
  }
  f.numbers["reduced_sizes"] = sizes;
  return finish(std::move(f), view, {n}, node.input(0), node.output(0));
}

std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.6g}", v);
}

std::string numbers_text(const std::vector<double>& v) {
  if (v.size() == 1) return number_text(v[0]);
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt::format("[per channel: {} values, {}..{}]", v.size(), number_text(*lo), number_text(*hi));
}

bool close(double a, double b, double rtol) {
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= rtol * std::max({1.0, std::abs(a), std::abs(b)});
}

// Equal after broadcasting a single value over the other's channels.
bool numbers_close(const std::vector<double>& a, const std::vector<double>& b, double rtol) {
  if (a.empty() || b.empty()) return a.empty() && b.empty();
  if (a.size() != b.size() && a.size() != 1 && b.size() != 1) return false;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (!close(a[a.size() == 1 ? 0 : i], b[b.size() == 1 ? 0 : i], rtol)) return false;
  return true;
}

// Resize parameters that matter for the mode in use; pytorch_half_pixel is half_pixel on
// every output side longer than 1 (the only difference), so the two compare equal.
std::set<std::string> relevant_resize_keys(const OpForm& f) {
  std::set<std::string> keys{"mode", "coordinate_transformation_mode", "antialias", "scales"};
  const std::string mode = f.modes.count("mode") ? f.modes.at("mode") : "";
  if (mode == "nearest") keys.insert("nearest_mode");
  if (mode == "cubic") keys.insert({"cubic_coeff_a", "exclude_outside"});
  return keys;
}

std::string canonical_mode(const OpForm& f, const std::string& key) {
  auto it = f.modes.find(key);
  if (it == f.modes.end()) return "";
  if (key == "coordinate_transformation_mode" && it->second == "pytorch_half_pixel") return "half_pixel";
  return it->second;
}

void compare_parameters(const OpForm& s, const OpForm& t, const OpFormOptions& o, FormComparison& c) {
  std::set<std::string> keys;
  for (const auto& [k, _] : s.numbers) keys.insert(k);
  for (const auto& [k, _] : t.numbers) keys.insert(k);
  for (const auto& [k, _] : s.modes) keys.insert(k);
  for (const auto& [k, _] : t.modes) keys.insert(k);
  const auto relevant = s.function == OpFunction::kResize ? relevant_resize_keys(s) : keys;
  for (const auto& k : keys) {
    if (!relevant.count(k)) continue;
    if (s.numbers.count(k) || t.numbers.count(k)) {
      if (!s.numbers.count(k) || !t.numbers.count(k)) continue;  // e.g. scales known on one side only
      if (!numbers_close(s.numbers.at(k), t.numbers.at(k), o.rtol))
        c.differences.push_back(fmt::format("{}: {} vs {}", k, numbers_text(s.numbers.at(k)), numbers_text(t.numbers.at(k))));
      continue;
    }
    const std::string a = canonical_mode(s, k), b = canonical_mode(t, k);
    if (a != b) c.differences.push_back(fmt::format("{}: {} vs {}", k, a.empty() ? "-" : a, b.empty() ? "-" : b));
  }
}

std::string axes_text(const std::vector<int64_t>& axes) { return fmt::format("[{}]", fmt::join(axes, ",")); }

std::string sizes_text(const std::vector<double>& sizes) {
  std::vector<std::string> parts;
  for (double v : sizes) parts.push_back(number_text(v));
  return fmt::format("[{}]", fmt::join(parts, ","));
}

// Softmaxes agree when they reduce dims of the same sizes (layouts may differ: NHWC's class
// axis is 3, NCHW's 1), or, shapes unknown, when they name the same axis with the same semantics.
void compare_softmax(const OpForm& s, const OpForm& t, FormComparison& c) {
  if (s.modes.at("kind") != t.modes.at("kind"))
    c.differences.push_back(fmt::format("kind: {} vs {}", s.modes.at("kind"), t.modes.at("kind")));
  const bool known = s.numbers.count("reduced_sizes") && t.numbers.count("reduced_sizes");
  if (known && s.numbers.at("reduced_sizes") != t.numbers.at("reduced_sizes"))
    c.differences.push_back(fmt::format("reduced dims: {} (axes {}) vs {} (axes {})",
                                        sizes_text(s.numbers.at("reduced_sizes")), axes_text(s.axes),
                                        sizes_text(t.numbers.at("reduced_sizes")), axes_text(t.axes)));
  if (!known && (s.axes != t.axes || s.modes.count("semantics") != t.modes.count("semantics") ||
                 (s.modes.count("semantics") && s.modes.at("semantics") != t.modes.at("semantics"))))
    c.differences.push_back(fmt::format("axes: {} vs {} (a shape unknown)", axes_text(s.axes), axes_text(t.axes)));
}

}  // namespace

std::string_view op_function_name(OpFunction f) {
  switch (f) {
    case OpFunction::kClip: return "clip";
    case OpFunction::kLeakyRelu: return "leaky_relu";
    case OpFunction::kHardSigmoid: return "hard_sigmoid";
    case OpFunction::kHardSwish: return "hard_swish";
    case OpFunction::kSigmoid: return "sigmoid";
    case OpFunction::kSwish: return "swish";
    case OpFunction::kGelu: return "gelu";
    case OpFunction::kPower: return "power";
    case OpFunction::kResize: return "resize";
    case OpFunction::kSoftmax: return "softmax";
  }
  return "?";
}

std::string_view op_form_kind(const OpForm& form) {
  switch (form.function) {
    case OpFunction::kResize: return "resize";
    case OpFunction::kSoftmax: return "softmax";
    default: return "elementwise";
  }
}

std::string OpForm::describe() const {
  auto num = [&](const char* k) { return numbers.count(k) ? numbers_text(numbers.at(k)) : std::string("?"); };
  auto mode = [&](const char* k) { return modes.count(k) ? modes.at(k) : std::string("?"); };
  switch (function) {
    case OpFunction::kClip: return fmt::format("clip(x, {}, {})", num("lo"), num("hi"));
    case OpFunction::kLeakyRelu: return fmt::format("leaky_relu(x; alpha {})", num("alpha"));
    case OpFunction::kHardSigmoid: return fmt::format("hard_sigmoid(x; alpha {}, beta {})", num("alpha"), num("beta"));
    case OpFunction::kHardSwish: return fmt::format("hard_swish(x; alpha {}, beta {})", num("alpha"), num("beta"));
    case OpFunction::kSigmoid: return "sigmoid(x)";
    case OpFunction::kSwish: return fmt::format("swish(x; beta {})", num("beta"));
    case OpFunction::kGelu: return fmt::format("gelu(x; approximation {})", mode("approximation"));
    case OpFunction::kPower: return fmt::format("power(x, {})", num("exponent"));
    case OpFunction::kResize:
      return fmt::format("resize(x; mode {}, coordinates {}, nearest {})", mode("mode"),
                         mode("coordinate_transformation_mode"), mode("nearest_mode"));
    case OpFunction::kSoftmax:
      return fmt::format("{}(x; axes {}{})", mode("kind"), axes_text(axes), rank < 0 ? ", rank unknown" : "");
  }
  return "?";
}

std::optional<OpForm> recognize_op_form(const onnx::ModelProto& model, const model::GraphView& view,
                                        const std::string& value, const OpFormOptions& options) {
  auto p = view.producer(value);
  if (!p) return std::nullopt;
  const std::string& op = view.node(*p).op_type();
  if (op == "Resize" || op == "Upsample") return recognize_resize(model, view, *p);
  if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") return recognize_softmax(model, view, *p);
  if (!absorbable(view, *p)) return std::nullopt;
  return recognize_elementwise(model, view, value, options);
}

std::vector<OpForm> find_op_forms(const onnx::ModelProto& model, const model::GraphView& view,
                                  const OpFormOptions& options) {
  std::vector<OpForm> found;
  std::vector<bool> covered(view.node_count(), false);
  const auto& order = view.topological_order();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {  // last nodes first: longest forms win
    if (covered[*it] || view.node(*it).output_size() != 1) continue;
    auto form = recognize_op_form(model, view, view.node(*it).output(0), options);
    if (!form) continue;
    for (size_t n : form->nodes) covered[n] = true;
    found.push_back(std::move(*form));
  }
  std::sort(found.begin(), found.end(), [](const OpForm& a, const OpForm& b) { return a.nodes.back() < b.nodes.back(); });
  return found;
}

FormComparison compare_op_forms(const OpForm& source, const OpForm& target, const OpFormOptions& options) {
  FormComparison c;
  c.same_spelling = source.spelling == target.spelling;
  if (source.function != target.function) {
    c.differences.push_back(
        fmt::format("function: {} vs {}", op_function_name(source.function), op_function_name(target.function)));
    return c;
  }
  if (source.function == OpFunction::kSoftmax)
    compare_softmax(source, target, c);
  else
    compare_parameters(source, target, options, c);
  c.same_function = c.differences.empty();
  return c;
}

std::string FormComparison::summary() const {
  if (differences.empty()) return "same function";
  return fmt::format("{}", fmt::join(differences, "; "));
}

}  // namespace fetafix::localize
