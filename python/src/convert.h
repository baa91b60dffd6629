// What every binding of the Python module shares: fetafix errors raised as the module's Python
// exceptions, models and sample data from Python objects, JSON to Python objects, and running
// C++ work without the GIL while keeping Ctrl-C and a progress callback working.
//
// The Python layer (fetafix/__init__.py) has already normalised the arguments: a model is a str
// (a path) or bytes; data is a str (a folder) or a list of numpy arrays / dicts of arrays.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/result.h"
#include "common/tensor.h"
#include "compare/compare.h"
#include "data/samples.h"
#include "model/model.h"

namespace fetafix::python {

namespace py = pybind11;

// Raises the Python exception for `error` (fetafix.BadInputError, fetafix.InternalError, ... by
// its exit code), with the CLI's one-line message as its text.
[[noreturn]] void raise(const Error& error);

// Raises fetafix.Stopped: the progress callback returned False.
[[noreturn]] void raise_stopped(const std::string& message);

template <class T>
T value_or_raise(Result<T> r) {
  if (!r.ok()) raise(r.error());
  return std::move(r).value();
}
inline void ok_or_raise(const Status& st) {
  if (!st.ok()) raise(st.error());
}

// A model given as a path (str) or serialized bytes; `label` names it in errors and results.
model::Model load_model(const py::object& model, const std::string& label);

// A numpy array as a Tensor (copied, C order); `what` names it in errors ("data[3]: array 'x'").
Tensor tensor_from_array(const py::handle& array, const std::string& what);

// Samples held in memory: each item a numpy array (a single-input model's input) or a dict of
// arrays named after the inputs they feed. Named data[0], data[1], ...
data::SampleSet held_samples(const py::list& items, const data::SampleOptions& options);

// A preprocessing spec: a str (a preset name, "auto", or a JSON preset file) or a dict with the
// keys of a preset file ("base" names the preset it starts from; default "auto"); None: "auto".
data::Preset preset_from(const py::object& spec, const onnx::ModelProto& model, const std::string& what);

// nlohmann JSON as Python objects (dicts, lists, numbers, strings).
py::object to_python(const nlohmann::json& j);
nlohmann::json from_python(const py::handle& value);

// Runs `work` with the GIL released. `progress(done, total)` from the work's threads re-takes the
// GIL to call the user's callback (when given) and to see Ctrl-C; either stops the work, and the
// callback's exception (or KeyboardInterrupt) is raised once the work has returned.
class ProgressBridge {
 public:
  explicit ProgressBridge(py::object callback) : callback_(std::move(callback)) {}
  // The hook for CompareOptions::on_progress.
  std::function<bool(size_t, size_t)> hook();
  // Looks for Ctrl-C and calls the callback (when given) with args() (made with the GIL held);
  // false when the run must stop: Ctrl-C, the callback returned False, or it raised. Takes the GIL.
  bool call(const std::function<py::tuple()>& args);
  // Calls another callback of the same run (repair's log); what it raises stops the run at the
  // next call() and is raised by rethrow(). Takes the GIL.
  void call_other(const py::object& other, const std::function<py::tuple()>& args);
  // Raises what the callback raised, if it did (call with the GIL held, after the work).
  void rethrow();
  // The callback returned False.
  bool stopped() const { return stopped_; }

 private:
  py::object callback_;
  std::optional<py::error_already_set> raised_;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_signal_check_{};
};

}  // namespace fetafix::python
