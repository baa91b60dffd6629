// LH: layer hyperparameters a converter gets wrong: pads dropped on Conv/MaxPool (onnxmltools
// #716), strides/dilations/epsilon changed, a Clip's upper bound lost (ReLU6 become ReLU), an
// activation computing another function (a port's operator substitution).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "inject/injection_context.h"
#include "localize/op_forms.h"
#include "model/attributes.h"
#include "model/weights.h"
#include "repair/op_rewrite.h"

namespace fetafix::inject::detail {
namespace {

using nlohmann::json;

bool op_is(const onnx::NodeProto& n, std::initializer_list<std::string_view> ops) {
  return n.domain().empty() && std::find(ops.begin(), ops.end(), n.op_type()) != ops.end();
}

bool has_nonzero_pads(const onnx::NodeProto& n) {
  auto pads = model::get_ints(n, "pads");
  return pads.ok() && std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p != 0; });
}

json ints_or_null(const onnx::NodeProto& n, const std::string& name) {
  auto v = model::get_ints(n, name);
  return v.ok() ? json(*v) : json(nullptr);
}

// strides=N / dilations=N: every spatial dim set to N.
Result<Injected> set_spatial_ints(Injection& in, const std::string& attribute,
                                  std::initializer_list<std::string_view> ops) {
  if (in.spec().value.empty()) return make_error("'{}' needs a value, e.g. {}=2", attribute, attribute);
  FETAFIX_ASSIGN_OR_RETURN(int64_t n, parse_int(in.spec().value, attribute));
  if (n < 1) return make_error("{} must be at least 1, not {}", attribute, n);
  auto eligible = [&](const onnx::NodeProto& node) {
    if (!op_is(node, ops) || spatial_rank(in.model(), node) == 0) return false;
    const auto current = model::get_ints(node, attribute);
    const std::vector<int64_t> wanted(static_cast<size_t>(spatial_rank(in.model(), node)), n);
    return current.ok() ? *current != wanted : n != 1;  // absent means all 1
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible,
                                                         fmt::format("{} whose {} are not all {}",
                                                                     fmt::join(ops, "/"), attribute, n),
                                                         DefaultNodes::kFirst));
  Injected out;
  out.details["changes"] = json::array();
  for (const auto& h : handles) {
    const auto& node = in.node(h);
    const std::string name = in.node_name(h);
    json change = {{"node", name}, {"attribute", attribute}, {"old", ints_or_null(node, attribute)}};
    const std::vector<int64_t> wanted(static_cast<size_t>(spatial_rank(in.model(), node)), n);
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_attribute(name, Attr::ints(attribute, wanted).proto)));
    change["new"] = wanted;
    out.details["changes"].push_back(change);
    out.node_handles.push_back(h);
  }
  out.description = fmt::format("{} set to {} on {} node(s)", attribute, n, handles.size());
  return out;
}

Result<Injected> drop_pads(Injection& in) {
  if (!in.spec().value.empty()) return make_error("'drop-pads' takes no value");
  auto eligible = [](const onnx::NodeProto& n) {
    return op_is(n, {"Conv", "ConvTranspose", "MaxPool", "AveragePool"}) && has_nonzero_pads(n);
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "Conv/ConvTranspose/MaxPool/AveragePool with non-zero pads",
                                                         DefaultNodes::kFirst));
  Injected out;
  out.details["changes"] = json::array();
  for (const auto& h : handles) {
    const std::string name = in.node_name(h);
    out.details["changes"].push_back(
        {{"node", name}, {"attribute", "pads"}, {"old", ints_or_null(in.node(h), "pads")}, {"new", nullptr}});
    FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_attribute(name, "pads")));
    out.node_handles.push_back(h);
  }
  out.description = fmt::format("pads removed from {} node(s)", handles.size());
  return out;
}

Result<Injected> set_epsilon(Injection& in) {
  if (in.spec().value.empty()) return make_error("'epsilon' needs a value, e.g. epsilon=0.01");
  FETAFIX_ASSIGN_OR_RETURN(double value, parse_double(in.spec().value, "epsilon"));
  if (!(value >= 0) || !std::isfinite(value)) return make_error("epsilon must be a finite number >= 0");
  const float eps = static_cast<float>(value);
  auto eligible = [&](const onnx::NodeProto& n) {
    if (!op_is(n, {"BatchNormalization", "InstanceNormalization", "LayerNormalization"})) return false;
    auto current = model::get_float_or(n, "epsilon", 1e-5f);
    return current.ok() && *current != eps;
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles,
                           in.select_nodes(eligible, fmt::format("normalization node whose epsilon is not {}", eps),
                                           DefaultNodes::kFirst));
  Injected out;
  out.details["changes"] = json::array();
  for (const auto& h : handles) {
    const std::string name = in.node_name(h);
    out.details["changes"].push_back({{"node", name},
                                      {"attribute", "epsilon"},
                                      {"old", model::get_float_or(in.node(h), "epsilon", 1e-5f).value()},
                                      {"new", eps}});
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_attribute(name, Attr::f("epsilon", eps).proto)));
    out.node_handles.push_back(h);
  }
  out.description = fmt::format("epsilon set to {} on {} node(s)", eps, handles.size());
  return out;
}

