// The C++ half of the Python module `fetafix` (docs/python.md). Arguments arrive normalised by
// fetafix/__init__.py; each command's binding lives in its own file.
#include <pybind11/pybind11.h>

#include "bindings.h"

PYBIND11_MODULE(_fetafix, m) {
  m.doc() = "fetafix's C++ core; use the `fetafix` package, not this module";
  m.attr("__version__") = FETAFIX_VERSION;
  fetafix::python::bind_compare(m);
  fetafix::python::bind_apply(m);
  fetafix::python::bind_localize(m);
  fetafix::python::bind_repair(m);
}
