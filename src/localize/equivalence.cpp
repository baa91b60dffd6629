#include "localize/equivalence.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "localize/layer_support.h"
#include "model/graph.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace {

using model::GraphView;
using nlohmann::json;
using Values = std::map<std::string, Tensor>;

using RegionSpec = RegionNames;

// The finding's region on one side (source_side) or the other; an error when it is empty.
Result<RegionSpec> region_from(const Finding& finding, bool source_side) {
  const JudgedRegions* regions = finding.regions();
  const char* key = source_side ? "source_region" : "target_region";
  if (!regions) return make_error("finding at '{}': evidence has no {}", finding.target_node, key);
  const RegionSpec& spec = source_side ? regions->source : regions->target;
  if (spec.nodes.empty() || spec.output.empty())
    return make_error("finding at '{}': {} is empty", finding.target_node, key);
  return spec;
}

bool has_regions(const Finding& f) { return f.regions() != nullptr; }

// Runs the full model once on `inputs`, capturing `names` (model inputs are taken from the
// feeds). Optimizations are off while capturing, so the values are the model's own.
Result<Values> capture_values(const onnx::ModelProto& model, const GraphView& view, const std::set<std::string>& names,
                              const std::vector<Tensor>& inputs, int threads, const char* label) {
  const auto& declared = view.real_inputs();
  if (declared.size() != inputs.size())
    return make_error("{}: {} probe inputs for {} model inputs", label, inputs.size(), declared.size());
  Values out;
  runtime::SessionOptions options;
  options.threads = threads;
  for (const auto& name : names) {
    auto it = std::find(declared.begin(), declared.end(), name);
    if (it != declared.end()) out[name] = inputs[static_cast<size_t>(it - declared.begin())];
    else options.capture.push_back(name);
  }
  if (options.capture.empty()) return out;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(model, options, label));
  FETAFIX_ASSIGN_OR_RETURN(auto results, session->run(inputs));
  for (size_t i = session->num_model_outputs(); i < session->outputs().size(); ++i)
    out[session->outputs()[i].name] = std::move(results[i]);
  return out;
}

// The region as a standalone model: its nodes plus the weight-only nodes and initializers
// they read; the region's entry values become graph inputs typed like `entries`.
Result<onnx::ModelProto> extract_region(const onnx::ModelProto& model, const GraphView& view, const RegionSpec& region,
                                        const std::vector<Tensor>& entries, const char* label) {
  std::set<size_t> include;
  for (const auto& name : region.nodes) {
    auto n = view.find_node(name);
    if (!n) return make_error("{}: region node '{}' not found", label, name);
    include.insert(*n);
  }
  const std::set<std::string> entry_names(region.inputs.begin(), region.inputs.end());
  std::set<std::string> initializers;
  std::vector<size_t> stack(include.begin(), include.end());
  while (!stack.empty()) {
    const size_t n = stack.back();
    stack.pop_back();
    for (const auto& in : view.node(n).input()) {
      if (in.empty() || entry_names.count(in)) continue;
      if (auto p = view.producer(in)) {
        if (include.count(*p)) continue;
        if (view.reached_from_inputs(*p))
          return make_error("{}: region node '{}' reads '{}', computed outside the region", label, view.node_name(n), in);
        include.insert(*p);  // a weight-only producer: Constant, weight DequantizeLinear, ...
        stack.push_back(*p);
      } else if (view.is_initializer(in)) {
        initializers.insert(in);
      } else {
        return make_error("{}: region node '{}' reads model input '{}' that is not a region entry", label,
                          view.node_name(n), in);
      }
    }
  }
  std::vector<size_t> order;
  for (size_t n : view.topological_order())
    if (include.count(n)) order.push_back(n);

  onnx::ModelProto sub;
  sub.set_ir_version(std::max<int64_t>(model.ir_version(), 4));  // >= 4: initializers need not be inputs
  *sub.mutable_opset_import() = model.opset_import();
  sub.set_producer_name("fetafix-equivalence");
  auto& g = *sub.mutable_graph();
  g.set_name(std::string(label) + "_region");
  for (size_t n : order) *g.add_node() = view.node(n);
  for (const auto& init : model.graph().initializer())
    if (initializers.count(init.name())) *g.add_initializer() = init;
  for (size_t i = 0; i < region.inputs.size(); ++i) {
    auto& in = *g.add_input();
    in.set_name(region.inputs[i]);
    auto& tt = *in.mutable_type()->mutable_tensor_type();
    tt.set_elem_type(static_cast<int32_t>(entries[i].dtype));
    for (int64_t d : entries[i].shape) tt.mutable_shape()->add_dim()->set_dim_value(d);
  }
  g.add_output()->set_name(region.output);
  return sub;
}

