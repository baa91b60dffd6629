#include "repair/op_rewrite.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "model/attributes.h"
#include "model/builder.h"
#include "model/graph.h"
#include "model/opset.h"

namespace fetafix::repair {
namespace {

using localize::OpForm;
using localize::OpFunction;

bool all_scalar(const OpForm& f) {
  return std::all_of(f.numbers.begin(), f.numbers.end(), [](const auto& kv) { return kv.second.size() <= 1; });
}

double number(const OpForm& f, const char* key, double fallback) {
  auto it = f.numbers.find(key);
  return it == f.numbers.end() || it->second.empty() ? fallback : it->second[0];
}

std::string mode(const OpForm& f, const char* key) {
  auto it = f.modes.find(key);
  return it == f.modes.end() ? "" : it->second;
}

bool fully_known(const std::vector<int64_t>& dims) {
  return !dims.empty() && std::all_of(dims.begin(), dims.end(), [](int64_t d) { return d > 0; });
}

bool near(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b)); }

// Applies edits to the scratch copy as they are planned, so every edit names nodes as they are
// at that point (an insert shifts the synthesized names of the nodes after it).
class Planner {
 public:
  explicit Planner(onnx::ModelProto& scratch) : scratch_(scratch), log_(scratch) {}

  Status apply(const model::Edit& e) { return log_.apply(e); }
  const onnx::ModelProto& model() const { return scratch_; }
  const model::EditLog& log() const { return log_; }
  std::string node_name(size_t index) const { return model::name_nodes(scratch_.graph()).names[index]; }

  // `base`, or base_<k>: a name no node and no value of the scratch model uses yet.
  std::string unique_name(const std::string& base) const {
    std::set<std::string> used;
    const auto& g = scratch_.graph();
    for (const auto& v : g.input()) used.insert(v.name());
    for (const auto& t : g.initializer()) used.insert(t.name());
    for (const auto& n : g.node()) {
      used.insert(n.name());
      for (const auto& o : n.output()) used.insert(o);
    }
    std::string name = base;
    for (int k = 1; used.count(name); ++k) name = fmt::format("{}_{}", base, k);
    return name;
  }

 private:
  onnx::ModelProto& scratch_;
  model::EditLog log_;
};

// ---- parameters changed on the Target's own op ----

Status set_attr(Planner& p, const std::string& node, const Attr& a) {
  return p.apply(model::Edit::set_attribute(node, a.proto));
}

// A scalar initializer for a Clip bound, or "" for an absent (infinite) one.
Result<std::string> bound_value(Planner& p, const std::string& base, double v) {
  if (std::isinf(v)) return std::string();
  const std::string name = p.unique_name(base);
  FETAFIX_TRY_STATUS(p.apply(model::Edit::add_initializer(name, float_tensor({}, {static_cast<float>(v)}))));
  return name;
}

// Sets the Clip bounds that differ from the Source's (attributes below opset 11, scalar
// initializers on inputs 1 and 2 from 11; an infinite bound is left out).
Status set_clip_bounds(Planner& p, size_t index, const OpForm& t, const OpForm& s) {
  const std::string node = p.node_name(index);
  const bool attributes = model::default_opset(p.model()) < 11;
  const char* keys[] = {"lo", "hi"};
  for (int i = 1; i <= 2; ++i) {
    const char* key = keys[i - 1];
    const double want = number(s, key, i == 1 ? -INFINITY : INFINITY);
    const double have = number(t, key, i == 1 ? -INFINITY : INFINITY);
    if (want == have || (!std::isinf(want) && near(have, want))) continue;
    const auto& n = p.model().graph().node(static_cast<int>(index));
    const char* attr = i == 1 ? "min" : "max";
    if (attributes) {
      if (!std::isinf(want)) FETAFIX_TRY_STATUS(set_attr(p, node, Attr::f(attr, static_cast<float>(want))));
      else if (model::find_attribute(n, attr)) FETAFIX_TRY_STATUS(p.apply(model::Edit::remove_attribute(node, attr)));
      continue;
    }
    FETAFIX_ASSIGN_OR_RETURN(std::string value, bound_value(p, node + "_fetafix_" + attr, want));
    if (value.empty() && n.input_size() <= i) continue;  // absent already
    if (n.input_size() < i) FETAFIX_TRY_STATUS(p.apply(model::Edit::set_node_input(node, 1, "")));  // min slot
    FETAFIX_TRY_STATUS(p.apply(model::Edit::set_node_input(node, i, value)));
  }
  return {};
}

