// fetafix.apply: replay a repair patch on the Target it was made for, as `fetafix apply` does
// (the same cleanup after it), giving the repaired model's bytes.
#include <fmt/format.h>

#include "bindings.h"
#include "convert.h"
#include "model/cleanup.h"
#include "repair/patch.h"

namespace fetafix::python {

namespace {

repair::Patch load_patch(const py::object& patch, const std::string& label) {
  if (!py::isinstance<py::bytes>(patch)) return value_or_raise(repair::load_patch(patch.cast<std::string>()));
  auto json = nlohmann::json::parse(patch.cast<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) raise(make_error("{}: not valid JSON", label));
  return value_or_raise(repair::patch_from_json(json, label));
}

py::bytes apply(const py::object& patch, const std::string& patch_label, const py::object& target,
                const std::string& target_label, bool cleanup) {
  const repair::Patch p = load_patch(patch, patch_label);
  model::Model t = load_model(target, target_label);
  std::string bytes;
  Status applied;
  {
    py::gil_scoped_release released;
    applied = repair::apply_patch(p, t.proto);
    if (applied.ok() && cleanup) model::cleanup_model(t.proto);
    if (applied.ok()) bytes = model::serialize_model(t.proto);
  }
  if (!applied.ok())
    raise(make_error("patch '{}' does not apply to '{}': {}", patch_label, target_label, applied.error().message));
  if (bytes.empty()) raise(make_error("{}: the patched model is over protobuf's 2 GB limit", target_label));
  return py::bytes(bytes);
}

}  // namespace

void bind_apply(py::module_& m) {
  m.def("apply", &apply, py::arg("patch"), py::arg("patch_label"), py::arg("target"), py::arg("target_label"),
        py::arg("cleanup"));
}

}  // namespace fetafix::python
