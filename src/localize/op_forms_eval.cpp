#include "localize/op_forms_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <set>

#include "model/attributes.h"
#include "model/weights.h"

namespace fetafix::localize::forms {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kBig = 1e9;  // probes the asymptotes: a bound is infinite when f(±kBig) follows x there

const std::set<std::string_view>& elementwise_ops() {
  static const std::set<std::string_view> ops{"Identity", "Relu",    "LeakyRelu", "Clip",     "Min",      "Max",
                                              "Add",      "Sub",     "Mul",       "Div",      "Neg",      "Abs",
                                              "Sigmoid",  "HardSigmoid", "HardSwish", "Tanh", "Erf",      "Exp",
                                              "Log",      "Sqrt",    "Pow",       "Reciprocal", "Softplus", "Softsign",
                                              "Gelu",     "Elu"};
  return ops;
}

// ---- compiling the chain into steps over one scalar ----

struct Operand {
  enum Kind { kX, kStep, kConstant, kAbsent } kind = kAbsent;
  size_t step = 0;               // kStep: index of the producing step
  std::vector<double> constant;  // kConstant: 1 value, or one per channel
};

struct Step {
  const onnx::NodeProto* node = nullptr;
  std::vector<Operand> in;
};

struct Program {
  std::vector<Step> steps;
  size_t channels = 1;
  std::vector<int64_t> channel_shape;
};

// A Clip's bounds below opset 11 are attributes; they become operands 1 and 2 like the inputs.
void clip_attribute_bounds(const onnx::NodeProto& node, Step& step) {
  if (node.input_size() > 1) return;
  for (const char* name : {"min", "max"}) {
    Operand o;
    if (model::find_attribute(node, name)) {
      o.kind = Operand::kConstant;
      o.constant = {model::get_float(node, name).ok() ? double(*model::get_float(node, name)) : 0.0};
    }
    step.in.push_back(o);
  }
}

std::optional<Program> compile(const onnx::ModelProto& model, const std::vector<size_t>& nodes,
                               const model::GraphView& view, const std::string& x) {
  Program p;
  std::map<std::string, size_t> produced;
  for (size_t n : nodes) {
    const auto& node = view.node(n);
    Step step{&node, {}};
    for (const auto& in : node.input()) {
      Operand o;
      if (in.empty()) {
        o.kind = Operand::kAbsent;
      } else if (in == x) {
        o.kind = Operand::kX;
      } else if (auto it = produced.find(in); it != produced.end()) {
        o.kind = Operand::kStep;
        o.step = it->second;
      } else {
        auto t = model::get_weight(model, in);
        if (!t.ok() || t->numel() < 1) return std::nullopt;
        const auto values = t->to_float();
        o.kind = Operand::kConstant;
        o.constant.assign(values.begin(), values.end());
        if (values.size() > 1) {
          if (p.channels > 1 && p.channels != values.size()) return std::nullopt;  // mixed per-channel sizes
          p.channels = values.size();
          if (p.channel_shape.empty()) p.channel_shape = t->shape;
        }
      }
      step.in.push_back(std::move(o));
    }
    if (node.op_type() == "Clip") clip_attribute_bounds(node, step);
    produced[node.output(0)] = p.steps.size();
    p.steps.push_back(std::move(step));
  }
  return p;
}

double attr_float(const onnx::NodeProto& n, const char* name, double fallback) {
  auto v = model::get_float_or(n, name, static_cast<float>(fallback));
  return v.ok() ? *v : fallback;
}

double gelu(double x, bool tanh_form) {
  if (!tanh_form) return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double hard_sigmoid(double x, double alpha, double beta) { return std::clamp(alpha * x + beta, 0.0, 1.0); }

// One node on scalars; `a` holds the operands (NaN for an absent optional input).
double evaluate_op(const onnx::NodeProto& node, const std::vector<double>& a) {
  const std::string& op = node.op_type();
  auto has = [&](size_t i) { return i < a.size() && !std::isnan(a[i]); };
  if (op == "Identity") return a[0];
  if (op == "Relu") return std::max(a[0], 0.0);
  if (op == "LeakyRelu") return a[0] >= 0 ? a[0] : attr_float(node, "alpha", 0.01) * a[0];
  if (op == "Clip") {
    const double lo = has(1) && a[1] > -3e38 ? a[1] : -kInf, hi = has(2) && a[2] < 3e38 ? a[2] : kInf;
    return std::min(std::max(a[0], lo), hi);
  }
  if (op == "Min") return *std::min_element(a.begin(), a.end());
  if (op == "Max") return *std::max_element(a.begin(), a.end());
  if (op == "Add") return a[0] + a[1];
  if (op == "Sub") return a[0] - a[1];
  if (op == "Mul") return a[0] * a[1];
  if (op == "Div") return a[0] / a[1];
  if (op == "Neg") return -a[0];
  if (op == "Abs") return std::abs(a[0]);
  if (op == "Sigmoid") return 1.0 / (1.0 + std::exp(-a[0]));
  if (op == "HardSigmoid") return hard_sigmoid(a[0], attr_float(node, "alpha", 0.2), attr_float(node, "beta", 0.5));
  if (op == "HardSwish") return a[0] * hard_sigmoid(a[0], 1.0 / 6.0, 0.5);
  if (op == "Tanh") return std::tanh(a[0]);
  if (op == "Erf") return std::erf(a[0]);
  if (op == "Exp") return std::exp(a[0]);
  if (op == "Log") return std::log(a[0]);
  if (op == "Sqrt") return std::sqrt(a[0]);
  if (op == "Pow") return std::pow(a[0], a[1]);
  if (op == "Reciprocal") return 1.0 / a[0];
  if (op == "Softplus") return std::log1p(std::exp(a[0]));
  if (op == "Softsign") return a[0] / (1.0 + std::abs(a[0]));
  if (op == "Elu") return a[0] >= 0 ? a[0] : attr_float(node, "alpha", 1.0) * (std::exp(a[0]) - 1.0);
  if (op == "Gelu") {
    auto approx = model::get_string_or(node, "approximate", "none");
    return gelu(a[0], approx.ok() && *approx == "tanh");
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<double> run(const Program& p, size_t channel, const std::vector<double>& xs) {
  std::vector<double> out(xs.size());
  std::vector<double> values(p.steps.size()), operands;
  for (size_t s = 0; s < xs.size(); ++s) {
    for (size_t i = 0; i < p.steps.size(); ++i) {
      operands.clear();
      for (const auto& o : p.steps[i].in) {
        switch (o.kind) {
          case Operand::kX: operands.push_back(xs[s]); break;
          case Operand::kStep: operands.push_back(values[o.step]); break;
          case Operand::kConstant: operands.push_back(o.constant[o.constant.size() == 1 ? 0 : channel]); break;
          case Operand::kAbsent: operands.push_back(std::numeric_limits<double>::quiet_NaN()); break;
        }
      }
      values[i] = evaluate_op(*p.steps[i].node, operands);
    }
    out[s] = values.back();
  }
  return out;
}

// ---- the families ----

const std::vector<double>& grid() {
  static const std::vector<double> xs = [] {
    std::vector<double> v;
    for (int i = -96; i <= 96; ++i) v.push_back(i / 8.0);  // -12 .. 12 by 1/8
    for (double extra : {0.03, -0.03, 1000.0, -1000.0, kBig, -kBig}) v.push_back(extra);
    return v;
  }();
  return xs;
}

using Params = std::map<std::string, double>;

struct Samples {
  const std::vector<double>& x;
  const std::vector<double>& f;
  double rtol;
  double at(double x0) const {
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i] == x0) return f[i];
    return std::numeric_limits<double>::quiet_NaN();
  }
  bool near(double a, double b) const {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b)) return a == b;
    return std::abs(a - b) <= rtol * std::max({1.0, std::abs(a), std::abs(b)});
  }
  template <class F>
  bool follows(F&& g) const {
    for (size_t i = 0; i < x.size(); ++i)
      if (!near(f[i], g(x[i]))) return false;
    return true;
  }
};