Result<Tensor> run_region(const onnx::ModelProto& sub, const RegionSpec& region, const std::vector<Tensor>& entries,
                          int threads, const char* label) {
  runtime::SessionOptions options;
  options.threads = threads;
  options.optimize = false;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(sub, options, std::string(label) + " region"));
  std::vector<Tensor> feeds;
  for (const auto& info : session->inputs()) {
    auto it = std::find(region.inputs.begin(), region.inputs.end(), info.name);
    if (it == region.inputs.end()) return make_error("{} region: unexpected input '{}'", label, info.name);
    feeds.push_back(entries[static_cast<size_t>(it - region.inputs.begin())]);
  }
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session->run(feeds));
  if (outputs.empty()) return make_error("{} region: no output", label);
  return std::move(outputs[0]);
}

// `source` brought into `target`'s layout; nullopt when no alignment fits.
std::optional<Tensor> aligned_to(const Tensor& source, const Tensor& target) {
  auto perm = layer::layout_alignment(source.shape, target.shape);
  if (!perm) return std::nullopt;
  bool identity = true;
  for (size_t i = 0; i < perm->size(); ++i) identity = identity && (*perm)[i] == static_cast<int64_t>(i);
  return identity ? source : layer::transpose(source, *perm);
}

// Whether two values agree on every probe image (dim 0 slices): max|s - t| <= rtol max|s| + atol.
bool agree(const Tensor& aligned_source, const Tensor& target, const EquivalenceOptions& options) {
  const auto s = aligned_source.to_float(), t = target.to_float();
  if (s.size() != t.size()) return false;
  const size_t images = target.shape.empty() || target.shape[0] <= 0 ? 1 : static_cast<size_t>(target.shape[0]);
  const size_t per = images == 0 ? 0 : s.size() / images;
  for (size_t img = 0; img < images; ++img) {
    double max_source = 0, max_diff = 0;
    for (size_t i = img * per; i < (img + 1) * per; ++i) {
      if (std::isnan(s[i]) != std::isnan(t[i])) return false;
      if (std::isnan(s[i])) continue;
      max_source = std::max(max_source, static_cast<double>(std::fabs(s[i])));
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(s[i] - t[i])));
    }
    if (max_diff > options.rtol * max_source + options.atol) return false;
  }
  return true;
}

struct Prepared {
  const onnx::ModelProto& source;
  const onnx::ModelProto& target;
  GraphView source_view, target_view;
  Values source_values, target_values;
};

Result<std::vector<Tensor>> entries_of(const RegionSpec& r, const Values& values, const char* label) {
  std::vector<Tensor> out;
  for (const auto& name : r.inputs) {
    auto it = values.find(name);
    if (it == values.end()) return make_error("{}: region entry '{}' was not captured", label, name);
    out.push_back(it->second);
  }
  return out;
}

