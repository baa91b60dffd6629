// fetafix.compare: run both models on the samples and say, sample by sample, whether their
// outputs agree for the task. The result keeps the C++ CompareResult and shows its per-sample
// records as numpy columns, its summary and evidence as Python objects, and the CLI's JSON.
#include <cmath>
#include <memory>

#include <pybind11/stl.h>

#include "bindings.h"
#include "compare/comparator.h"
#include "convert.h"
#include "pair_input.h"

namespace fetafix::python {

namespace {

// The result of fetafix.compare; built once, read many times.
class PyCompareResult {
 public:
  explicit PyCompareResult(compare::CompareResult r) : r_(std::move(r)) {}

  size_t size() const { return r_.records.size(); }
  std::vector<std::string> names() const { return column<std::string>([](const auto& r) { return r.file; }); }
  std::vector<std::string> errors() const { return column<std::string>([](const auto& r) { return r.error; }); }
  std::vector<std::string> details() const { return column<std::string>([](const auto& r) { return r.detail; }); }
  py::array_t<bool> compared() const { return array<bool>([](const auto& r) { return r.error.empty(); }); }
  py::array_t<bool> agree() const { return array<bool>([](const auto& r) { return r.error.empty() && r.agree; }); }
  py::array_t<double> distance() const {
    return array<double>([](const auto& r) { return r.error.empty() ? r.distance : std::nan(""); });
  }
  // Label tasks: -1 where a sample was skipped (or the task is not label).
  py::array_t<int64_t> source_top1() const { return top1([](const auto& r) { return r.source.ids; }); }
  py::array_t<int64_t> target_top1() const { return top1([](const auto& r) { return r.target.ids; }); }
  py::array_t<int64_t> target_top1_in_source() const { return top1([](const auto& r) { return r.target_in_source; }); }

  const compare::CompareResult& result() const { return r_; }
  nlohmann::json json() const { return compare::to_json(r_); }
  py::object evidence(size_t i) const { return to_python(compare::evidence_to_json(r_.records.at(i).evidence)); }

 private:
  template <class T, class F>
  std::vector<T> column(F f) const {
    std::vector<T> out;
    out.reserve(r_.records.size());
    for (const auto& r : r_.records) out.push_back(f(r));
    return out;
  }
  template <class T, class F>
  py::array_t<T> array(F f) const {
    py::array_t<T> out(static_cast<py::ssize_t>(r_.records.size()));
    auto view = out.template mutable_unchecked<1>();
    for (size_t i = 0; i < r_.records.size(); ++i) view(static_cast<py::ssize_t>(i)) = f(r_.records[i]);
    return out;
  }
  template <class F>
  py::array_t<int64_t> top1(F ids) const {
    return array<int64_t>([&](const auto& r) -> int64_t {
      const auto& v = ids(r);
      return r.error.empty() && !v.empty() ? v[0] : -1;
    });
  }

  compare::CompareResult r_;
};

PyCompareResult run_compare(Kwargs& args) {
  const auto p = pair_input(args);
  ProgressBridge bridge(args.object("progress"));
  args.check_all_read();
  compare::CompareOptions o = p->compare;
  o.on_progress = bridge.hook();
  std::optional<Result<compare::CompareResult>> result;
  {
    py::gil_scoped_release released;
    result.emplace(compare::compare_models(p->source_side, p->target_side, std::move(p->samples), o));
  }
  bridge.rethrow();
  if (bridge.stopped()) raise_stopped(result->ok() ? "" : result->error().message);
  return PyCompareResult(value_or_raise(std::move(*result)));
}

}  // namespace

void bind_compare(py::module_& m) {
  py::class_<PyCompareResult, std::shared_ptr<PyCompareResult>>(m, "CompareResult")
      .def("__len__", &PyCompareResult::size)
      .def_property_readonly("names", &PyCompareResult::names)
      .def_property_readonly("compared", &PyCompareResult::compared)
      .def_property_readonly("agree", &PyCompareResult::agree)
      .def_property_readonly("distance", &PyCompareResult::distance)
      .def_property_readonly("errors", &PyCompareResult::errors)
      .def_property_readonly("details", &PyCompareResult::details)
      .def_property_readonly("source_top1", &PyCompareResult::source_top1)
      .def_property_readonly("target_top1", &PyCompareResult::target_top1)
      .def_property_readonly("target_top1_in_source", &PyCompareResult::target_top1_in_source)
      .def_property_readonly("task", [](const PyCompareResult& r) { return r.result().task.to_string(); })
      .def_property_readonly("summary", [](const PyCompareResult& r) { return to_python(r.json().at("summary")); })
      .def_property_readonly("disagreeing", [](const PyCompareResult& r) { return r.result().summary.disagreeing; })
      .def_property_readonly("discrepancy", [](const PyCompareResult& r) { return r.result().summary.discrepancy; })
      .def_property_readonly("mean_distance", [](const PyCompareResult& r) { return r.result().summary.mean_distance; })
      .def_property_readonly("warnings", [](const PyCompareResult& r) { return r.result().warnings; })
      .def_property_readonly("input_pairing", [](const PyCompareResult& r) { return r.result().input_pairing; })
      .def("evidence", &PyCompareResult::evidence, py::arg("index"))
      .def("to_dict", [](const PyCompareResult& r) { return to_python(r.json()); })
      .def("to_json", [](const PyCompareResult& r, int indent) {
        return r.json().dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
      }, py::arg("indent") = 2)
      .def("report", [](const PyCompareResult& r, size_t max_listed) { return compare::format_report(r.result(), max_listed); },
           py::arg("max_listed") = 20);

  m.def("compare", [](py::dict args) {
        Kwargs kwargs(std::move(args), "compare");
        return std::make_shared<PyCompareResult>(run_compare(kwargs));
      }, py::arg("args"));
}

py::object compare_result_object(compare::CompareResult result) {
  return py::cast(std::make_shared<PyCompareResult>(std::move(result)));
}

}  // namespace fetafix::python
