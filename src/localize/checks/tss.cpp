// TSS (paper §4.1.3): the structure (which logical axis sits where) of the tensors the first
// layers see, followed symbolically from the input, and of the tensors entering Flatten/Reshape,
// measured on one photo. Repairs correct the Transpose or axis, or insert one.
#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "localize/checks/check.h"
#include "localize/input_checks.h"
#include "model/attributes.h"
#include "model/graph.h"
#include "model/weights.h"
#include "runtime/session.h"

namespace fetafix::localize {
using nlohmann::json;

namespace {

// Layers that read axis 1 as channels and the axes after it as space: the first of them
// fixes the structure the network was trained on.
const std::set<std::string> kLayoutSensitiveOps{
    "Conv",        "ConvTranspose",      "ConvInteger",   "QLinearConv",   "MaxPool",     "AveragePool",
    "LpPool",      "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",  "BatchNormalization",
    "InstanceNormalization", "LRN",     "SpaceToDepth",  "DepthToSpace"};
// One data input, output with the same axes.
const std::set<std::string> kPassThroughOps{
    "Identity", "Cast",  "Relu",     "LeakyRelu", "Sigmoid",     "Tanh",          "Clip",    "Neg",
    "Abs",      "Sqrt",  "Exp",      "Log",       "Floor",       "Ceil",          "Round",   "Erf",
    "HardSigmoid", "HardSwish", "Elu", "Selu",    "Softplus",    "Reciprocal",    "Dropout", "QuantizeLinear",
    "DequantizeLinear", "Pad", "Resize", "Upsample"};
// Element-wise with broadcasting.
const std::set<std::string> kBroadcastOps{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"};
const std::set<std::string> kAxisOps{"Gather", "Unsqueeze", "Squeeze", "Concat", "Split", "Slice"};

struct Labelled {
  Axes axes;
  // Logical axes a scalar Gather or a Squeeze took out, most recent last: the next Unsqueeze
  // puts them back (Gather(c) -> Unsqueeze -> Concat is how per-channel normalisation is built).
  std::vector<std::string> removed;
};

// A node before the first layer whose attribute or input names axes.
struct AxisUse {
  size_t node = 0;
  std::string attribute;             // "axis" or "axes"
  std::vector<int64_t> values;       // as written
  Axes logical;                      // the logical axis each value refers to
};

struct Propagation {
  std::unordered_map<std::string, Labelled> labels;  // values computed from the input with known axes
  std::optional<size_t> endpoint;                    // first layout-sensitive node fed from the input
  std::optional<Axes> endpoint_axes;                 // what it sees; nullopt = could not follow
  std::vector<AxisUse> axis_uses;                    // topological order
};

std::optional<std::vector<int64_t>> constant_ints(const onnx::ModelProto& model, const std::string& value) {
  if (value.empty() || !model::is_weight(model, value)) return std::nullopt;
  auto t = model::get_weight(model, value);
  if (!t.ok()) return std::nullopt;
  std::vector<int64_t> out;
  if (t->dtype == DType::kInt64) {
    for (int64_t v : t->span<int64_t>()) out.push_back(v);
  } else if (t->dtype == DType::kInt32) {
    for (int32_t v : t->span<int32_t>()) out.push_back(v);
  } else {
    return std::nullopt;
  }
  return out;
}

std::optional<size_t> value_rank(const onnx::ModelProto& model, const model::GraphView& view, const std::string& v) {
  if (model::is_weight(model, v)) {
    auto info = model::find_weight(model, v);
    if (info) return info->shape.size();
  }
  if (auto s = view.shape(v)) return s->size();
  return std::nullopt;
}

std::optional<size_t> normalize_axis(int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) return std::nullopt;
  return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

// Axes named by an attribute (older opsets) or by a constant input (newer ones).
std::optional<std::vector<int64_t>> axes_of(const onnx::ModelProto& model, const onnx::NodeProto& node,
                                            int input_index) {
  if (model::find_attribute(node, "axes")) {
    auto a = model::get_ints(node, "axes");
    if (a.ok()) return *a;
    return std::nullopt;
  }
  if (node.input_size() > input_index) return constant_ints(model, node.input(input_index));
  return std::vector<int64_t>{};  // absent: the op's default
}

Propagation propagate(const onnx::ModelProto& model, const model::GraphView& view, const std::string& input,
                      const Axes& input_axes, const std::map<size_t, std::string>& overrides) {
  Propagation p;
  std::unordered_set<std::string> reached{input};
  p.labels[input] = Labelled{input_axes, {}};
  auto labelled = [&](const std::string& v) -> const Labelled* {
    auto it = p.labels.find(v);
    return it == p.labels.end() ? nullptr : &it->second;
  };
  // Where an override names a logical axis, use its position instead of the written one.
  auto axis_position = [&](size_t node, int64_t written, const Axes& axes) -> std::optional<size_t> {
    if (auto o = overrides.find(node); o != overrides.end()) {
      auto it = std::find(axes.begin(), axes.end(), o->second);
      if (it != axes.end()) return static_cast<size_t>(it - axes.begin());
    }
    return normalize_axis(written, axes.size());
  };

  for (size_t i : view.topological_order()) {
    const onnx::NodeProto& n = view.node(i);
    const bool any_reached =
        std::any_of(n.input().begin(), n.input().end(), [&](const std::string& v) { return reached.count(v) > 0; });
    if (!any_reached) continue;
    for (const auto& out : n.output()) reached.insert(out);
    const std::string& op = n.op_type();
    const Labelled* x = n.input_size() > 0 ? labelled(n.input(0)) : nullptr;
    if (kLayoutSensitiveOps.count(op) && n.input_size() > 0 && reached.count(n.input(0))) {
      p.endpoint = i;
      if (x) p.endpoint_axes = x->axes;
      break;
    }
    auto set_all = [&](const Labelled& l) {
      for (const auto& out : n.output())
        if (!out.empty()) p.labels[out] = l;
    };
    if (kPassThroughOps.count(op)) {
      if (x) set_all(*x);
      continue;
    }
    if (kBroadcastOps.count(op)) {
      const Labelled* first = nullptr;
      bool ok = true;
      size_t max_rank = 0;
      for (const auto& v : n.input()) {
        if (const Labelled* l = labelled(v)) {
          if (first && first->axes != l->axes) ok = false;
          if (!first) first = l;
          max_rank = std::max(max_rank, l->axes.size());
        } else if (reached.count(v)) {
          ok = false;  // a branch from the input whose axes are unknown
        } else if (auto r = value_rank(model, view, v)) {
          max_rank = std::max(max_rank, *r);
        }
      }
      if (ok && first && first->axes.size() == max_rank) set_all(*first);
      continue;
    }
    if (op == "Transpose" && x) {
      std::vector<int64_t> perm(x->axes.size());
      std::iota(perm.rbegin(), perm.rend(), 0);  // ONNX default: reverse the axes
      if (model::find_attribute(n, "perm")) {
        auto a = model::get_ints(n, "perm");
        if (!a.ok() || a->size() != x->axes.size()) continue;
        perm = *a;
      }
      Labelled out{Axes(perm.size()), x->removed};
      bool valid = true;
      for (size_t k = 0; k < perm.size(); ++k) {
        auto a = normalize_axis(perm[k], x->axes.size());
        if (!a) valid = false;
        else out.axes[k] = x->axes[*a];
      }
      if (valid) set_all(out);
      continue;
    }
    if (!kAxisOps.count(op) || !x) continue;  // Flatten, Reshape, anything else: axes unknown from here

    if (op == "Gather" || op == "Concat" || op == "Split") {
      auto written = model::get_int_or(n, "axis", op == "Concat" ? 1 : 0);
      if (!written.ok() || (op == "Concat" && !model::find_attribute(n, "axis"))) continue;
      auto a = axis_position(i, *written, x->axes);
      if (!a) continue;
      p.axis_uses.push_back(AxisUse{i, "axis", {*written}, {x->axes[*a]}});
      if (op == "Gather") {
        auto idx_rank = n.input_size() > 1 ? value_rank(model, view, n.input(1)) : std::nullopt;
        if (!idx_rank || *idx_rank > 1) continue;
        Labelled out = *x;
        if (*idx_rank == 0) {
          out.removed.push_back(out.axes[*a]);
          out.axes.erase(out.axes.begin() + static_cast<std::ptrdiff_t>(*a));
        }
        set_all(out);
      } else if (op == "Concat") {
        bool same = true;
        for (const auto& v : n.input())
          if (reached.count(v) && (!labelled(v) || labelled(v)->axes != x->axes)) same = false;
        if (same) set_all(*x);
      } else {
        set_all(*x);
      }
      continue;
    }
    if (op == "Slice") {
      auto axes = model::find_attribute(n, "axes") ? axes_of(model, n, -1) : axes_of(model, n, 3);
      if (!axes) continue;
      AxisUse use{i, "axes", *axes, {}};
      if (axes->empty())  // default: the leading axes, one per start
        use.logical.push_back("(default)");
      for (int64_t w : *axes) {
        auto a = normalize_axis(w, x->axes.size());
        use.logical.push_back(a ? x->axes[*a] : "?");
      }
      p.axis_uses.push_back(std::move(use));
      set_all(*x);
      continue;
    }
    if (op == "Squeeze") {
      auto axes = axes_of(model, n, 1);
      if (!axes || axes->empty()) continue;  // squeezing every unit dim needs shapes: stop following
      Labelled out = *x;
      AxisUse use{i, "axes", *axes, {}};
      std::vector<size_t> positions;
      for (int64_t w : *axes) {
        auto a = (axes->size() == 1) ? axis_position(i, w, x->axes) : normalize_axis(w, x->axes.size());
        if (!a) break;
        positions.push_back(*a);
        use.logical.push_back(x->axes[*a]);
      }
      if (positions.size() != axes->size()) continue;
      p.axis_uses.push_back(use);
      std::sort(positions.rbegin(), positions.rend());
      for (size_t pos : positions) {
        out.removed.push_back(out.axes[pos]);
        out.axes.erase(out.axes.begin() + static_cast<std::ptrdiff_t>(pos));
      }
      set_all(out);
      continue;
    }
    if (op == "Unsqueeze") {
      auto axes = axes_of(model, n, 1);
      if (!axes || axes->empty()) continue;
      const size_t out_rank = x->axes.size() + axes->size();
      std::vector<size_t> positions;
      for (int64_t w : *axes)
        if (auto a = normalize_axis(w, out_rank)) positions.push_back(*a);
      if (positions.size() != axes->size()) continue;
      std::sort(positions.begin(), positions.end());
      Labelled out = *x;
      AxisUse use{i, "axes", *axes, {}};
      for (size_t pos : positions) {
        std::string label = "1";  // a new unit axis
        if (!out.removed.empty()) {
          label = out.removed.back();
          out.removed.pop_back();
        }
        out.axes.insert(out.axes.begin() + static_cast<std::ptrdiff_t>(pos), label);
        use.logical.push_back(label);
      }
      p.axis_uses.push_back(std::move(use));
      set_all(out);
      continue;
    }
  }
  return p;
}

std::unordered_set<size_t> ancestors(const model::GraphView& view, size_t node) {
  std::unordered_set<size_t> seen;
  std::deque<size_t> todo{node};
  while (!todo.empty()) {
    size_t n = todo.front();
    todo.pop_front();
    for (size_t pred : view.node_predecessors(n))
      if (seen.insert(pred).second) todo.push_back(pred);
  }
  return seen;
}

// p such that transpose(from, p) == to; nullopt when `to` is not a permutation of `from`.
std::optional<std::vector<int64_t>> perm_between(const Axes& from, const Axes& to) {
  if (from.size() != to.size()) return std::nullopt;
  std::vector<int64_t> perm;
  std::vector<bool> used(from.size(), false);
  for (const auto& label : to) {
    size_t k = 0;
    while (k < from.size() && (used[k] || from[k] != label)) ++k;
    if (k == from.size()) return std::nullopt;
    used[k] = true;
    perm.push_back(static_cast<int64_t>(k));
  }
  return perm;
}

std::string axes_text(const Axes& a) { return fmt::format("[{}]", fmt::join(a, ",")); }

struct InputInfo {
  std::string name;
  std::vector<int64_t> shape;  // -1 dynamic
  DType dtype = DType::kUndefined;
};

Result<InputInfo> first_input(const model::GraphView& view, const std::string& label) {
  if (view.real_inputs().empty()) return make_error("{}: the graph has no input to feed", label);
  InputInfo in;
  in.name = view.real_inputs().front();
  in.shape = view.shape(in.name).value_or(std::vector<int64_t>{});
  in.dtype = view.dtype(in.name);
  return in;
}

std::optional<Axes> input_axes(const InputInfo& in, std::optional<data::Layout> layout) {
  if (in.shape.size() != 4) return std::nullopt;
  if (!layout) {
    if (in.shape[1] == 3) layout = data::Layout::kNCHW;
    else if (in.shape[3] == 3) layout = data::Layout::kNHWC;
    else return std::nullopt;
  }
  return *layout == data::Layout::kNCHW ? Axes{"N", "C", "H", "W"} : Axes{"N", "H", "W", "C"};
}

// ---- flatten structure -----------------------------------------------------------------------

bool is_flatten(const onnx::NodeProto& n) { return n.op_type() == "Flatten" || n.op_type() == "Reshape"; }

std::vector<size_t> flatten_nodes(const model::GraphView& view) {
  std::vector<size_t> out;
  for (size_t i : view.topological_order())
    if (is_flatten(view.node(i)) && view.reached_from_inputs(i)) out.push_back(i);
  return out;
}

std::optional<int64_t> observed_numel(const std::map<std::string, runtime::ValueInfo>& shapes, const std::string& v) {
  auto it = shapes.find(v);
  if (it == shapes.end()) return std::nullopt;
  for (int64_t d : it->second.shape)
    if (d < 0) return std::nullopt;
  return shape_numel(it->second.shape);
}

Result<Tensor> sample_input(const compare::ModelSide& side, const model::GraphView& view, const data::Image& image) {
  FETAFIX_ASSIGN_OR_RETURN(const InputInfo in, first_input(view, side.label));
  auto bound = data::bind_preset_to_input(side.preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return make_error("{}: {}", side.label, bound.error().message);
  Tensor one = data::preprocess(image, *bound);
  const int64_t batch = in.shape.empty() ? 1 : in.shape[0];
  if (batch <= 1) return one;
  Tensor many(one.dtype, one.shape);  // a fixed batch > 1: repeat the image
  many.shape[0] = batch;
  many.bytes.resize(one.bytes.size() * static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b)
    std::copy(one.bytes.begin(), one.bytes.end(), many.bytes.begin() + static_cast<std::ptrdiff_t>(b * one.bytes.size()));
  return many;
}

// The values named, from one run of the model on `input`.
Result<std::map<std::string, Tensor>> capture_values(const compare::ModelSide& side, const Tensor& input,
                                                     const std::vector<std::string>& names, int threads) {
  runtime::SessionOptions so;
  so.threads = threads;
  so.capture = names;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(*side.model, so, side.label));
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session->run({input}));
  std::map<std::string, Tensor> values;
  for (size_t i = 0; i < outputs.size(); ++i) values[session->outputs()[i].name] = std::move(outputs[i]);
  return values;
}

std::vector<float> transpose_values(const std::vector<float>& v, const std::vector<int64_t>& shape,
                                    const std::vector<int64_t>& perm) {
  const size_t r = shape.size();
  std::vector<int64_t> strides(r, 1);
  for (size_t k = r; k-- > 1;) strides[k - 1] = strides[k] * shape[k];
  std::vector<int64_t> out_shape(r);
  for (size_t k = 0; k < r; ++k) out_shape[k] = shape[static_cast<size_t>(perm[k])];
  std::vector<float> out(v.size());
  std::vector<int64_t> idx(r, 0);
  for (size_t o = 0; o < out.size(); ++o) {
    int64_t src = 0;
    for (size_t k = 0; k < r; ++k) src += idx[k] * strides[static_cast<size_t>(perm[k])];
    out[o] = v[static_cast<size_t>(src)];
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// max |a - b| / max |b|: 0 for equal tensors, ~1 or more for unrelated ones.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  return diff / std::max(scale, 1e-12);
}

// True when `perm` keeps the relative order of the dims larger than 1: the element order
// in memory is then the same and flattening gives the same vector.
bool keeps_element_order(const std::vector<int64_t>& target_shape, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  for (int64_t p : perm) {
    if (target_shape[static_cast<size_t>(p)] == 1) continue;
    if (p < last) return false;
    last = p;
  }
  return true;
}

struct FlattenPair {
  size_t source = 0, target = 0;
  std::string paired_by;
};

}  // namespace

Result<std::vector<Finding>> check_input_structure(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                   const InputLayouts& layouts) {
  FETAFIX_ASSIGN_OR_RETURN(auto src_view, model::GraphView::build(source.graph()));
  FETAFIX_ASSIGN_OR_RETURN(auto tgt_view, model::GraphView::build(target.graph()));
  FETAFIX_ASSIGN_OR_RETURN(const InputInfo src_in, first_input(src_view, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(const InputInfo tgt_in, first_input(tgt_view, "Target"));
  const auto src_axes = input_axes(src_in, layouts.source);
  const auto tgt_axes = input_axes(tgt_in, layouts.target);
  if (!src_axes || !tgt_axes) return std::vector<Finding>{};  // not an image input we can label

  const Propagation src = propagate(source, src_view, src_in.name, *src_axes, {});
  const Propagation tgt = propagate(target, tgt_view, tgt_in.name, *tgt_axes, {});
  if (!src.endpoint_axes || !tgt.endpoint_axes) return std::vector<Finding>{};  // could not follow both

  // Axis uses that feed the first layer, paired with the Source's by op type and order.
  auto feeding = [](const Propagation& p, const model::GraphView& view) {
    const auto before = ancestors(view, *p.endpoint);
    std::vector<AxisUse> uses;
    for (const auto& u : p.axis_uses)
      if (before.count(u.node)) uses.push_back(u);
    return uses;
  };
  const auto src_uses = feeding(src, src_view);
  const auto tgt_uses = feeding(tgt, tgt_view);
  std::map<std::string, size_t> seen_per_op;
  struct Tied {
    const AxisUse* target;
    const AxisUse* source;  // may be null
    bool mismatch;
  };
  std::vector<Tied> tied;
  std::map<size_t, std::string> overrides;
  for (const auto& u : tgt_uses) {
    const std::string& op = tgt_view.node(u.node).op_type();
    size_t k = seen_per_op[op]++;
    const AxisUse* match = nullptr;
    for (const auto& s : src_uses)
      if (src_view.node(s.node).op_type() == op && k-- == 0) {
        match = &s;
        break;
      }
    const bool mismatch = match && match->logical != u.logical;
    tied.push_back({&u, match, mismatch});
    if (mismatch && op != "Unsqueeze" && u.logical.size() == 1 && match->logical.size() == 1)
      overrides[u.node] = match->logical[0];
  }
  const bool structure_differs = *src.endpoint_axes != *tgt.endpoint_axes;
  const bool any_mismatch = std::any_of(tied.begin(), tied.end(), [](const Tied& t) { return t.mismatch; });
  if (!structure_differs && !any_mismatch) return std::vector<Finding>{};

  // Axes as they would be with the mismatched axis attributes pointing at the Source's logical axes.
  const Propagation fixed = propagate(target, tgt_view, tgt_in.name, *tgt_axes, overrides);
  auto fixed_axes_of = [&](const std::string& v) -> std::optional<Axes> {
    auto it = fixed.labels.find(v);
    if (it == fixed.labels.end()) return std::nullopt;
    return it->second.axes;
  };

  // The last Transpose on the way to the first layer, through ops that keep the axes.
  const onnx::NodeProto& tgt_endpoint = tgt_view.node(*tgt.endpoint);
  std::optional<size_t> transpose;
  std::string v = tgt_endpoint.input(0);
  while (auto prod = tgt_view.producer(v)) {
    const onnx::NodeProto& n = tgt_view.node(*prod);
    if (n.op_type() == "Transpose") {
      transpose = *prod;
      break;
    }
    if (!kPassThroughOps.count(n.op_type()) && !kBroadcastOps.count(n.op_type())) break;
    std::string next;
    for (const auto& in : n.input())
      if (tgt.labels.count(in)) {
        next = in;
        break;
      }
    if (next.empty()) break;
    v = next;
  }

  InputStructureEvidence e;
  std::string first_mismatch;
  std::vector<std::string> to_change;  // tied nodes whose own axis is wrong, for the summary
  std::string first_to_change;
  for (const auto& t : tied) {
    const onnx::NodeProto& n = tgt_view.node(t.target->node);
    InputStructureEvidence::TiedNode tn;
    tn.node = tgt_view.node_name(t.target->node);
    tn.op = n.op_type();
    tn.attribute = t.target->attribute;
    tn.value = t.target->values;
    tn.logical_axes = t.target->logical;
    tn.mismatch = t.mismatch;
    if (t.source) {
      tn.source_node = src_view.node_name(t.source->node);
      tn.source_logical_axes = t.source->logical;
    }
    if (t.mismatch) {
      if (first_mismatch.empty()) first_mismatch = tn.node;
      // The value that refers to the Source's logical axis once the mismatched axes upstream
      // are repaired too; a node may mismatch only because of those (an Unsqueeze re-inserting
      // what a wrong Gather removed), and then needs no change of its own.
      if (auto o = overrides.find(t.target->node); o != overrides.end()) {
        if (auto a = fixed_axes_of(n.input(0))) {
          auto it = std::find(a->begin(), a->end(), o->second);
          if (it != a->end()) {
            const int64_t c = it - a->begin();
            tn.corrected_value = c;
            tn.needs_change = normalize_axis(t.target->values[0], a->size()) != static_cast<size_t>(c);
          }
        }
      } else {
        auto after = std::find_if(fixed.axis_uses.begin(), fixed.axis_uses.end(),
                                  [&](const AxisUse& u) { return u.node == t.target->node; });
        tn.needs_change = after == fixed.axis_uses.end() || after->logical != t.source->logical;
      }
      if (tn.needs_change && first_to_change.empty()) first_to_change = tn.node;
      if (tn.needs_change)
        to_change.push_back(fmt::format("{} '{}' ({} {} -> {})", n.op_type(), tn.node, tn.attribute,
                                        json(tn.value).dump(),
                                        tn.corrected_value ? std::to_string(*tn.corrected_value) : std::string("?")));
    }
    e.tied_nodes.push_back(std::move(tn));
  }

  std::string transpose_text;
  if (transpose) {
    const onnx::NodeProto& n = tgt_view.node(*transpose);
    auto perm = model::get_ints(n, "perm");
    InputStructureEvidence::Transpose tr;
    tr.node = tgt_view.node_name(*transpose);
    if (perm.ok()) tr.perm = *perm;
    tr.input_structure = fixed_axes_of(n.input(0));
    if (tr.input_structure) tr.correct_perm = perm_between(*tr.input_structure, *src.endpoint_axes);
    tr.needs_change = tr.correct_perm && tr.correct_perm != tr.perm;
    if (tr.needs_change)
      transpose_text = fmt::format("Transpose '{}' has perm {}, should be {}", tr.node,
                                   tr.perm ? json(*tr.perm).dump() : "default", json(*tr.correct_perm).dump());
    e.transpose = std::move(tr);
  }
  if (auto a = fixed_axes_of(tgt_endpoint.input(0))) e.perm_to_source = perm_between(*a, *src.endpoint_axes);

  std::string target_node;
  // The node a repair edits first: a wrong Transpose, else the first node with a wrong axis.
  if (e.transpose && e.transpose->needs_change) target_node = e.transpose->node;
  else if (!first_to_change.empty()) target_node = first_to_change;
  else if (e.transpose) target_node = e.transpose->node;
  else target_node = first_mismatch.empty() ? tgt_view.node_name(*tgt.endpoint) : first_mismatch;
  const std::string layer_text = fmt::format("{} '{}'", tgt_endpoint.op_type(), tgt_view.node_name(*tgt.endpoint));
  std::vector<std::string> causes;
  if (!transpose_text.empty()) causes.push_back(transpose_text);
  if (!to_change.empty())
    causes.push_back(fmt::format("{} node(s) before it take another logical axis than in Source: {}", to_change.size(),
                                 fmt::join(to_change, ", ")));
  std::string summary = structure_differs ? fmt::format("{} sees {} in Target, {} in Source", layer_text,
                                                        axes_text(*tgt.endpoint_axes), axes_text(*src.endpoint_axes))
                                          : fmt::format("{} sees {} in both", layer_text, axes_text(*tgt.endpoint_axes));
  if (!causes.empty()) summary += fmt::format(": {}", fmt::join(causes, "; "));
  else if (!structure_differs) summary += fmt::format(", but '{}' takes another logical axis", first_mismatch);
  e.source_input = src_in.name;
  e.target_input = tgt_in.name;
  e.source_input_structure = *src_axes;
  e.target_input_structure = *tgt_axes;
  e.source_layer = src_view.node_name(*src.endpoint);
  e.target_layer = tgt_view.node_name(*tgt.endpoint);
  e.source_structure = *src.endpoint_axes;
  e.target_structure = *tgt.endpoint_axes;
  e.structure_differs = structure_differs;
  std::string source_node = e.source_layer;
  return std::vector<Finding>{make_finding(std::move(e), std::move(source_node), std::move(target_node), std::move(summary))};
}

Result<std::vector<Finding>> check_flatten_structure(const compare::ModelSide& source,
                                                     const compare::ModelSide& target, const data::Image& sample,
                                                     const std::vector<match::NodeMatch>& matches,
                                                     const FlattenCheckOptions& options) {
  if (!source.model || !target.model) return make_error("check_flatten_structure: a model is missing");
  FETAFIX_ASSIGN_OR_RETURN(auto src_view, model::GraphView::build(source.model->graph()));
  FETAFIX_ASSIGN_OR_RETURN(auto tgt_view, model::GraphView::build(target.model->graph()));
  const auto src_flat = flatten_nodes(src_view);
  const auto tgt_flat = flatten_nodes(tgt_view);
  if (src_flat.empty() || tgt_flat.empty()) return std::vector<Finding>{};

  FETAFIX_ASSIGN_OR_RETURN(const Tensor src_input, sample_input(source, src_view, sample));
  FETAFIX_ASSIGN_OR_RETURN(const Tensor tgt_input, sample_input(target, tgt_view, sample));
  FETAFIX_ASSIGN_OR_RETURN(auto src_shapes,
                           runtime::observe_value_shapes(*source.model, {src_input}, options.threads, source.label));
  FETAFIX_ASSIGN_OR_RETURN(auto tgt_shapes,
                           runtime::observe_value_shapes(*target.model, {tgt_input}, options.threads, target.label));
  auto out_numel = [](const auto& shapes, const model::GraphView& view, size_t node) {
    return observed_numel(shapes, view.node(node).output(0));
  };

  // Pair each Target Flatten/Reshape with a Source one.
  std::unordered_map<std::string, std::string> target_to_source;
  for (const auto& m : matches) target_to_source[m.target_node] = m.source_node;
  std::vector<FlattenPair> pairs;
  std::set<size_t> used;
  size_t next_by_order = 0;
  for (size_t tf : tgt_flat) {
    const auto count = out_numel(tgt_shapes, tgt_view, tf);
    if (!count) continue;
    std::optional<FlattenPair> pair;
    // The nearest matched core layer upstream, then the first Flatten/Reshape after its partner.
    std::deque<size_t> todo{tf};
    std::set<size_t> seen{tf};
    std::optional<size_t> anchor;
    std::string anchor_name;
    while (!todo.empty() && !anchor && !target_to_source.empty()) {
      size_t n = todo.front();
      todo.pop_front();
      for (size_t pred : tgt_view.node_predecessors(n)) {
        if (!seen.insert(pred).second) continue;
        auto it = target_to_source.find(tgt_view.node_name(pred));
        if (it != target_to_source.end()) {
          anchor = src_view.find_node(it->second);
          anchor_name = tgt_view.node_name(pred);
          if (anchor) break;
        }
        todo.push_back(pred);
      }
    }
    if (anchor) {
      std::set<size_t> after;
      std::deque<size_t> fwd{*anchor};
      while (!fwd.empty()) {
        size_t n = fwd.front();
        fwd.pop_front();
        for (size_t s : src_view.node_successors(n))
          if (after.insert(s).second) fwd.push_back(s);
      }
      for (size_t sf : src_flat)
        if (after.count(sf) && !used.count(sf) && out_numel(src_shapes, src_view, sf) == count) {
          pair = FlattenPair{sf, tf, "match:" + anchor_name};
          break;
        }
    }
    if (!pair)
      for (size_t k = next_by_order; k < src_flat.size(); ++k)
        if (!used.count(src_flat[k]) && out_numel(src_shapes, src_view, src_flat[k]) == count) {
          pair = FlattenPair{src_flat[k], tf, "order"};
          next_by_order = k + 1;
          break;
        }
    if (!pair) continue;
    used.insert(pair->source);
    pairs.push_back(*pair);
  }

  // Pairs whose input shapes are a permutation of each other, with another element order.
  struct Suspect {
    FlattenPair pair;
    std::vector<int64_t> src_shape, tgt_shape;
    std::vector<std::vector<int64_t>> candidates;  // perms p: transpose(target, p) has the Source's shape
  };
  std::vector<Suspect> suspects;
  for (const auto& pr : pairs) {
    const auto& s_in = src_view.node(pr.source).input(0);
    const auto& t_in = tgt_view.node(pr.target).input(0);
    auto si = src_shapes.find(s_in), ti = tgt_shapes.find(t_in);
    if (si == src_shapes.end() || ti == tgt_shapes.end()) continue;
    const auto& ss = si->second.shape;
    const auto& ts = ti->second.shape;
    if (ss == ts || ss.size() != ts.size() || ss.size() > 6) continue;
    if (observed_numel(src_shapes, s_in) != observed_numel(tgt_shapes, t_in)) continue;
    Suspect sus{pr, ss, ts, {}};
    std::vector<int64_t> perm(ss.size());
    std::iota(perm.begin(), perm.end(), 0);
    bool same_order = false;
    do {  // lexicographic order: the first candidate keeps equal-sized dims in their order
      bool fits = true;
      for (size_t k = 0; k < perm.size() && fits; ++k) fits = ts[static_cast<size_t>(perm[k])] == ss[k];
      if (!fits) continue;
      if (keeps_element_order(ts, perm)) same_order = true;
      sus.candidates.push_back(perm);
    } while (std::next_permutation(perm.begin(), perm.end()));
    if (same_order || sus.candidates.empty()) continue;  // same element order, or not a permutation
    suspects.push_back(std::move(sus));
  }
  if (suspects.empty()) return std::vector<Finding>{};

  std::vector<std::string> src_names, tgt_names;
  for (const auto& s : suspects) {
    src_names.push_back(src_view.node(s.pair.source).input(0));
    src_names.push_back(src_view.node(s.pair.source).output(0));
    tgt_names.push_back(tgt_view.node(s.pair.target).input(0));
    tgt_names.push_back(tgt_view.node(s.pair.target).output(0));
  }
  FETAFIX_ASSIGN_OR_RETURN(auto src_values, capture_values(source, src_input, src_names, options.threads));
  FETAFIX_ASSIGN_OR_RETURN(auto tgt_values, capture_values(target, tgt_input, tgt_names, options.threads));

  std::vector<Finding> findings;
  for (const auto& s : suspects) {
    const auto& sn = src_view.node(s.pair.source);
    const auto& tn = tgt_view.node(s.pair.target);
    const std::vector<float> s_in = src_values.at(sn.input(0)).to_float();
    const std::vector<float> t_in = tgt_values.at(tn.input(0)).to_float();
    const double output_error =
        relative_error(tgt_values.at(tn.output(0)).to_float(), src_values.at(sn.output(0)).to_float());
    if (output_error <= options.tolerance) continue;  // flattened values agree: the order is the same

    size_t best = 0;
    std::vector<double> errors;
    for (size_t c = 0; c < s.candidates.size(); ++c) {
      errors.push_back(relative_error(transpose_values(t_in, s.tgt_shape, s.candidates[c]), s_in));
      if (errors[c] < errors[best]) best = c;
    }
    std::string basis = "stable_order";
    size_t chosen = 0;
    if (errors[best] <= options.tolerance) {
      basis = "values";
      chosen = best;
    } else if (s.candidates.size() == 1) {
      basis = "shape";
    }
    const auto& perm = s.candidates[chosen];
    std::vector<int64_t> structure(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) structure[static_cast<size_t>(perm[k])] = static_cast<int64_t>(k);

    FlattenStructureEvidence e;
    e.source_op = sn.op_type();
    e.target_op = tn.op_type();
    e.source_value = sn.input(0);
    e.target_value = tn.input(0);
    e.source_shape = s.src_shape;
    e.target_shape = s.tgt_shape;
    e.perm_to_source = perm;
    e.target_structure = structure;
    e.perm_basis = basis;
    e.candidate_perms = s.candidates;
    e.value_error = errors[chosen];
    e.output_error = output_error;
    e.paired_by = s.pair.paired_by;
    const std::string source_node = src_view.node_name(s.pair.source), target_node = tgt_view.node_name(s.pair.target);
    std::string summary = fmt::format(
        "{} '{}' flattens {} in Target, {} in Source ({} '{}'): same {} elements in another order; Transpose perm {} "
        "before it gives the Source's",
        tn.op_type(), target_node, shape_to_string(s.tgt_shape), shape_to_string(s.src_shape), sn.op_type(),
        source_node, shape_numel(s.src_shape), json(perm).dump());
    Finding f = make_finding(std::move(e), source_node, target_node, std::move(summary));
    findings.push_back(std::move(f));
  }
  return findings;
}

namespace {
template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

json InputStructureEvidence::to_json() const {
  json tied = json::array();
  for (const auto& t : tied_nodes) {
    json j{{"node", t.node},
           {"op", t.op},
           {"attribute", t.attribute},
           {"value", t.value},
           {"logical_axes", t.logical_axes},
           {"mismatch", t.mismatch},
           {"source_node", optional_json(t.source_node)},
           {"source_logical_axes", optional_json(t.source_logical_axes)}};
    if (t.mismatch) {
      j["corrected_value"] = optional_json(t.corrected_value);
      j["needs_change"] = t.needs_change;
    }
    tied.push_back(std::move(j));
  }
  json tr = nullptr;
  if (transpose)
    tr = json{{"node", transpose->node},
              {"perm", optional_json(transpose->perm)},
              {"input_structure", optional_json(transpose->input_structure)},
              {"correct_perm", optional_json(transpose->correct_perm)},
              {"needs_change", transpose->needs_change}};
  return json{{"source_input", source_input},
              {"target_input", target_input},
              {"source_input_structure", source_input_structure},
              {"target_input_structure", target_input_structure},
              {"source_layer", source_layer},
              {"target_layer", target_layer},
              {"source_structure", source_structure},
              {"target_structure", target_structure},
              {"structure_differs", structure_differs},
              {"transpose", std::move(tr)},
              {"perm_to_source", optional_json(perm_to_source)},
              {"tied_nodes", std::move(tied)}};
}

json FlattenStructureEvidence::to_json() const {
  return json{{"source_op", source_op},
              {"target_op", target_op},
              {"source_value", source_value},
              {"target_value", target_value},
              {"source_shape", source_shape},
              {"target_shape", target_shape},
              {"perm_to_source", perm_to_source},
              {"target_structure", target_structure},
              {"perm_basis", perm_basis},
              {"candidate_perms", candidate_perms},
              {"value_error", value_error},
              {"output_error", output_error},
              {"paired_by", paired_by}};
}

// The structure the bound presets give the inputs; no model is run.
Result<std::vector<Finding>> InputStructureEvidence::run(const CheckContext& c) {
  return check_input_structure(*c.source.model, *c.target.model,
                               {c.detection.source_preset.layout, c.detection.target_preset.layout});
}

// Each model run once on the first usable photo, with the detection's presets. Samples that are
// not photos fed to one image input: skipped, with a note.
Result<std::vector<Finding>> FlattenStructureEvidence::run(const CheckContext& c) {
  if (c.sample_image == nullptr) {
    c.notes->push_back("flatten structure check skipped: it runs the models on one photo, and these samples are not "
                       "images fed to a single input");
    return std::vector<Finding>{};
  }
  compare::ModelSide source = c.source, target = c.target;
  source.preset = c.detection.source_preset;
  target.preset = c.detection.target_preset;
  FlattenCheckOptions options;
  options.threads = c.options.compare.threads;
  return check_flatten_structure(source, target, *c.sample_image, c.matching->pairs, options);
}

}  // namespace fetafix::localize
