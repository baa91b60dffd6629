// The pieces of the _fetafix extension, one per command (docs/python.md): each adds its function
// and result class to the module. localize and repair come next, as localize_binding.cpp and
// repair_binding.cpp with a bind_localize / bind_repair here.
#pragma once

#include <pybind11/pybind11.h>

namespace fetafix::python {

void bind_compare(pybind11::module_& m);
void bind_apply(pybind11::module_& m);

}  // namespace fetafix::python