Status set_resize_modes(Planner& p, size_t index, const OpForm& t, const OpForm& s) {
  const auto& n = p.model().graph().node(static_cast<int>(index));
  const bool legacy = n.op_type() == "Upsample" || model::default_opset(p.model()) < 11;
  const std::string node = p.node_name(index);
  for (const char* key : {"mode", "coordinate_transformation_mode", "nearest_mode"}) {
    if (mode(s, key) == mode(t, key)) continue;
    if (std::string(key) == "nearest_mode" && mode(s, "mode") != "nearest") continue;
    if (legacy && std::string(key) != "mode")
      return make_error("'{}': {} {} cannot be written at opset {} ({})", node, key, mode(s, key),
                        model::default_opset(p.model()), n.op_type());
    FETAFIX_TRY_STATUS(set_attr(p, node, Attr::s(key, mode(s, key))));
  }
  if (mode(s, "mode") == "cubic") {
    if (!near(number(s, "cubic_coeff_a", -0.75), number(t, "cubic_coeff_a", -0.75)))
      FETAFIX_TRY_STATUS(set_attr(p, node, Attr::f("cubic_coeff_a", float(number(s, "cubic_coeff_a", -0.75)))));
    if (number(s, "exclude_outside", 0) != number(t, "exclude_outside", 0))
      FETAFIX_TRY_STATUS(set_attr(p, node, Attr::i("exclude_outside", int64_t(number(s, "exclude_outside", 0)))));
  }
  return {};
}

// The sizes of the dims a softmax over `axis` reduces (size-1 dims left out), in the Target's
// semantics: one axis from opset 13, every axis from `axis` on before.
std::vector<double> reduced_sizes(const std::vector<int64_t>& dims, int64_t axis, bool single_axis) {
  std::vector<double> out;
  const int64_t last = single_axis ? axis : static_cast<int64_t>(dims.size()) - 1;
  for (int64_t k = axis; k <= last; ++k)
    if (dims[static_cast<size_t>(k)] != 1) out.push_back(static_cast<double>(dims[static_cast<size_t>(k)]));
  return out;
}

Status set_softmax_axis(Planner& p, size_t index, const OpForm& t, const OpForm& s) {
  const std::vector<int64_t>& dims = t.input_shape;
  const std::string node = p.node_name(index);
  if (dims.empty() || s.rank < 0) return make_error("'{}': the softmax input's shape is not known", node);
  const bool single = model::default_opset(p.model()) >= 13;
  const auto wanted = s.numbers.count("reduced_sizes") ? s.numbers.at("reduced_sizes") : std::vector<double>{};
  std::vector<int64_t> order;
  if (s.rank == static_cast<int64_t>(dims.size()) && s.axes.size() == 1) order.push_back(s.axes[0]);
  for (int64_t a = 0; a < static_cast<int64_t>(dims.size()); ++a) order.push_back(a);
  for (int64_t a : order)
    if (reduced_sizes(dims, a, single) == wanted) return set_attr(p, node, Attr::i("axis", a));
  return make_error("'{}': no axis reduces the Source's dims at this rank", node);
}

