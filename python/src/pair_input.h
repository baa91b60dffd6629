// What compare, localize and repair take alike: both models, the samples and the compare options,
// read from the keyword arguments fetafix/__init__.py normalised (a dict), as the CLI's pair
// options are (src/cli/pair_options.h), with the same checks before any work.
#pragma once

#include <memory>
#include <set>
#include <string>

#include <pybind11/pybind11.h>

#include "compare/compare.h"
#include "data/samples.h"
#include "localize/localize.h"
#include "model/model.h"

namespace fetafix::python {

namespace py = pybind11;

// The keyword arguments of one call. Each value is read at most once; a key no reader asked for
// is a TypeError naming it (a misspelt option is never ignored silently).
class Kwargs {
 public:
  Kwargs(py::dict args, std::string function) : args_(std::move(args)), function_(std::move(function)) {}

  // Sets `out` when the key is given and not None.
  template <class T>
  void read(const char* key, T& out) {
    read_.insert(key);
    if (!args_.contains(key) || args_[key].is_none()) return;
    try {
      out = args_[key].cast<T>();
    } catch (const py::cast_error&) {
      wrong_type(key);
    }
  }
  // The same, refusing a value outside [lo, hi] as the CLI's option checks do (BadInputError).
  template <class T>
  void read(const char* key, T& out, double lo, double hi) {
    read(key, out);
    if (static_cast<double>(out) < lo || static_cast<double>(out) > hi) out_of_range(key, static_cast<double>(out), lo, hi);
  }
  py::object object(const char* key);  // None when not given
  // Raises TypeError for keys nobody read.
  void check_all_read() const;

 private:
  [[noreturn]] void wrong_type(const char* key) const;
  [[noreturn]] static void out_of_range(const char* key, double value, double lo, double hi);

  py::dict args_;
  std::string function_;
  std::set<std::string> read_;
};

struct PairInput {
  model::Model source, target;
  compare::ModelSide source_side, target_side;  // point into source and target: keep PairInput where it is
  compare::CompareOptions compare;
  data::SampleSet samples;
};

// Reads source, target, source_label, target_label, data, task, top_k, label_offset, threads,
// batch_size, strict, source_preprocess, target_preprocess, inputs, sample_rate, images_only.
std::unique_ptr<PairInput> pair_input(Kwargs& args);

// The analysis options of localize and repair (the CLI's localize flags: similar, dissimilar,
// repeats, seed, alpha, aggregation, core_ops, weight_atol, weight_rtol, equivalence_rtol,
// equivalence_atol, replay_images, replay_tolerance, probe_images), on top of `compare`.
localize::LocalizeOptions localize_options(Kwargs& args, const compare::CompareOptions& compare);

// Samples from a str (a folder, listed with `options`) or a list of arrays / dicts of arrays.
data::SampleSet samples_from(const py::object& data, const data::SampleOptions& options);

}  // namespace fetafix::python
