// WB: weights rounded the way a converter's weight compression rounds them (TFLiteConverter with
// Optimize.DEFAULT: float16 storage, or int8 quantize-dequantize per tensor or per channel).
#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "inject/injection_context.h"
#include "model/attributes.h"
#include "model/weights.h"

namespace fetafix::inject::detail {
namespace {

// Round to nearest even at float16 precision (10 mantissa bits, subnormals below 2^-14,
// overflow to infinity past 65504), returned as float: what storing as float16 keeps.
float round_to_float16(float v) {
  if (!std::isfinite(v) || v == 0.0f) return v;
  const double a = std::fabs(static_cast<double>(v));
  double r;
  if (a >= 65520.0) {
    r = INFINITY;
  } else if (a < std::ldexp(1.0, -14)) {
    r = std::nearbyint(a * std::ldexp(1.0, 24)) * std::ldexp(1.0, -24);
  } else {
    int exponent = 0;
    const double mantissa = std::frexp(a, &exponent);  // [0.5, 1)
    r = std::ldexp(std::nearbyint(mantissa * 2048.0), exponent - 11);
  }
  return static_cast<float>(std::copysign(r, static_cast<double>(v)));
}

float round_to_bfloat16(float v) {
  if (std::isnan(v)) return v;
  uint32_t bits = std::bit_cast<uint32_t>(v);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return std::bit_cast<float>(bits & 0xFFFF0000u);
}

// Symmetric int8 in [-127, 127] (TFLite's weight quantization), dequantized again.
void quantize_dequantize(std::span<float> values) {
  float max_abs = 0;
  for (float f : values) max_abs = std::max(max_abs, std::fabs(f));
  if (max_abs == 0 || !std::isfinite(max_abs)) return;
  const float scale = max_abs / 127.0f;
  for (float& f : values) f = std::clamp(std::nearbyint(f / scale), -127.0f, 127.0f) * scale;
}

void quantize_per_channel(Tensor& t, int64_t axis) {
  const int64_t channels = t.shape[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < t.shape.size(); ++d) inner *= t.shape[d];
  const int64_t outer = channels == 0 ? 0 : t.numel() / (channels * inner);
  std::vector<float> channel;
  for (int64_t c = 0; c < channels; ++c) {
    channel.clear();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) channel.push_back(t.data<float>()[(o * channels + c) * inner + i]);
    quantize_dequantize(channel);
    size_t k = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) t.data<float>()[(o * channels + c) * inner + i] = channel[k++];
  }
}

bool is_float_weight(const onnx::ModelProto& m, const std::string& value) {
  const auto w = model::find_weight(m, value);
  return w && w->dtype == DType::kFloat32;
}

bool is_layer(const onnx::NodeProto& n) {
  return n.domain().empty() &&
         (n.op_type() == "Conv" || n.op_type() == "ConvTranspose" || n.op_type() == "Gemm" || n.op_type() == "MatMul");
}

// The output-channel axis of a layer's weight, the axis TFLite quantizes per channel along.
int64_t output_channel_axis(const onnx::NodeProto& n, const Tensor& weight) {
  if (n.op_type() == "ConvTranspose") return weight.shape.size() > 1 ? 1 : 0;
  if (n.op_type() == "Gemm") {
    const auto trans_b = model::get_int_or(n, "transB", 0);
    return trans_b.ok() && *trans_b != 0 ? 0 : 1;
  }
  if (n.op_type() == "MatMul") return static_cast<int64_t>(weight.shape.size()) - 1;
  return 0;
}

}  // namespace

Result<Injected> inject_weights(Injection& in) {
  const std::string& fault = in.spec().fault;
  if (!in.spec().value.empty()) return make_error("'{}' takes no value", fault);
  const bool float_rounding = fault == "fp16" || fault == "bf16";
  const auto& m = in.model();

  // (weight value, layer handle) pairs, each weight once, in node order.
  std::vector<std::pair<std::string, std::string>> targets;
  std::set<std::string> seen;
  if (float_rounding && (in.spec().nodes.empty() || in.spec().nodes == std::vector<std::string>{"all"})) {
    // Float16 storage converts every float constant, not only the layers' kernels.
    for (const auto& w : model::list_weights(m))
      if (w.dtype == DType::kFloat32 && seen.insert(w.value).second) targets.emplace_back(w.value, "");
  } else {
    auto eligible = [&](const onnx::NodeProto& n) {
      if (float_rounding)
        return std::any_of(n.input().begin(), n.input().end(), [&](const auto& i) { return is_float_weight(m, i); });
      return is_layer(n) && n.input_size() > 1 && is_float_weight(m, n.input(1));
    };
    FETAFIX_ASSIGN_OR_RETURN(auto handles,
                             in.select_nodes(eligible,
                                             float_rounding ? "node reading a float32 weight"
                                                            : "Conv/ConvTranspose/Gemm/MatMul with a float32 weight",
                                             DefaultNodes::kAll));
    for (const auto& h : handles) {
      const auto& n = in.node(h);
      for (int k = 0; k < n.input_size(); ++k) {
        if (!float_rounding && k != 1) continue;
        if (is_float_weight(m, n.input(k)) && seen.insert(n.input(k)).second) targets.emplace_back(n.input(k), h);
      }
    }
  }

  Injected out;
  for (const auto& [value, handle] : targets) {
    FETAFIX_ASSIGN_OR_RETURN(Tensor t, model::get_weight(in.model(), value));
    const Tensor original = t;
    if (fault == "fp16") {
      for (float& f : t.span<float>()) f = round_to_float16(f);
    } else if (fault == "bf16") {
      for (float& f : t.span<float>()) f = round_to_bfloat16(f);
    } else if (fault == "int8-tensor" || t.shape.empty()) {
      quantize_dequantize(t.span<float>());
    } else {
      quantize_per_channel(t, output_channel_axis(in.node(handle), t));
    }
    if (t.bytes == original.bytes) continue;  // already representable: nothing to plant here
    FETAFIX_TRY_STATUS(in.apply(model::Edit::set_weight(value, t)));
    out.values.push_back(value);
  }
  // The nodes that read a changed weight are the ones whose output the fault changes.
  const std::set<std::string> changed(out.values.begin(), out.values.end());
  for (const auto& n : in.graph().node())
    if (std::any_of(n.input().begin(), n.input().end(), [&](const auto& i) { return changed.count(i) > 0; }))
      out.node_handles.push_back(Injection::handle_of(n));
  static const std::map<std::string, std::string> kHow{
      {"fp16", "rounded to float16"},
      {"bf16", "rounded to bfloat16"},
      {"int8-tensor", "quantized to int8 per tensor and dequantized"},
      {"int8-channel", "quantized to int8 per output channel and dequantized"}};
  out.description = fmt::format("{} weight(s) {}", out.values.size(), kHow.at(fault));
  return out;
}

}  // namespace fetafix::inject::detail
