// fetafix.localize: the whole fault localization (localize/localize.h) on a folder or on arrays
// held in memory. The result keeps the C++ LocalizeResult and shows its findings as
// fetafix.Finding dataclasses, its detection run as a CompareResult, and the CLI's JSON.
#include <memory>

#include <pybind11/stl.h>

#include "bindings.h"
#include "common/json_text.h"
#include "convert.h"
#include "localize/localize.h"
#include "pair_input.h"
#include "repair/impact.h"

namespace fetafix::python {

localize::LocalizeOptions localize_options(Kwargs& args, const compare::CompareOptions& compare) {
  localize::LocalizeOptions o;
  o.compare = compare;
  auto& a = o.activation;
  args.read("similar", a.max_similar, 2, 100000);
  args.read("dissimilar", a.max_dissimilar, 1, 100000);
  args.read("repeats", a.repeats, 1, 100);
  args.read("seed", a.seed);
  args.read("alpha", a.alpha, 1e-12, 1.0);
  std::string aggregation = "borda";
  args.read("aggregation", aggregation);
  a.aggregation = value_or_raise(localize::aggregation_from_name(aggregation));
  std::vector<std::string> core_ops;
  args.read("core_ops", core_ops);
  if (!core_ops.empty()) localize::set_core_ops(o, core_ops);
  args.read("weight_atol", o.layer_checks.weight_atol);
  args.read("weight_rtol", o.layer_checks.weight_rtol);
  args.read("equivalence_rtol", o.equivalence.rtol);
  args.read("equivalence_atol", o.equivalence.atol);
  args.read("replay_images", o.replay_images, 0, 100000);
  args.read("replay_tolerance", o.replay.tolerance, 0.0, 1e9);
  args.read("probe_images", o.probe_images, 1, 1000);
  return o;
}

namespace {

// The result of fetafix.localize; its JSON and detection object are made once.
class PyLocalizeResult {
 public:
  explicit PyLocalizeResult(localize::LocalizeResult r)
      : r_(std::move(r)), json_(localize::to_json(r_)), detection_(compare_result_object(r_.detection)) {}

  const localize::LocalizeResult& result() const { return r_; }
  const nlohmann::json& json() const { return json_; }
  py::object findings(bool faults_only) const {
    const py::object make = py::module_::import("fetafix._results").attr("Finding").attr("from_dict");
    py::list out;
    for (const auto& f : json_.at("findings"))
      if (!faults_only || f.at("is_fault").get<bool>()) out.append(make(to_python(f)));
    return out;
  }
  const py::object& detection() const { return detection_; }

 private:
  localize::LocalizeResult r_;
  nlohmann::json json_;
  py::object detection_;
};

std::shared_ptr<PyLocalizeResult> run_localize(Kwargs& args) {
  const auto p = pair_input(args);
  localize::LocalizeOptions o = localize_options(args, p->compare);
  repair::ImpactOptions impact;
  args.read("impact_limit", impact.limit);
  ProgressBridge bridge(args.object("progress"));
  args.check_all_read();
  o.compare.on_progress = bridge.hook();
  std::optional<Result<localize::LocalizeResult>> result;
  {
    py::gil_scoped_release released;
    result.emplace(localize::localize_faults(p->source_side, p->target_side, p->samples, o));
    if (result->ok()) repair::add_fault_impact(p->source_side, p->target_side, p->samples, o.compare, **result, impact);
  }
  bridge.rethrow();
  if (bridge.stopped()) raise_stopped(result->ok() ? "" : result->error().message);
  return std::make_shared<PyLocalizeResult>(value_or_raise(std::move(*result)));
}

}  // namespace

void bind_localize(py::module_& m) {
  py::class_<PyLocalizeResult, std::shared_ptr<PyLocalizeResult>>(m, "LocalizeResult")
      .def_property_readonly("findings", [](const PyLocalizeResult& r) { return r.findings(false); })
      .def_property_readonly("faults", [](const PyLocalizeResult& r) { return r.findings(true); })
      .def_property_readonly("detection", &PyLocalizeResult::detection)
      .def_property_readonly("disagreeing", [](const PyLocalizeResult& r) { return r.result().disagreeing; })
      .def_property_readonly("fault_count", [](const PyLocalizeResult& r) { return r.result().fault_count(); })
      .def_property_readonly("nothing_to_repair", [](const PyLocalizeResult& r) { return r.result().nothing_to_repair(); })
      .def_property_readonly("unexplained_disagreement",
                             [](const PyLocalizeResult& r) { return r.result().unexplained_disagreement(); })
      .def_property_readonly("notes", [](const PyLocalizeResult& r) { return r.result().notes; })
      .def_property_readonly("timings", [](const PyLocalizeResult& r) { return to_python(r.json().at("timings_seconds")); })
      .def("to_dict", [](const PyLocalizeResult& r) { return to_python(r.json()); })
      .def("to_json", [](const PyLocalizeResult& r, int indent) { return json_text(r.json(), indent); },
           py::arg("indent") = 2)
      .def("report", [](const PyLocalizeResult& r, size_t max_listed) { return localize::format_report(r.result(), max_listed); },
           py::arg("max_ranked_listed") = 10);

  m.def("localize", [](py::dict args) {
    Kwargs kwargs(std::move(args), "localize");
    return run_localize(kwargs);
  }, py::arg("args"));
}

}  // namespace fetafix::python