Result<Equivalence> judge(const Prepared& p, const Finding& finding, const EquivalenceOptions& options,
                          bool& substituted) {
  FETAFIX_ASSIGN_OR_RETURN(RegionSpec rs, region_from(finding, true));
  FETAFIX_ASSIGN_OR_RETURN(RegionSpec rt, region_from(finding, false));
  FETAFIX_ASSIGN_OR_RETURN(auto s_in, entries_of(rs, p.source_values, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(auto t_in, entries_of(rt, p.target_values, "Target"));
  // An upstream fault makes the entries differ already; judge only the region by feeding the
  // Source's entry to both sides.
  substituted = false;
  if (rs.inputs.size() == rt.inputs.size()) {
    for (size_t i = 0; i < s_in.size(); ++i) {
      if (s_in[i].dtype != t_in[i].dtype) continue;
      auto aligned = aligned_to(s_in[i], t_in[i]);
      if (aligned && !agree(*aligned, t_in[i], options)) {
        t_in[i] = std::move(*aligned);
        substituted = true;
      }
    }
  }
  FETAFIX_ASSIGN_OR_RETURN(auto s_model, extract_region(p.source, p.source_view, rs, s_in, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(auto t_model, extract_region(p.target, p.target_view, rt, t_in, "Target"));
  FETAFIX_ASSIGN_OR_RETURN(Tensor s_out, run_region(s_model, rs, s_in, options.threads, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(Tensor t_out, run_region(t_model, rt, t_in, options.threads, "Target"));
  auto aligned = aligned_to(s_out, t_out);
  if (!aligned) return Equivalence::kDivergent;  // e.g. dropped pads: another output size
  return agree(*aligned, t_out, options) ? Equivalence::kEquivalent : Equivalence::kDivergent;
}

Result<std::unique_ptr<Prepared>> prepare(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                          const std::vector<const Finding*>& findings,
                                          const std::vector<Tensor>& source_inputs,
                                          const std::vector<Tensor>& target_inputs, const EquivalenceOptions& options) {
  auto sv = GraphView::build(source.graph());
  if (!sv.ok()) return make_error("Source: {}", sv.error().message);
  auto tv = GraphView::build(target.graph());
  if (!tv.ok()) return make_error("Target: {}", tv.error().message);
  auto p = std::make_unique<Prepared>(Prepared{source, target, std::move(sv).value(), std::move(tv).value(), {}, {}});
  std::set<std::string> s_names, t_names;
  for (const Finding* f : findings) {
    auto rs = region_from(*f, true);
    auto rt = region_from(*f, false);
    if (rs.ok()) s_names.insert(rs->inputs.begin(), rs->inputs.end());
    if (rt.ok()) t_names.insert(rt->inputs.begin(), rt->inputs.end());
  }
  // Names that are not values of the model would fail the whole capture; judge() reports them.
  auto known = [](const GraphView& v, std::set<std::string>& names) {
    const auto& real = v.real_inputs();
    for (auto it = names.begin(); it != names.end();)
      it = v.producer(*it) || std::find(real.begin(), real.end(), *it) != real.end() ? std::next(it) : names.erase(it);
  };
  known(p->source_view, s_names);
  known(p->target_view, t_names);
  FETAFIX_ASSIGN_OR_RETURN(p->source_values, capture_values(source, p->source_view, s_names, source_inputs, options.threads, "Source"));
  FETAFIX_ASSIGN_OR_RETURN(p->target_values, capture_values(target, p->target_view, t_names, target_inputs, options.threads, "Target"));
  return p;
}

}  // namespace

Status filter_equivalent(const onnx::ModelProto& source, const onnx::ModelProto& target,
                         std::vector<Finding>& findings, const std::vector<Tensor>& source_inputs,
                         const std::vector<Tensor>& target_inputs, const EquivalenceOptions& options) {
  std::vector<Finding*> todo;
  for (auto& f : findings)
    if (has_regions(f)) todo.push_back(&f);
  if (todo.empty()) return {};
  FETAFIX_ASSIGN_OR_RETURN(auto prepared, prepare(source, target, std::vector<const Finding*>(todo.begin(), todo.end()),
                                                  source_inputs, target_inputs, options));
  for (Finding* f : todo) {
    bool substituted = false;
    auto verdict = judge(*prepared, *f, options, substituted);
    if (!verdict.ok()) {
      f->equivalence = Equivalence::kNotChecked;
      f->regions()->equivalence_error = verdict.error().message;
      continue;
    }
    f->equivalence = verdict.value();
    f->regions()->entry_substituted = substituted;
  }
  return {};
}

Result<Equivalence> check_equivalence(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                      const Finding& finding, const std::vector<Tensor>& source_inputs,
                                      const std::vector<Tensor>& target_inputs, const EquivalenceOptions& options) {
  if (!has_regions(finding))
    return make_error("finding at '{}': only LH and CG findings with source_region/target_region can be checked",
                      finding.target_node);
  FETAFIX_ASSIGN_OR_RETURN(auto prepared, prepare(source, target, {&finding}, source_inputs, target_inputs, options));
  bool substituted = false;
  return judge(*prepared, finding, options, substituted);
}

}  // namespace fetafix::localize
