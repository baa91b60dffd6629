// PP: a Target that expects another preprocessing preset than its Source. The graph gets, after
// its input, the affine map (and channel reversal) that turns preset P's tensor into preset
// FROM's: fed P's preprocessing the Target computes what the Source did on FROM's, so fed the
// Source's own preprocessing it is wrong, the mistake a PP fault is.
#include <fmt/format.h>

#include "data/preprocess.h"
#include "inject/injection_context.h"
#include "model/attributes.h"

namespace fetafix::inject::detail {

Result<Injected> inject_preprocessing(Injection& in) {
  const auto& spec = in.spec();
  if (spec.fault != "preset") return make_error("fault '{}' is not supported yet", spec.text);
  if (spec.value.empty()) return make_error("'preset' needs a preset name, e.g. preset=caffe");
  const auto from_it = spec.options.find("from");
  const std::string from_name = from_it == spec.options.end() ? "torch" : from_it->second;
  FETAFIX_ASSIGN_OR_RETURN(data::Preset target, data::preset_by_name(spec.value));
  FETAFIX_ASSIGN_OR_RETURN(data::Preset source, data::preset_by_name(from_name));
  for (const auto* p : {&target, &source})
    if (p->dtype != DType::kFloat32) return make_error("preset '{}' makes uint8; only float presets can be planted", p->name);
  if (target.name == source.name) return make_error("preset '{}' is the one the model already expects", target.name);

  FETAFIX_ASSIGN_OR_RETURN(std::string input, in.first_real_input());
  FETAFIX_ASSIGN_OR_RETURN(auto dims, input_dims(in.graph(), input));
  int64_t channel_axis = -1;
  if (dims.size() == 4 && dims[1] == 3) channel_axis = 1;
  else if (dims.size() == 4 && dims[3] == 3) channel_axis = 3;
  if (channel_axis < 0) return make_error("input '{}' {} is not an RGB image batch", input, shape_to_string(dims));

  // In FROM's channel order c, the value came from channel k of P's tensor (k = 2 - c when the
  // orders differ): pixel = (v*std_P[k] + mean_P[k]) / scale_P, then FROM's formula.
  const bool swap = target.channels != source.channels;
  std::vector<float> a(3), b(3);
  for (int c = 0; c < 3; ++c) {
    const int k = swap ? 2 - c : c;
    a[c] = target.std[k] * source.scale / (target.scale * source.std[c]);
    b[c] = (target.mean[k] * source.scale / target.scale - source.mean[c]) / source.std[c];
  }
  const std::vector<int64_t> constant_shape = channel_axis == 1 ? std::vector<int64_t>{1, 3, 1, 1}
                                                                : std::vector<int64_t>{1, 1, 1, 3};
  Injected out;
  std::string x = input;
  const std::string base = input + "_as_" + source.name;
  int64_t position = 0;
  if (swap) {
    const std::string order = in.fresh_name(base + "_channel_order");
    FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(order, int64_tensor({3}, {2, 1, 0}))));
    const std::string swapped = in.fresh_name(base + "_swapped");
    FETAFIX_TRY_STATUS(in.apply(model::Edit::insert_node(
        make_node("Gather", in.fresh_name(base + "_swap"), {x, order}, {swapped}, {Attr::i("axis", channel_axis).proto}),
        position++)));
    out.values.push_back(order);
    out.node_handles.push_back(swapped);
    x = swapped;
  }
  const std::string scale = in.fresh_name(base + "_scale"), shift = in.fresh_name(base + "_shift");
  FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(scale, float_tensor(constant_shape, a))));
  FETAFIX_TRY_STATUS(in.apply(model::Edit::add_initializer(shift, float_tensor(constant_shape, b))));
  const std::string scaled = in.fresh_name(base + "_scaled"), shifted = in.fresh_name(base);
  FETAFIX_TRY_STATUS(in.apply(
      model::Edit::insert_node(make_node("Mul", in.fresh_name(base + "_mul"), {x, scale}, {scaled}), position++)));
  FETAFIX_TRY_STATUS(in.apply(
      model::Edit::insert_node(make_node("Add", in.fresh_name(base + "_add"), {scaled, shift}, {shifted}), position++)));
  // Every node but the ones just inserted now reads the converted tensor.
  std::vector<std::pair<std::string, int>> uses;
  for (const auto& n : in.graph().node()) {
    const std::string h = Injection::handle_of(n);
    if (h == scaled || h == shifted || (swap && h == x)) continue;
    for (int k = 0; k < n.input_size(); ++k)
      if (n.input(k) == input) uses.emplace_back(h, k);
  }
  for (const auto& [h, k] : uses) {
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_node_input(in.node_name(h), k, shifted)));
    out.node_handles.push_back(h);
  }
  out.values.insert(out.values.end(), {scale, shift});
  out.node_handles.insert(out.node_handles.end(), {scaled, shifted});
  out.details = {{"input", input}, {"source_preset", source.name}, {"target_preset", target.name}};
  out.description = fmt::format("the model now expects input '{}' preprocessed with preset '{}' instead of '{}'",
                                input, target.name, source.name);
  return out;
}

}  // namespace fetafix::inject::detail