// nullopt: the Target's op cannot carry the Source's parameters (a replacement is needed).
std::optional<Status> try_in_place(Planner& p, const OpForm& t, const OpForm& s) {
  if (t.nodes.size() != 1 || t.function != s.function) return std::nullopt;
  const bool attribute_form = s.function == OpFunction::kResize || s.function == OpFunction::kSoftmax;
  if (!attribute_form && !all_scalar(s)) return std::nullopt;  // per-channel values need new constants
  const size_t index = t.nodes[0];
  const std::string op = p.model().graph().node(static_cast<int>(index)).op_type();
  const std::string node = p.node_name(index);
  if (op == "HardSigmoid") {
    if (auto st = set_attr(p, node, Attr::f("alpha", float(number(s, "alpha", 0.2)))); !st.ok()) return st;
    return set_attr(p, node, Attr::f("beta", float(number(s, "beta", 0.5))));
  }
  if (op == "LeakyRelu") return set_attr(p, node, Attr::f("alpha", float(number(s, "alpha", 0.01))));
  if (op == "Clip") return set_clip_bounds(p, index, t, s);
  if (op == "Gelu") return set_attr(p, node, Attr::s("approximate", mode(s, "approximation")));
  if (op == "Resize" || op == "Upsample") return set_resize_modes(p, index, t, s);
  if (s.function == OpFunction::kSoftmax && mode(s, "kind") == mode(t, "kind")) return set_softmax_axis(p, index, t, s);
  return std::nullopt;
}

// ---- replacing the form by the Source function's canonical spelling ----

class Emitter {
 public:
  Emitter(Planner& p, std::string base, int64_t position) : p_(p), base_(std::move(base)), position_(position) {}

  Result<std::string> constant(const std::vector<double>& values, std::vector<int64_t> shape) {
    if (values.size() == 1) shape.clear();
    std::vector<float> v(values.begin(), values.end());
    const std::string name = p_.unique_name(base_ + "_c");
    FETAFIX_TRY_STATUS(p_.apply(model::Edit::add_initializer(name, float_tensor(shape, v))));
    return name;
  }
  Result<std::string> node(const std::string& op, std::vector<std::string> inputs, std::vector<Attr> attrs = {}) {
    onnx::NodeProto n;
    n.set_op_type(op);
    n.set_name(p_.unique_name(base_ + "_" + op));
    const std::string out = p_.unique_name(n.name() + "_out");
    for (auto& i : inputs) n.add_input(std::move(i));
    n.add_output(out);
    for (auto& a : attrs) *n.add_attribute() = std::move(a.proto);
    FETAFIX_TRY_STATUS(p_.apply(model::Edit::insert_node(std::move(n), position_++)));
    return out;
  }
  int64_t opset() const { return model::default_opset(p_.model()); }

 private:
  Planner& p_;
  std::string base_;
  int64_t position_;
};

Result<std::string> emit_clip(Emitter& e, const std::string& x, const OpForm& s) {
  const auto& lo = s.numbers.at("lo");
  const auto& hi = s.numbers.at("hi");
  if (lo.size() == 1 && hi.size() == 1) {
    if (lo[0] == 0 && std::isinf(hi[0])) return e.node("Relu", {x});
    if (e.opset() < 11) {
      std::vector<Attr> attrs;
      if (!std::isinf(lo[0])) attrs.push_back(Attr::f("min", float(lo[0])));
      if (!std::isinf(hi[0])) attrs.push_back(Attr::f("max", float(hi[0])));
      return e.node("Clip", {x}, attrs);
    }
    std::vector<std::string> in{x};
    for (double b : {lo[0], hi[0]}) {
      if (std::isinf(b)) {
        in.push_back("");
        continue;
      }
      FETAFIX_ASSIGN_OR_RETURN(std::string c, e.constant({b}, {}));
      in.push_back(c);
    }
    while (in.back().empty()) in.pop_back();
    return e.node("Clip", in);
  }
  std::string y = x;  // per-channel bounds: Max then Min with a constant of the channel shape
  for (auto [op, bound] : {std::pair{"Max", &lo}, std::pair{"Min", &hi}}) {
    if (bound->size() == 1 && std::isinf((*bound)[0])) continue;
    FETAFIX_ASSIGN_OR_RETURN(std::string c, e.constant(*bound, s.channel_shape));
    FETAFIX_ASSIGN_OR_RETURN(y, e.node(op, {y, c}));
  }
  return y;
}