std::optional<Params> fit_clip(const Samples& s) {
  const double lo = s.at(-kBig) <= -kBig / 10 ? -kInf : s.at(-kBig);
  const double hi = s.at(kBig) >= kBig / 10 ? kInf : s.at(kBig);
  if (std::isnan(lo) || std::isnan(hi) || lo > hi) return std::nullopt;
  if (!s.follows([&](double x) { return std::min(std::max(x, lo), hi); })) return std::nullopt;
  return Params{{"lo", lo}, {"hi", hi}};
}

std::optional<Params> fit_leaky_relu(const Samples& s) {
  const double alpha = -s.at(-1.0);
  if (!s.follows([&](double x) { return x >= 0 ? x : alpha * x; })) return std::nullopt;
  return Params{{"alpha", alpha}};
}

// alpha, beta of clip(alpha * x + beta, 0, 1) from two samples strictly inside (0, 1).
// alpha 0 would be a constant gate: then the "hard sigmoid" is a constant and the "hard swish" a
// plain scaling (an input's dequantization (x - z) * s is no activation), so both need a slope.
std::optional<Params> fit_hard_sigmoid_values(const std::vector<double>& x, const std::vector<double>& g) {
  std::vector<size_t> inside;
  for (size_t i = 0; i < x.size(); ++i)
    if (g[i] > 1e-6 && g[i] < 1 - 1e-6 && std::abs(x[i]) < 100) inside.push_back(i);
  if (inside.size() < 2) return std::nullopt;
  const size_t a = inside.front(), b = inside.back();
  if (x[a] == x[b]) return std::nullopt;
  const double alpha = (g[b] - g[a]) / (x[b] - x[a]);
  if (std::abs(alpha) < 1e-6) return std::nullopt;
  return Params{{"alpha", alpha}, {"beta", g[a] - alpha * x[a]}};
}

