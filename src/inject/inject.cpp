#include "inject/inject.h"

#include <algorithm>

#include "inject/injection_context.h"
#include "model/edit.h"
#include "model/graph.h"

namespace fetafix::inject {
namespace {

using nlohmann::json;

Result<detail::Injected> dispatch(detail::Injection& in) {
  if (in.spec().benign()) return detail::inject_benign(in);
  switch (*in.spec().type) {
    case FaultType::kWB: return detail::inject_weights(in);
    case FaultType::kLH: return detail::inject_hyperparameter(in);
    case FaultType::kTSS:
    case FaultType::kID:
    case FaultType::kCG: return detail::inject_structure(in);
    case FaultType::kPP: return detail::inject_preprocessing(in);
  }
  return make_error("unknown fault type");
}

json entry_for(const FaultSpec& spec) {
  return {{"spec", spec.text},
          {"type", std::string(injected_type_name(spec.type))},
          {"fault", spec.fault},
          {"benign", spec.benign()}};
}

std::vector<std::string> unique_in_order(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items)
    if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  return out;
}

}  // namespace

Result<InjectionResult> inject(const onnx::ModelProto& model, const std::vector<FaultSpec>& specs, uint64_t seed) {
  if (specs.empty()) return make_error("no fault to inject (give at least one --fault)");
  InjectionResult result;
  json entries = json::array();
  result.ground_truth = {{"format", "fetafix-injection"}, {"version", 1}, {"seed", seed}};

  for (const auto& spec : specs) {
    if (!detail::is_whole_model_rewrite(spec)) continue;
    if (specs.size() != 1)
      return make_error("fault '{}': a whole-model rewrite must be the only fault (its result is not an edit list)",
                        spec.text);
    auto rewritten = detail::rewrite_whole_model(model, spec);
    if (!rewritten.ok()) return make_error("fault '{}': {}", spec.text, rewritten.error().message);
    result.model = std::move(rewritten).value();
    json entry = entry_for(spec);
    entry["nodes"] = json::array();
    entry["values"] = json::array();
    entry["description"] = spec.fault == "opset" ? "the model converted by ONNX's version converter"
                                                 : "the model as ONNX Runtime saves it after its basic optimizations";
    entry["edits"] = nullptr;
    entries.push_back(std::move(entry));
    result.ground_truth["replayable"] = false;
    result.ground_truth["injections"] = std::move(entries);
    result.ground_truth["edits"] = nullptr;
    return result;
  }

  result.model = model;
  model::EditLog log(result.model);
  Rng rng(seed);
  std::vector<detail::Injected> injected;
  std::vector<size_t> edit_ends;
  for (const auto& spec : specs) {
    detail::Injection in(result.model, log, spec, rng);
    const size_t before = log.size();
    auto r = dispatch(in);
    if (r.ok() && log.size() == before) r = make_error("it changes nothing in this model");
    if (!r.ok()) return make_error("fault '{}': {}", spec.text, r.error().message);
    injected.push_back(std::move(r).value());
    edit_ends.push_back(log.size());
  }

  // Node names as the final model calls them (an unnamed node's name depends on its position).
  const auto final_names = model::name_nodes(result.model.graph());
  auto final_name = [&](const std::string& handle) -> std::string {
    for (int i = 0; i < result.model.graph().node_size(); ++i)
      if (result.model.graph().node(i).output_size() && result.model.graph().node(i).output(0) == handle)
        return final_names.names[static_cast<size_t>(i)];
    return {};
  };
  size_t edit_begin = 0;
  for (size_t k = 0; k < specs.size(); ++k) {
    const auto& r = injected[k];
    json entry = entry_for(specs[k]);
    std::vector<std::string> nodes;
    for (const auto& handle : r.node_handles)
      if (auto name = final_name(handle); !name.empty()) nodes.push_back(name);
    nodes.insert(nodes.end(), r.removed_nodes.begin(), r.removed_nodes.end());
    entry["nodes"] = unique_in_order(nodes);
    entry["values"] = unique_in_order(r.values);
    entry["description"] = r.description;
    if (!r.details.empty()) entry["details"] = r.details;
    json edits = json::array();
    for (size_t e = edit_begin; e < edit_ends[k]; ++e) edits.push_back(model::edit_to_json(log.edits()[e]));
    entry["edits"] = std::move(edits);
    edit_begin = edit_ends[k];
    entries.push_back(std::move(entry));
  }
  result.ground_truth["replayable"] = true;
  result.ground_truth["injections"] = std::move(entries);
  result.ground_truth["edits"] = log.to_json();
  return result;
}

}  // namespace fetafix::inject