Result<std::string> emit_gelu(Emitter& e, const std::string& x, bool tanh_form) {
  if (e.opset() >= 20) return e.node("Gelu", {x}, {Attr::s("approximate", tanh_form ? "tanh" : "none")});
  std::string inner;
  if (!tanh_form) {  // 0.5 * x * (1 + erf(x / sqrt 2)), as torch.onnx writes it
    FETAFIX_ASSIGN_OR_RETURN(std::string r2, e.constant({std::numbers::sqrt2}, {}));
    FETAFIX_ASSIGN_OR_RETURN(std::string d, e.node("Div", {x, r2}));
    FETAFIX_ASSIGN_OR_RETURN(inner, e.node("Erf", {d}));
  } else {  // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
    FETAFIX_ASSIGN_OR_RETURN(std::string three, e.constant({3.0}, {}));
    FETAFIX_ASSIGN_OR_RETURN(std::string cubed, e.node("Pow", {x, three}));
    FETAFIX_ASSIGN_OR_RETURN(std::string k, e.constant({0.044715}, {}));
    FETAFIX_ASSIGN_OR_RETURN(std::string scaled, e.node("Mul", {cubed, k}));
    FETAFIX_ASSIGN_OR_RETURN(std::string sum, e.node("Add", {x, scaled}));
    FETAFIX_ASSIGN_OR_RETURN(std::string c, e.constant({std::sqrt(2.0 / std::numbers::pi)}, {}));
    FETAFIX_ASSIGN_OR_RETURN(std::string arg, e.node("Mul", {sum, c}));
    FETAFIX_ASSIGN_OR_RETURN(inner, e.node("Tanh", {arg}));
  }
  FETAFIX_ASSIGN_OR_RETURN(std::string one, e.constant({1.0}, {}));
  FETAFIX_ASSIGN_OR_RETURN(std::string plus, e.node("Add", {inner, one}));
  FETAFIX_ASSIGN_OR_RETURN(std::string times, e.node("Mul", {x, plus}));
  FETAFIX_ASSIGN_OR_RETURN(std::string half, e.constant({0.5}, {}));
  return e.node("Mul", {times, half});
}

Result<std::string> emit_gated(Emitter& e, const std::string& x, const OpForm& s) {
  if (s.function == OpFunction::kHardSwish) {
    const double alpha = number(s, "alpha", 1.0 / 6), beta = number(s, "beta", 0.5);
    if (near(alpha, 1.0 / 6) && near(beta, 0.5) && e.opset() >= 14) return e.node("HardSwish", {x});
    FETAFIX_ASSIGN_OR_RETURN(std::string g, e.node("HardSigmoid", {x}, {Attr::f("alpha", float(alpha)),
                                                                         Attr::f("beta", float(beta))}));
    return e.node("Mul", {x, g});
  }
  const double beta = number(s, "beta", 1.0);  // swish
  std::string arg = x;
  if (!near(beta, 1.0)) {
    FETAFIX_ASSIGN_OR_RETURN(std::string b, e.constant({beta}, {}));
    FETAFIX_ASSIGN_OR_RETURN(arg, e.node("Mul", {x, b}));
  }
  FETAFIX_ASSIGN_OR_RETURN(std::string g, e.node("Sigmoid", {arg}));
  return e.node("Mul", {x, g});
}