Result<Injected> remove_clip_max(Injection& in) {
  if (!in.spec().value.empty()) return make_error("'clip-max-removed' takes no value");
  auto eligible = [](const onnx::NodeProto& n) {
    if (!op_is(n, {"Clip"})) return false;
    return model::find_attribute(n, "max") != nullptr || (n.input_size() > 2 && !n.input(2).empty());
  };
  FETAFIX_ASSIGN_OR_RETURN(auto handles, in.select_nodes(eligible, "Clip with a max", DefaultNodes::kFirst));
  Injected out;
  out.details["changes"] = json::array();
  for (const auto& h : handles) {
    const std::string name = in.node_name(h);
    const auto& node = in.node(h);
    if (model::find_attribute(node, "max")) {  // opset < 11: an attribute
      out.details["changes"].push_back({{"node", name}, {"attribute", "max"}, {"old", *model::get_float(node, "max")}});
      FETAFIX_TRY_STATUS(in.apply(model::Edit::remove_attribute(name, "max")));
    } else {  // opset >= 11: the optional third input, left empty
      const std::string max_value = node.input(2);
      out.details["changes"].push_back({{"node", name}, {"input", 2}, {"old", max_value}});
      FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(name, 2, "")));
      if (!in.value_used(max_value) && model::find_weight(in.model(), max_value)) {
        FETAFIX_TRY_STATUS(in.remove_weight_if_unused(max_value));
        out.values.push_back(max_value);
      }
    }
    out.node_handles.push_back(h);
  }
  out.description = fmt::format("the upper bound removed from {} Clip node(s)", handles.size());
  return out;
}

// The function `activation=NAME` plants, as the op-form recognizer describes it.
Result<localize::OpForm> activation_form(const std::string& name) {
  using localize::OpFunction;
  localize::OpForm f;
  if (name == "relu" || name == "relu6") {
    f.function = OpFunction::kClip;
    f.numbers = {{"lo", {0.0}}, {"hi", {name == "relu" ? INFINITY : 6.0}}};
  } else if (name == "hard-swish") {
    f.function = OpFunction::kHardSwish;
    f.numbers = {{"alpha", {1.0 / 6}}, {"beta", {0.5}}};
  } else if (name == "swish") {
    f.function = OpFunction::kSwish;
    f.numbers = {{"beta", {1.0}}};
  } else {
    return make_error("'activation' needs relu, relu6, hard-swish or swish, not '{}'", name);
  }
  return f;
}

bool is_activation(const localize::OpForm& f) {
  using localize::OpFunction;
  return f.channel_shape.empty() && f.function != OpFunction::kResize && f.function != OpFunction::kSoftmax &&
         f.function != OpFunction::kPower && f.function != OpFunction::kSigmoid;
}

// activation=NAME: each selected activation (the last node of a recognized form, whatever its
// spelling) rewritten in place to compute NAME — nn.ReLU where the model had ReLU6, SiLU for
// hard-swish. The rewrite is the repair's (repair/op_rewrite.h) run the other way.
Result<Injected> substitute_activation(Injection& in) {
  FETAFIX_ASSIGN_OR_RETURN(const localize::OpForm wanted, activation_form(in.spec().value));
  FETAFIX_ASSIGN_OR_RETURN(auto view, model::GraphView::build(in.graph()));
  std::map<std::string, localize::OpForm> forms;  // by output
  for (auto& f : localize::find_op_forms(in.model(), view))
    if (is_activation(f) && !view.is_graph_output(f.output) && !localize::compare_op_forms(wanted, f).same_function)
      forms.emplace(f.output, std::move(f));
  auto eligible = [&](const onnx::NodeProto& n) { return n.output_size() > 0 && forms.count(n.output(0)) > 0; };
  FETAFIX_ASSIGN_OR_RETURN(auto handles,
                           in.select_nodes(eligible, fmt::format("activations not computing {}", wanted.describe()),
                                           DefaultNodes::kFirst));
  Injected out;
  out.details["changes"] = json::array();
  for (const auto& h : handles) {
    FETAFIX_ASSIGN_OR_RETURN(auto plan, repair::plan_op_rewrites(in.model(), {{h, wanted}}));
    std::string last = h;  // the node now producing the activation (the last one inserted, if any)
    for (const auto& edit : plan.edits) {
      if (edit.kind == model::EditKind::kInsertNode) last = edit.node_proto.output(0);
      if (edit.kind == model::EditKind::kRemoveNode) out.removed_nodes.push_back(edit.node);
      FETAFIX_TRY_STATUS(in.apply(edit));
    }
    out.details["changes"].push_back(
        {{"value", h}, {"old", forms.at(h).describe()}, {"new", wanted.describe()}, {"spelling", forms.at(h).spelling}});
    out.node_handles.push_back(last);
  }
  out.description = fmt::format("{} activation(s) made to compute {}", handles.size(), wanted.describe());
  return out;
}

}  // namespace

int64_t spatial_rank(const onnx::ModelProto& m, const onnx::NodeProto& n) {
  if (auto k = model::get_ints(n, "kernel_shape"); k.ok()) return static_cast<int64_t>(k->size());
  if (auto s = model::get_ints(n, "strides"); s.ok()) return static_cast<int64_t>(s->size());
  if (auto p = model::get_ints(n, "pads"); p.ok()) return static_cast<int64_t>(p->size() / 2);
  if (n.input_size() > 1)
    if (auto w = model::find_weight(m, n.input(1)); w && w->shape.size() > 2)
      return static_cast<int64_t>(w->shape.size()) - 2;
  return 0;
}

Result<Injected> inject_hyperparameter(Injection& in) {
  const std::string& fault = in.spec().fault;
  if (fault == "drop-pads") return drop_pads(in);
  if (fault == "strides") return set_spatial_ints(in, "strides", {"Conv", "ConvTranspose", "MaxPool", "AveragePool"});
  if (fault == "dilations") return set_spatial_ints(in, "dilations", {"Conv", "ConvTranspose", "MaxPool"});
  if (fault == "epsilon") return set_epsilon(in);
  if (fault == "clip-max-removed") return remove_clip_max(in);
  if (fault == "activation") return substitute_activation(in);
  return make_error("fault '{}' is not supported yet", in.spec().text);
}

}  // namespace fetafix::inject::detail
