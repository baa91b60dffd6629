#include "convert.h"

#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "data/npy.h"

namespace fetafix::python {

void raise(const Error& error) {
  // The exception carries the code the CLI would exit with for this kind (docs/cli.md), as the CLI
  // maps it (src/cli/pair_options.cpp: exit_code_for).
  const int exit_code = error.kind == ErrorKind::kInternal ? kExitInternal : kExitBadInput;
  const py::object cls = py::module_::import("fetafix._errors").attr("error_class")(exit_code);
  const py::object exc = cls(error.message, exit_code);
  PyErr_SetObject(cls.ptr(), exc.ptr());
  throw py::error_already_set();
}

void raise_stopped(const std::string& message) {
  const py::object cls = py::module_::import("fetafix._errors").attr("Stopped");
  const py::object exc = cls(message.empty() ? std::string("stopped by the progress callback") : message);
  PyErr_SetObject(cls.ptr(), exc.ptr());
  throw py::error_already_set();
}

model::Model load_model(const py::object& model, const std::string& label) {
  if (py::isinstance<py::bytes>(model)) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_AsStringAndSize(model.ptr(), &data, &size) != 0) throw py::error_already_set();
    return value_or_raise(model::parse_model(std::string_view(data, static_cast<size_t>(size)), label));
  }
  return value_or_raise(model::load_model(model.cast<std::string>()));
}

Tensor tensor_from_array(const py::handle& array, const std::string& what) {
  // C order, the array's own dtype (no conversion: a wrong dtype is the user's to fix, and the
  // feeder says which one the input takes).
  const py::array a = py::array::ensure(array, py::array::c_style);
  if (!a) throw py::error_already_set();
  const auto descr = a.dtype().attr("str").cast<std::string>();
  Tensor t;
  t.dtype = value_or_raise(data::dtype_of_npy_descr(descr, what));
  for (py::ssize_t d = 0; d < a.ndim(); ++d) t.shape.push_back(static_cast<int64_t>(a.shape(d)));
  t.bytes.resize(static_cast<size_t>(a.nbytes()));
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), a.data(), t.bytes.size());
  return t;
}

data::SampleSet held_samples(const py::list& items, const data::SampleOptions& options) {
  std::vector<data::HeldSample> samples;
  samples.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    data::HeldSample s{fmt::format("data[{}]", i), {}};
    const py::handle item = items[i];
    if (py::isinstance<py::dict>(item)) {
      for (const auto& [key, value] : item.cast<py::dict>()) {
        const auto name = py::str(key).cast<std::string>();
        s.arrays.push_back({name, tensor_from_array(value, fmt::format("{}: array '{}'", s.name, name))});
      }
    } else {
      s.arrays.push_back({"", tensor_from_array(item, s.name)});
    }
    samples.push_back(std::move(s));
  }
  return value_or_raise(data::SampleSet::hold(std::move(samples), options));
}

data::Preset preset_from(const py::object& spec, const onnx::ModelProto& model, const std::string& what) {
  if (spec.is_none()) return value_or_raise(compare::resolve_side_preset("auto", nlohmann::json::object(), model, what));
  if (py::isinstance<py::str>(spec))
    return value_or_raise(compare::resolve_side_preset(spec.cast<std::string>(), nlohmann::json::object(), model, what));
  nlohmann::json keys = from_python(spec);
  if (!keys.is_object()) raise(make_error("{}: a preset name, a JSON preset file or a dict, not {}", what, keys.dump()));
  const std::string base = keys.value("base", std::string("auto"));
  keys.erase("base");
  return value_or_raise(compare::resolve_side_preset(base, keys, model, what));
}

py::object to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json from_python(const py::handle& value) {
  const auto text = py::module_::import("json").attr("dumps")(value).cast<std::string>();
  return nlohmann::json::parse(text);
}

std::function<bool(size_t, size_t)> ProgressBridge::hook() {
  return [this](size_t done, size_t total) {
    // Without a callback the GIL is taken only to look for Ctrl-C, a few times a second: taking it
    // after every batch would slow the run and the caller's other threads.
    if (callback_.is_none()) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_signal_check_ < std::chrono::milliseconds(100)) return true;
      last_signal_check_ = now;
    }
    return call([&] { return py::make_tuple(done, total); });
  };
}

bool ProgressBridge::call(const std::function<py::tuple()>& args) {
  py::gil_scoped_acquire gil;
  if (raised_) return false;
  try {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C
    if (callback_.is_none()) return true;
    const py::object answer = callback_(*args());
    if (answer.is_none() || PyObject_IsTrue(answer.ptr()) == 1) return true;
    stopped_ = true;
    return false;
  } catch (py::error_already_set& e) {
    raised_.emplace(std::move(e));
    return false;
  }
}

void ProgressBridge::call_other(const py::object& other, const std::function<py::tuple()>& args) {
  py::gil_scoped_acquire gil;
  if (raised_) return;
  try {
    other(*args());
  } catch (py::error_already_set& e) {
    raised_.emplace(std::move(e));
  }
}

void ProgressBridge::rethrow() {
  if (raised_) {
    py::error_already_set e = std::move(*raised_);
    raised_.reset();
    throw e;
  }
}

}  // namespace fetafix::python