Result<std::string> emit(Emitter& e, const std::string& x, const OpForm& s) {
  const bool attribute_form = s.function == OpFunction::kResize || s.function == OpFunction::kSoftmax;
  if (s.function != OpFunction::kClip && !attribute_form && !all_scalar(s))
    return make_error("per-channel parameters of {} cannot be written", localize::op_function_name(s.function));
  switch (s.function) {
    case OpFunction::kClip: return emit_clip(e, x, s);
    case OpFunction::kLeakyRelu: return e.node("LeakyRelu", {x}, {Attr::f("alpha", float(number(s, "alpha", 0.01)))});
    case OpFunction::kHardSigmoid:
      return e.node("HardSigmoid", {x}, {Attr::f("alpha", float(number(s, "alpha", 0.2))),
                                         Attr::f("beta", float(number(s, "beta", 0.5)))});
    case OpFunction::kHardSwish:
    case OpFunction::kSwish: return emit_gated(e, x, s);
    case OpFunction::kSigmoid: return e.node("Sigmoid", {x});
    case OpFunction::kGelu: return emit_gelu(e, x, mode(s, "approximation") == "tanh");
    case OpFunction::kPower: {
      FETAFIX_ASSIGN_OR_RETURN(std::string p, e.constant({number(s, "exponent", 1.0)}, {}));
      return e.node("Pow", {x, p});
    }
    case OpFunction::kResize:
    case OpFunction::kSoftmax: break;
  }
  return make_error("a {} cannot replace another form", localize::op_function_name(s.function));
}

Status replace_form(Planner& p, const OpForm& t, const OpForm& s) {
  auto before = model::GraphView::build(p.model().graph());
  if (!before.ok()) return before.error();
  if (before->is_graph_output(t.output))
    return make_error("'{}' is a graph output: its form cannot be replaced in place", t.output);
  const size_t last = *std::max_element(t.nodes.begin(), t.nodes.end());
  Emitter e(p, p.unique_name(t.output + "_fetafix_op"), static_cast<int64_t>(last) + 1);
  FETAFIX_ASSIGN_OR_RETURN(std::string y, emit(e, t.input, s));
  auto view = model::GraphView::build(p.model().graph());
  if (!view.ok()) return view.error();
  const std::set<size_t> old(t.nodes.begin(), t.nodes.end());  // before the inserts: indices unchanged
  std::vector<model::ValueUse> readers(view->consumers(t.output).begin(), view->consumers(t.output).end());
  for (const auto& use : readers)
    if (!old.count(use.node) && use.input_index >= 0)
      FETAFIX_TRY_STATUS(p.apply(model::Edit::set_node_input(view->node_name(use.node), use.input_index, y)));
  for (auto it = old.rbegin(); it != old.rend(); ++it)  // readers first
    FETAFIX_TRY_STATUS(p.apply(model::Edit::remove_node(p.node_name(*it))));
  return {};
}

}  // namespace

Result<OpRewritePlan> plan_op_rewrites(const onnx::ModelProto& target, const std::vector<OpRewriteRequest>& requests,
                                       const localize::OpFormOptions& options) {
  onnx::ModelProto scratch = target;
  Planner p(scratch);
  OpRewritePlan plan;
  for (const auto& r : requests) {
    auto view = model::GraphView::build(scratch.graph());
    if (!view.ok()) return view.error();
    auto t = localize::recognize_op_form(scratch, *view, r.target_output, options);
    if (t && !fully_known(t->input_shape) && fully_known(r.target_input_shape)) {  // observed at run time
      view->merge_observed_shapes({{t->input, r.target_input_shape}});
      t = localize::recognize_op_form(scratch, *view, r.target_output, options);
    }
    if (!t) return make_error("'{}': no recognized operator form produces it in the Target", r.target_output);
    const auto cmp = localize::compare_op_forms(r.source_form, *t, options);
    const std::string what = fmt::format("'{}' ({}): {} -> {}", t->node_names.back(), t->spelling, t->describe(),
                                         r.source_form.describe());
    if (cmp.same_function) {
      plan.descriptions.push_back(what + ": already the same function, no edit");
      continue;
    }
    const size_t edits_before = p.log().size();
    auto in_place = try_in_place(p, *t, r.source_form);
    Status st = in_place ? *in_place : replace_form(p, *t, r.source_form);
    if (!st.ok()) return make_error("'{}': {}", r.target_output, st.error().message);
    plan.descriptions.push_back(fmt::format("{}: {} ({} edits)", what, in_place ? "parameters set in place" : "form replaced",
                                            p.log().size() - edits_before));
  }
  plan.edits = p.log().edits();
  return plan;
}

}  // namespace fetafix::repair
