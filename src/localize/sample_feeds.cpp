#include "localize/sample_feeds.h"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include "compare/runner.h"

namespace fetafix::localize {

std::vector<data::InputSlot> declared_inputs(const onnx::ModelProto& model) {
  std::unordered_set<std::string> initializers;
  for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
  std::vector<data::InputSlot> slots;
  for (const auto& in : model.graph().input()) {
    if (initializers.count(in.name())) continue;
    data::InputSlot slot{in.name(), static_cast<DType>(in.type().tensor_type().elem_type()), {}};
    for (const auto& d : in.type().tensor_type().shape().dim())
      slot.shape.push_back(d.has_dim_value() && d.dim_value() > 0 ? d.dim_value() : -1);
    slots.push_back(std::move(slot));
  }
  return slots;
}

Result<SampleInputs> feed_samples(const compare::ModelSide& source, const compare::ModelSide& target,
                                  const DetectionView& view, const std::vector<size_t>& chosen) {
  if (chosen.empty()) return make_error("no sample chosen to feed");
  FETAFIX_ASSIGN_OR_RETURN(auto plan, data::plan_feeds(view.samples, declared_inputs(*source.model),
                                                       declared_inputs(*target.model), view.source_preset,
                                                       view.target_preset, source.label, target.label));
  std::vector<compare::Feed> s(chosen.size()), t(chosen.size());
  std::vector<std::string> errors(chosen.size());
  tbb::parallel_for(size_t{0}, chosen.size(), [&](size_t j) {
    const size_t i = chosen[j];
    const std::string& name = view.samples.files().at(i).name;
    auto sample = view.samples.decode(i);
    auto src = sample.ok() ? plan.source.feed(*sample, name) : Result<compare::Feed>(sample.error());
    auto tgt = src.ok() ? plan.target.feed(*sample, name) : Result<compare::Feed>(src.error());
    if (!tgt.ok()) { errors[j] = tgt.error().message; return; }
    s[j] = std::move(src).value();
    t[j] = std::move(tgt).value();
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{}", e);
  std::vector<const compare::Feed*> sp, tp;
  for (size_t j = 0; j < chosen.size(); ++j) {
    sp.push_back(&s[j]);
    tp.push_back(&t[j]);
  }
  SampleInputs out{compare::stack_feeds(sp), compare::stack_feeds(tp)};
  if (out.source.empty() || out.target.empty())
    return make_error("the {} samples chosen do not stack into one batch (their arrays differ in shape)",
                      chosen.size());
  return out;
}

SampleInputs rows_of(const SampleInputs& fed, const std::vector<size_t>& fed_indices,
                     const std::vector<size_t>& chosen) {
  std::vector<size_t> rows;
  rows.reserve(chosen.size());
  for (size_t i : chosen)
    rows.push_back(static_cast<size_t>(std::lower_bound(fed_indices.begin(), fed_indices.end(), i) - fed_indices.begin()));
  SampleInputs out;
  for (const auto& t : fed.source) out.source.push_back(compare::gather_rows(t, rows));
  for (const auto& t : fed.target) out.target.push_back(compare::gather_rows(t, rows));
  return out;
}

bool single_image_input(const DetectionView& view, const onnx::ModelProto& source, const onnx::ModelProto& target) {
  return view.samples.size() > 0 && view.samples.images_only() && declared_inputs(source).size() == 1 &&
         declared_inputs(target).size() == 1;
}

}  // namespace fetafix::localize
