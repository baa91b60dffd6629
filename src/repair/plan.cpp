#include "repair/plan.h"

#include <cstring>
#include <set>

#include "model/attributes.h"
#include "model/graph.h"

namespace fetafix::repair::detail {

Status Plan::add(model::Edit edit) {
  if (auto st = log_.apply(edit); !st.ok()) return make_error("{}: {}", label_, st.error().message);
  return {};
}

bool Plan::try_add(model::Edit edit) { return log_.apply(edit).ok(); }

namespace {
std::set<std::string> used_values(const onnx::GraphProto& g) {
  std::set<std::string> names;
  for (const auto& v : g.input()) names.insert(v.name());
  for (const auto& v : g.output()) names.insert(v.name());
  for (const auto& t : g.initializer()) names.insert(t.name());
  for (const auto& n : g.node()) {
    names.insert(n.input().begin(), n.input().end());
    names.insert(n.output().begin(), n.output().end());
  }
  return names;
}

std::string first_free(const std::string& base, const std::set<std::string>& used) {
  if (!used.count(base)) return base;
  for (int k = 2;; ++k) {
    std::string candidate = base + "_" + std::to_string(k);
    if (!used.count(candidate)) return candidate;
  }
}
}  // namespace

std::string Plan::unique_value_name(const std::string& base) const { return first_free(base, used_values(scratch_.graph())); }

std::string Plan::unique_node_name(const std::string& base) const {
  const auto names = model::name_nodes(scratch_.graph());
  return first_free(base, {names.names.begin(), names.names.end()});
}

int Plan::producer_index(const std::string& value) const {
  const auto& g = scratch_.graph();
  for (int i = 0; i < g.node_size(); ++i)
    for (const auto& o : g.node(i).output())
      if (o == value) return i;
  return -1;
}

std::string Plan::producer_name(const std::string& value) const {
  const int i = producer_index(value);
  return i < 0 ? std::string() : model::name_nodes(scratch_.graph()).names[static_cast<size_t>(i)];
}

Status Plan::insert_transpose_before(const std::string& node_name, int input_index, const std::vector<int64_t>& perm) {
  auto position = model::find_node(scratch_.graph(), node_name);
  if (!position) return make_error("{}: no node named '{}' in the Target", label_, node_name);
  const auto& consumer = scratch_.graph().node(static_cast<int>(*position));
  if (input_index >= consumer.input_size())
    return make_error("{}: node '{}' has no input {}", label_, node_name, input_index);
  const std::string consumer_output = consumer.output_size() ? consumer.output(0) : "";
  onnx::NodeProto t;
  t.set_op_type("Transpose");
  t.set_name(unique_node_name(node_name + "_fetafix_transpose"));
  t.add_input(consumer.input(input_index));
  const std::string out = unique_value_name(t.name() + "_out");
  t.add_output(out);
  model::set_ints(t, "perm", perm);
  FETAFIX_TRY_STATUS(add(model::Edit::insert_node(t, static_cast<int64_t>(*position))));
  // The consumer moved one place down: a synthesized name changes with it.
  const std::string moved = consumer_output.empty()
                                ? model::name_nodes(scratch_.graph()).names[*position + 1]
                                : producer_name(consumer_output);
  return add(model::Edit::set_node_input(moved, input_index, out));
}

bool is_float_dtype(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBFloat16 || d == DType::kFloat64;
}

namespace {
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504: infinity
  if (abs < 0x38800000u) {  // subnormal half (or zero): value / 2^-24, rounded to nearest even
    float magnitude;
    std::memcpy(&magnitude, &abs, 4);
    const float scaled = magnitude * 16777216.0f;  // exact: a power of two
    const auto q = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(q);
    uint32_t r = q + ((rest > 0.5f || (rest == 0.5f && (q & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | r);
  }
  const uint32_t mant_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + mant_odd;  // round to nearest even on the dropped 13 bits
  return static_cast<uint16_t>(sign | (((rounded - 0x38000000u) >> 13) & 0x7fffu));
}

uint16_t float_to_bfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}
}  // namespace

Result<Tensor> floats_as(const std::vector<float>& values, const std::vector<int64_t>& shape, DType dtype) {
  Tensor t(dtype, shape);
  if (static_cast<size_t>(t.numel()) != values.size())
    return make_error("{} values do not fill shape {}", values.size(), shape_to_string(shape));
  switch (dtype) {
    case DType::kFloat32: std::memcpy(t.bytes.data(), values.data(), t.bytes.size()); break;
    case DType::kFloat64:
      for (size_t i = 0; i < values.size(); ++i) t.data<double>()[i] = values[i];
      break;
    case DType::kFloat16:
      for (size_t i = 0; i < values.size(); ++i) reinterpret_cast<uint16_t*>(t.bytes.data())[i] = float_to_half(values[i]);
      break;
    case DType::kBFloat16:
      for (size_t i = 0; i < values.size(); ++i)
        reinterpret_cast<uint16_t*>(t.bytes.data())[i] = float_to_bfloat16(values[i]);
      break;
    default: return make_error("cannot store float values as {}", dtype_name(dtype));
  }
  return t;
}

}  // namespace fetafix::repair::detail
