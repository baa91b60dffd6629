// The pieces of the _fetafix extension, one per command (docs/python.md): each adds its function
// and result class to the module.
#pragma once

#include <pybind11/pybind11.h>

#include "compare/compare.h"

namespace fetafix::python {

void bind_compare(pybind11::module_& m);
void bind_apply(pybind11::module_& m);
void bind_localize(pybind11::module_& m);
void bind_repair(pybind11::module_& m);

// A CompareResult as the Python object fetafix.compare returns (localize's detection run).
pybind11::object compare_result_object(compare::CompareResult result);

}  // namespace fetafix::python
