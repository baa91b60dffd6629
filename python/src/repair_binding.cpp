// fetafix.repair: localize and repair the Target greedily (repair/driver.h) on a folder or on
// arrays held in memory. The result carries the repaired model's bytes as `fetafix repair -o`
// writes them (repair/written_model.h), the patch as `--patch` writes it, the steps as
// fetafix.RepairStep dataclasses and the CLI's JSON log.
#include <memory>

#include <pybind11/stl.h>

#include "bindings.h"
#include "common/json_text.h"
#include "convert.h"
#include "pair_input.h"
#include "repair/driver.h"
#include "repair/patch.h"
#include "repair/written_model.h"

namespace fetafix::python {

namespace {

py::object repair_step_object(const repair::RepairStep& step) {
  return py::module_::import("fetafix._results").attr("RepairStep").attr("from_dict")(to_python(repair::to_json(step)));
}

// The result of fetafix.repair; its JSON is made once.
class PyRepairResult {
 public:
  PyRepairResult(repair::RepairResult r, repair::WrittenModel written)
      : r_(std::move(r)), written_(std::move(written)), json_(repair::to_json(r_)) {}

  const repair::RepairResult& result() const { return r_; }
  const repair::WrittenModel& written() const { return written_; }
  const nlohmann::json& json() const { return json_; }
  py::list steps() const {
    py::list out;
    for (const auto& s : r_.steps) out.append(repair_step_object(s));
    return out;
  }

 private:
  repair::RepairResult r_;
  repair::WrittenModel written_;
  nlohmann::json json_;
};

// The CLI's repair flags (src/cli/repair_command.cpp) from keywords.
repair::RepairOptions repair_options(Kwargs& args, const compare::CompareOptions& compare) {
  repair::RepairOptions o;
  o.localize = localize_options(args, compare);
  args.read("time_limit", o.time_limit_seconds, 1.0, 1e7);
  args.read("max_rejections", o.max_rejections, 1, 100000);
  args.read("max_rounds", o.max_rounds, 1, 100);
  args.read("allow_equal", o.allow_equal);
  args.read("joint", o.joint_step);
  bool strict_regressions = false;
  args.read("strict_regressions", strict_regressions);
  o.regression = strict_regressions ? repair::RegressionPolicy::kStrict : repair::RegressionPolicy::kAllowIfTotalDrops;
  const py::object validate = args.object("validate");
  if (!validate.is_none()) o.validation = samples_from(validate, compare.samples);
  return o;
}

std::shared_ptr<PyRepairResult> run_repair(Kwargs& args) {
  const auto p = pair_input(args);
  repair::RepairOptions o = repair_options(args, p->compare);
  bool cleanup = true;
  args.read("cleanup", cleanup);
  // progress(step) after each decided step, log(line) for the progress lines, Ctrl-C between steps.
  ProgressBridge bridge(args.object("progress"));
  const py::object log = args.object("log");
  args.check_all_read();
  o.on_step = [&](const repair::RepairStep& step) {
    return bridge.call([&] { return py::make_tuple(repair_step_object(step)); });
  };
  if (!log.is_none())
    o.log = [&](const std::string& line) { bridge.call_other(log, [&] { return py::make_tuple(line); }); };
  std::optional<Result<repair::RepairResult>> result;
  std::optional<Result<repair::WrittenModel>> written;
  {
    py::gil_scoped_release released;
    result.emplace(repair::repair_target(p->source_side, p->target_side, std::move(p->samples), o));
    if (result->ok()) written.emplace(repair::written_model(**result, p->target.proto, p->target_side.label, cleanup));
  }
  bridge.rethrow();
  if (bridge.stopped()) raise_stopped(result->ok() ? "" : result->error().message);
  repair::RepairResult r = value_or_raise(std::move(*result));
  return std::make_shared<PyRepairResult>(std::move(r), value_or_raise(std::move(*written)));
}

}  // namespace

void bind_repair(py::module_& m) {
  py::class_<PyRepairResult, std::shared_ptr<PyRepairResult>>(m, "RepairResult")
      .def_property_readonly("model_bytes", [](const PyRepairResult& r) { return py::bytes(r.written().bytes); })
      .def_property_readonly("patch", [](const PyRepairResult& r) { return to_python(repair::patch_to_json(r.result().patch)); })
      .def("patch_json", [](const PyRepairResult& r) { return json_text(repair::patch_to_json(r.result().patch)); })
      .def_property_readonly("steps", &PyRepairResult::steps)
      .def_property_readonly("outcome", [](const PyRepairResult& r) { return std::string(repair::outcome_name(r.result().outcome())); })
      .def_property_readonly("samples", [](const PyRepairResult& r) { return r.result().images; })
      .def_property_readonly("initial_disagreeing", [](const PyRepairResult& r) { return r.result().initial_disagreeing; })
      .def_property_readonly("final_disagreeing", [](const PyRepairResult& r) { return r.result().final_disagreeing; })
      .def_property_readonly("history", [](const PyRepairResult& r) { return r.result().history; })
      .def_property_readonly("counts", [](const PyRepairResult& r) { return to_python(r.json().at("counts")); })
      .def_property_readonly("stop_reason", [](const PyRepairResult& r) { return r.result().stop_reason; })
      .def_property_readonly("time_limit_reached", [](const PyRepairResult& r) { return r.result().time_limit_reached; })
      .def_property_readonly("preprocess", [](const PyRepairResult& r) { return to_python(r.json().at("preprocess")); })
      .def_property_readonly("validation", [](const PyRepairResult& r) {
        return r.json().contains("validation") ? to_python(r.json().at("validation")) : py::object(py::none());
      })
      .def_property_readonly("warnings", [](const PyRepairResult& r) { return r.written().warnings; })
      .def("to_dict", [](const PyRepairResult& r) { return to_python(r.json()); })
      .def("to_json", [](const PyRepairResult& r, int indent) { return json_text(r.json(), indent); }, py::arg("indent") = 2)
      .def("report", [](const PyRepairResult& r) { return repair::format_report(r.result()); });

  m.def("repair", [](py::dict args) {
    Kwargs kwargs(std::move(args), "repair");
    return run_repair(kwargs);
  }, py::arg("args"));
}

}  // namespace fetafix::python
