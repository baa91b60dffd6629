#include "pair_input.h"

#include <fmt/format.h>
#include <pybind11/stl.h>

#include "common/limits.h"
#include "compare/comparator.h"
#include "convert.h"
#include "data/npy.h"

namespace fetafix::python {

py::object Kwargs::object(const char* key) {
  read_.insert(key);
  return args_.contains(key) ? py::reinterpret_borrow<py::object>(args_[key]) : py::none();
}

void Kwargs::wrong_type(const char* key) const {
  const py::object value = args_[key];
  throw py::type_error(fmt::format("{}(): {} cannot be a {}", function_, key, Py_TYPE(value.ptr())->tp_name));
}

void Kwargs::out_of_range(const char* key, double value, double lo, double hi) {
  raise(make_error("{}: {} is not in [{}, {}]", key, value, lo, hi));
}

void Kwargs::check_all_read() const {
  for (const auto& [key, value] : args_) {
    const auto name = py::str(key).cast<std::string>();
    if (!read_.count(name)) throw py::type_error(fmt::format("{}() got an unexpected keyword argument '{}'", function_, name));
  }
}

data::SampleSet samples_from(const py::object& data, const data::SampleOptions& options) {
  return py::isinstance<py::str>(data) ? value_or_raise(data::SampleSet::open(data.cast<std::string>(), options))
                                       : held_samples(data.cast<py::list>(), options);
}

namespace {

// The CLI's --task, --top-k, ... (src/cli/pair_options.cpp: load_pair), from keywords.
compare::CompareOptions compare_options(Kwargs& args) {
  compare::CompareOptions o;
  std::string task;
  args.read("task", task);
  if (!task.empty()) o.task = value_or_raise(compare::ComparatorRegistry::instance().parse(task));
  args.read("top_k", o.top_k, 1, 1000);
  args.read("label_offset", o.label_offset);
  args.read("threads", o.threads, 0, 256);
  args.read("batch_size", o.batch_size, 1, 4096);
  args.read("strict", o.strict);
  o.progress = ProgressMode::kQuiet;  // the callback reports progress
  args.read("sample_rate", o.samples.sample_rate, 0, 10000000);
  args.read("images_only", o.samples.images_only);
  o.samples.limits = data::array_limits(resource_limits());
  return o;
}

}  // namespace

std::unique_ptr<PairInput> pair_input(Kwargs& args) {
  auto p = std::make_unique<PairInput>();
  std::string source_label = "source", target_label = "target";
  args.read("source_label", source_label);
  args.read("target_label", target_label);
  p->source = load_model(args.object("source"), source_label);
  p->target = load_model(args.object("target"), target_label);
  for (const auto* m : {&p->source, &p->target})
    ok_or_raise(model::check_input_sizes(m->proto, m == &p->source ? source_label : target_label,
                                         resource_limits().max_tensor_bytes));
  p->source_side = {&p->source.proto, source_label,
                    preset_from(args.object("source_preprocess"), p->source.proto, "source_preprocess")};
  p->target_side = {&p->target.proto, target_label,
                    preset_from(args.object("target_preprocess"), p->target.proto, "target_preprocess")};
  p->compare = compare_options(args);
  p->samples = samples_from(args.object("data"), p->compare.samples);
  const py::object inputs = args.object("inputs");
  if (!inputs.is_none())
    for (const auto& [key, value] : inputs.cast<py::dict>()) {
      const auto name = py::str(key).cast<std::string>();
      ok_or_raise(p->samples.add_constant(name, tensor_from_array(value, fmt::format("inputs['{}']", name))));
    }
  return p;
}

}  // namespace fetafix::python
