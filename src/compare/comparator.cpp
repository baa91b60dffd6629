#include "compare/comparator.h"

#include <algorithm>

#include "common/pairing.h"
#include "compare/builtin_comparators.h"
#include "data/samples.h"

namespace fetafix::compare {

namespace {

std::vector<std::string> names_of(const ModelOutputs& m) {
  std::vector<std::string> n;
  for (const auto& o : m.outputs) n.push_back(o.name);
  return n;
}

std::string describe_outputs(const ModelOutputs& m) {
  std::string s;
  for (const auto& o : m.outputs) s += (s.empty() ? "" : ", ") + describe_output(o);
  return s;
}

}  // namespace

std::string describe_output(const runtime::ValueInfo& output) {
  return fmt::format("'{}' {}", output.name,
                     output.shape.empty() ? std::string("(shape unknown)") : data::declared_shape(output.shape));
}

std::vector<float> values_of(const Tensor& t) { return t.to_float(); }

FloatValues::FloatValues(const Tensor& t) {
  if (t.dtype == DType::kFloat32) {
    view_ = t.span<float>();
  } else {
    converted_ = t.to_float();
    view_ = converted_;
  }
}

Status Comparator::bind(const ModelOutputs& source, const ModelOutputs& target) {
  source_ = source;
  target_ = target;
  source_used_.clear();
  target_used_.clear();
  if (source.outputs.empty()) return make_error("{}: the model has no outputs", source.label);
  if (target.outputs.empty()) return make_error("{}: the model has no outputs", target.label);
  return on_bind(source, target);
}

std::vector<std::string> Comparator::source_output_names() const {
  std::vector<std::string> n;
  for (size_t i : source_used_) n.push_back(source_.outputs[i].name);
  return n;
}

Result<std::pair<size_t, size_t>> Comparator::resolve_named(const std::string& name) {
  const auto src_names = names_of(source_), tgt_names = names_of(target_);
  auto s = std::find(src_names.begin(), src_names.end(), name);
  if (s == src_names.end())
    return make_error("--task {}: {} has no output '{}' (outputs: {})", task_.kind, source_.label, name,
                      quoted_names(src_names));
  const size_t si = static_cast<size_t>(s - src_names.begin());
  size_t ti = 0;
  // Paired like the inputs: by name, else by position; with different output counts only a
  // Target output of the same name will do.
  auto pairing = pair_by_name_or_order(src_names, tgt_names, "outputs", source_.label, target_.label);
  if (pairing.ok()) {
    ti = pairing->target_of_source[si];
  } else {
    auto t = std::find(tgt_names.begin(), tgt_names.end(), name);
    if (t == tgt_names.end())
      return make_error("--task {}: {} has no output '{}' and its outputs ({}) cannot be paired with the Source's by "
                        "position", task_.kind, target_.label, name, quoted_names(tgt_names));
    ti = static_cast<size_t>(t - tgt_names.begin());
  }
  if (std::find(source_used_.begin(), source_used_.end(), si) == source_used_.end()) {
    source_used_.push_back(si);
    target_used_.push_back(ti);
  }
  return std::make_pair(si, ti);
}

Result<std::pair<size_t, size_t>> Comparator::resolve_output(const std::string& key, const std::string& fallback_name) {
  if (auto name = task_.get(key)) return resolve_named(*name);
  const auto src_names = names_of(source_);
  if (!fallback_name.empty() && std::find(src_names.begin(), src_names.end(), fallback_name) != src_names.end())
    return resolve_named(fallback_name);
  if (src_names.size() == 1) return resolve_named(src_names[0]);
  return make_error("--task {}: {} has {} outputs ({}); name the one to read with {}=NAME", task_.kind, source_.label,
                    src_names.size(), describe_outputs(source_), key);
}

Result<std::vector<std::pair<size_t, size_t>>> Comparator::resolve_all() {
  std::vector<std::pair<size_t, size_t>> pairs;
  for (const auto& o : source_.outputs) {
    FETAFIX_ASSIGN_OR_RETURN(auto p, resolve_named(o.name));
    pairs.push_back(p);
  }
  return pairs;
}

TaskSummary Comparator::summarize(std::span<const Verdict>) const { return {}; }

ComparatorRegistry& ComparatorRegistry::instance() {
  static ComparatorRegistry* registry = [] {
    auto* r = new ComparatorRegistry();
    for (auto kind : {label_comparator_kind(), boxes_comparator_kind(), mask_comparator_kind(), text_comparator_kind(),
                      tensor_comparator_kind()})
      (void)r->add(std::move(kind));
    return r;
  }();
  return *registry;
}

Status ComparatorRegistry::add(ComparatorKind kind) {
  if (find(kind.name)) return make_error("comparator kind '{}' is already registered", kind.name);
  kinds_.push_back(std::move(kind));
  return {};
}

const ComparatorKind* ComparatorRegistry::find(std::string_view name) const {
  for (const auto& k : kinds_)
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> ComparatorRegistry::names() const {
  std::vector<std::string> n;
  for (const auto& k : kinds_) n.push_back(k.name);
  return n;
}

Result<TaskSpec> ComparatorRegistry::parse(const std::string& text) const {
  FETAFIX_ASSIGN_OR_RETURN(TaskSpec task, split_task(text));
  const ComparatorKind* kind = find(task.kind);
  if (!kind) return make_error("--task: unknown kind '{}' (kinds: {})", task.kind, fmt::format("{}", fmt::join(names(), ", ")));
  FETAFIX_TRY_STATUS(validate_task(task, kind->options));
  return task;
}

Result<std::unique_ptr<Comparator>> make_comparator(const TaskSpec& task, const ModelOutputs& source,
                                                    const ModelOutputs& target) {
  const ComparatorRegistry& registry = ComparatorRegistry::instance();
  TaskSpec effective = task;
  if (effective.kind.empty()) {
    auto class_scores = [](const ModelOutputs& m) { return m.outputs.size() == 1 && m.outputs[0].shape.size() == 2; };
    if (!class_scores(source) || !class_scores(target)) {
      std::vector<std::string> fitting;
      for (const auto& name : registry.names())
        if (const auto* k = registry.find(name); k->fits && k->fits(source.outputs)) fitting.push_back(name);
      const std::string target_part =
          describe_outputs(source) == describe_outputs(target) ? "" : fmt::format(" (Target: {})", describe_outputs(target));
      return make_error("{}: outputs {}{} do not look like class scores (one output of shape [batch, classes]); say "
                        "what to compare with --task KIND[:key=value,...], KIND one of: {}",
                        source.label, describe_outputs(source), target_part, fmt::format("{}", fmt::join(fitting, ", ")));
    }
    effective.kind = "label";
  }
  const ComparatorKind* kind = registry.find(effective.kind);
  if (!kind)
    return make_error("--task: unknown kind '{}' (kinds: {})", effective.kind, fmt::format("{}", fmt::join(registry.names(), ", ")));
  FETAFIX_TRY_STATUS(validate_task(effective, kind->options));
  FETAFIX_ASSIGN_OR_RETURN(auto comparator, kind->make(effective));
  FETAFIX_TRY_STATUS(comparator->bind(source, target));
  return comparator;
}

}  // namespace fetafix::compare