std::optional<Params> fit_hard_sigmoid(const Samples& s) {
  auto p = fit_hard_sigmoid_values(s.x, s.f);
  if (!p || !s.follows([&](double x) { return hard_sigmoid(x, p->at("alpha"), p->at("beta")); })) return std::nullopt;
  return p;
}

std::optional<Params> fit_hard_swish(const Samples& s) {
  std::vector<double> x, g;
  for (size_t i = 0; i < s.x.size(); ++i)
    if (std::abs(s.x[i]) >= 0.03 && std::abs(s.x[i]) < 100) {
      x.push_back(s.x[i]);
      g.push_back(s.f[i] / s.x[i]);
    }
  auto p = fit_hard_sigmoid_values(x, g);
  if (!p || !s.follows([&](double v) { return v * hard_sigmoid(v, p->at("alpha"), p->at("beta")); }))
    return std::nullopt;
  return p;
}

std::optional<Params> fit_sigmoid(const Samples& s) {
  if (!s.follows([](double x) { return 1.0 / (1.0 + std::exp(-x)); })) return std::nullopt;
  return Params{};
}

std::optional<Params> fit_swish(const Samples& s) {
  const double g1 = s.at(1.0);
  if (!(g1 > 0 && g1 < 1)) return std::nullopt;
  const double beta = std::log(g1 / (1 - g1));
  if (std::abs(beta) < 1e-6) return std::nullopt;  // x / 2: a scaling
  if (!s.follows([&](double x) { return x / (1.0 + std::exp(-beta * x)); })) return std::nullopt;
  return Params{{"beta", beta}};
}

std::optional<Params> fit_power(const Samples& s) {
  if (!s.near(s.at(1.0), 1.0) || !(s.at(2.0) > 0)) return std::nullopt;
  const double p = std::log2(s.at(2.0));
  if (s.near(p, 1.0) || s.near(p, 0.0)) return std::nullopt;  // the identity, a constant
  const bool integer = std::abs(p - std::round(p)) < 1e-9;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (std::abs(s.x[i]) > 100) continue;  // powers overflow there
    if (s.x[i] < 0 && !integer) continue;  // NaN on both sides, or a sign convention
    if (!s.near(s.f[i], std::pow(s.x[i], integer ? std::round(p) : p))) return std::nullopt;
  }
  return Params{{"exponent", integer ? std::round(p) : p}};
}

struct Family {
  OpFunction function;
  std::optional<Params> (*fit)(const Samples&);
};

// The family of one channel's samples; gelu is told by comparison with both definitions.
std::optional<std::pair<OpFunction, Params>> identify(const Samples& s, std::string& approximation) {
  static const Family families[] = {{OpFunction::kClip, fit_clip},           {OpFunction::kLeakyRelu, fit_leaky_relu},
                                    {OpFunction::kHardSigmoid, fit_hard_sigmoid}, {OpFunction::kHardSwish, fit_hard_swish},
                                    {OpFunction::kSigmoid, fit_sigmoid},     {OpFunction::kSwish, fit_swish}};
  for (const auto& family : families)
    if (auto p = family.fit(s)) {
      if (family.function == OpFunction::kClip && std::isinf(p->at("lo")) && std::isinf(p->at("hi")))
        return std::nullopt;  // the identity: not an activation
      return std::pair{family.function, *p};
    }
  for (bool tanh_form : {false, true})
    if (s.follows([&](double x) { return gelu(x, tanh_form); })) {
      approximation = tanh_form ? "tanh" : "none";
      return std::pair{OpFunction::kGelu, Params{}};
    }
  if (auto p = fit_power(s)) return std::pair{OpFunction::kPower, *p};
  return std::nullopt;
}

}  // namespace

bool is_elementwise(std::string_view op_type) { return elementwise_ops().count(op_type) > 0; }

std::optional<OpForm> identify_chain(const onnx::ModelProto& model, const model::GraphView& view,
                                     const std::vector<size_t>& nodes, const std::string& x, double rtol) {
  auto program = compile(model, nodes, view, x);
  if (!program) return std::nullopt;
  OpForm form;
  std::string approximation;
  for (size_t c = 0; c < program->channels; ++c) {
    const auto f = run(*program, c, grid());
    const Samples samples{grid(), f, rtol};
    auto found = identify(samples, approximation);
    if (!found || (c > 0 && found->first != form.function)) return std::nullopt;
    form.function = found->first;
    for (const auto& [k, v] : found->second) form.numbers[k].push_back(v);
  }
  // One value when every channel has the same (a per-channel constant that does not matter).
  for (auto& [k, v] : form.numbers)
    if (std::all_of(v.begin(), v.end(), [&](double e) { return e == v[0]; })) v.resize(1);
  const bool per_channel =
      std::any_of(form.numbers.begin(), form.numbers.end(), [](const auto& kv) { return kv.second.size() > 1; });
  if (per_channel) form.channel_shape = program->channel_shape;
  if (form.function == OpFunction::kGelu) form.modes["approximation"] = approximation;
  return form;
}

}  // namespace fetafix::localize::forms
