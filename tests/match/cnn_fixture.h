// A small deterministic CNN, built in the forms converters produce, for the matching tests.
// Source and Target built with different options share every weight (same seeds), so the
// true pairing is known: Source "conv3" <-> Target "<prefix>conv3".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "model/builder.h"

namespace fetafix::testing {

enum class BnForm { kSeparate, kFoldedIntoConv, kMulAdd };

struct CnnOptions {
  std::string prefix;                   // prepended to every node and value name
  BnForm bn = BnForm::kSeparate;
  bool weights_as_constants = false;
  bool hwio_weights = false;            // stored [kh,kw,in/g,out], Transpose(3,2,0,1) before the Conv
  bool insert_noops = false;            // Cast, Identity, explicit Pad, an NHWC Transpose pair
  bool qdq_weights = false;             // int8 weights behind DequantizeLinear
  bool fp16_rounded_weights = false;    // fault: weights rounded to float16 precision
  int scaled_layer = -1;                // fault: this conv's weights times 3
  bool drop_dw_pads = false;            // fault: the depthwise conv loses its pads
  bool extra_conv = false;              // an extra 8->8 1x1 conv after conv2 ("extra")
  bool drop_conv7 = false;              // conv7 is missing
  bool fc_as_matmul = false;            // head as MatMul([16,10]) + Add instead of Gemm(transB=1)
  bool hard_swish = false;              // activation x * Clip(x + 3, 0, 6) / 6 instead of Relu
  bool unbounded_hard_swish = false;    // fault: those Clips lose their max
  float hard_swish_max = 6.0f;          // their max (TF's ReLU6 is sometimes written 5.99976)
};

struct ConvSpec {
  const char* name;
  int64_t in, out, kernel, stride, group;
  bool bn;
};

// conv2, conv3, conv4 have equal weight shapes, as have conv7 and conv8, which are also parallel
// branches at the same depth: where naive matching fails.
inline const std::vector<ConvSpec>& cnn_layers() {
  static const std::vector<ConvSpec> layers{
      {"conv1", 3, 8, 3, 1, 1, true},   {"conv2", 8, 8, 3, 1, 1, true},  {"conv3", 8, 8, 3, 1, 1, true},
      {"conv4", 8, 8, 3, 2, 1, false},  {"conv5", 8, 16, 1, 1, 1, true}, {"conv6", 16, 16, 3, 1, 16, false},
      {"conv7", 16, 16, 1, 1, 1, false}, {"conv8", 16, 16, 1, 1, 1, false}};
  return layers;
}

inline float round_to_half_precision(float v) {
  if (v == 0.0f || !std::isfinite(v)) return v;
  int exponent = 0;
  const double mantissa = std::frexp(static_cast<double>(v), &exponent);  // [0.5, 1)
  return static_cast<float>(std::ldexp(std::nearbyint(mantissa * 2048.0) / 2048.0, exponent));
}

class CnnBuilder {
 public:
  explicit CnnBuilder(CnnOptions o) : o_(std::move(o)), b_("cnn", 13) {}

  onnx::ModelProto build() {
    std::string x = b_.input(v("input"), DType::kFloat32, {1, 3, 32, 32});
    if (o_.insert_noops) {  // NCHW -> NHWC -> NCHW, as NHWC converters leave around layers
      x = b_.node("Transpose", n("to_nhwc"), {x}, {Attr::ints("perm", {0, 2, 3, 1})}, v("nhwc"));
      x = b_.node("Transpose", n("to_nchw"), {x}, {Attr::ints("perm", {0, 3, 1, 2})}, v("nchw"));
    }
    const auto& layers = cnn_layers();
    std::string after_conv1, after_conv6;
    for (size_t i = 0; i < layers.size(); ++i) {
      const ConvSpec& spec = layers[i];
      const std::string name = spec.name;
      if (name == "conv7") {  // conv7 and conv8 are parallel branches from conv6, summed
        after_conv6 = x;
        if (o_.drop_conv7) continue;
      }
      if (name == "conv8") {
        const std::string branch = conv_block(spec, static_cast<int>(i), after_conv6);
        x = o_.drop_conv7 ? branch : b_.node("Add", n("branch_sum"), {x, branch}, {}, v("branch_sum"));
        continue;
      }
      x = conv_block(spec, static_cast<int>(i), x);
      if (i == 0) after_conv1 = x;
      if (std::string(spec.name) == "conv2" && o_.extra_conv)
        x = conv_block({"extra", 8, 8, 1, 1, 1, false}, 40, x);
      if (std::string(spec.name) == "conv3")  // residual
        x = b_.node("Add", n("residual"), {x, after_conv1}, {}, v("residual"));
    }
    x = b_.node("GlobalAveragePool", n("gap"), {x}, {}, v("gap"));
    x = b_.node("Flatten", n("flatten"), {x}, {Attr::i("axis", 1)}, v("flat"));
    Tensor w = random_tensor({10, 16}, 900, 0.3f);
    Tensor bias = random_tensor({10}, 901, 0.1f);
    if (o_.fc_as_matmul) {
      const std::string wt = store(v("fc_w"), transpose2d(w));
      x = b_.node("MatMul", n("fc"), {x, wt}, {}, v("fc_mm"));
      x = b_.node("Add", n("fc_bias"), {x, store(v("fc_b"), bias)}, {}, v("logits"));
    } else {
      x = b_.node("Gemm", n("fc"), {x, store(v("fc_w"), w), store(v("fc_b"), bias)}, {Attr::i("transB", 1)},
                  v("logits"));
    }
    b_.output(x, DType::kFloat32, {1, 10});
    return b_.build();
  }

 private:
  std::string n(const std::string& s) const { return o_.prefix + s; }
  std::string v(const std::string& s) const { return o_.prefix + s; }

  static Tensor transpose2d(const Tensor& t) {
    Tensor out(DType::kFloat32, {t.shape[1], t.shape[0]});
    for (int64_t r = 0; r < t.shape[0]; ++r)
      for (int64_t c = 0; c < t.shape[1]; ++c) out.data<float>()[c * t.shape[0] + r] = t.data<float>()[r * t.shape[1] + c];
    return out;
  }

  // Stores a float tensor the way the options say and returns the value a node should consume.
  std::string store(const std::string& name, Tensor t) {
    if (o_.fp16_rounded_weights)
      for (float& f : t.span<float>()) f = round_to_half_precision(f);
    if (o_.qdq_weights && t.shape.size() >= 2) {
      float max_abs = 0;
      for (float f : t.span<float>()) max_abs = std::max(max_abs, std::fabs(f));
      const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f;
      Tensor q(DType::kInt8, t.shape);
      for (int64_t k = 0; k < t.numel(); ++k)
        q.data<int8_t>()[k] = static_cast<int8_t>(std::lround(t.data<float>()[k] / scale));
      Tensor zp(DType::kInt8, {});
      zp.data<int8_t>()[0] = 0;
      const std::string qv = raw_store(name + "_q", q);
      const std::string sv = raw_store(name + "_scale", float_tensor({}, {scale}));
      const std::string zv = raw_store(name + "_zp", zp);
      return b_.node("DequantizeLinear", name + "_dq", {qv, sv, zv}, {}, name + "_dequant");
    }
    return raw_store(name, t);
  }
  std::string raw_store(const std::string& name, const Tensor& t) {
    return o_.weights_as_constants ? b_.constant(name, t) : b_.initializer(name, t);
  }

  // OIHW weight -> what the Conv consumes (possibly through a Transpose from HWIO storage).
  std::string conv_weight(const std::string& name, const Tensor& oihw) {
    if (!o_.hwio_weights) return store(name, oihw);
    const int64_t O = oihw.shape[0], I = oihw.shape[1], H = oihw.shape[2], W = oihw.shape[3];
    Tensor hwio(DType::kFloat32, {H, W, I, O});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            hwio.data<float>()[((h * W + w) * I + i) * O + o] = oihw.data<float>()[((o * I + i) * H + h) * W + w];
    const std::string stored = store(name + "_hwio", hwio);
    return b_.node("Transpose", name + "_to_oihw", {stored}, {Attr::ints("perm", {3, 2, 0, 1})}, name);
  }

  std::string conv_block(const ConvSpec& s, int index, std::string x) {
    const auto seed = static_cast<uint64_t>(index);
    Tensor w = random_tensor({s.out, s.in / s.group, s.kernel, s.kernel}, 100 + seed, 0.3f);
    Tensor bias = random_tensor({s.out}, 200 + seed, 0.1f);
    if (index == o_.scaled_layer)
      for (float& f : w.span<float>()) f *= 3.0f;
    Tensor gamma = uniform_tensor({s.out}, 300 + seed, 0.5f, 2.0f), beta = random_tensor({s.out}, 400 + seed, 0.2f);
    Tensor mean = random_tensor({s.out}, 500 + seed, 0.2f), var = uniform_tensor({s.out}, 600 + seed, 0.5f, 2.0f);
    const float eps = 1e-5f;
    std::vector<float> a(static_cast<size_t>(s.out)), c(static_cast<size_t>(s.out));
    for (size_t k = 0; k < a.size(); ++k) {
      a[k] = gamma.span<float>()[k] / std::sqrt(var.span<float>()[k] + eps);
      c[k] = beta.span<float>()[k] - mean.span<float>()[k] * a[k];
    }
    const bool fold = s.bn && o_.bn == BnForm::kFoldedIntoConv;
    if (fold) {
      const int64_t per_channel = w.numel() / s.out;
      for (int64_t k = 0; k < w.numel(); ++k) w.data<float>()[k] *= a[static_cast<size_t>(k / per_channel)];
      for (size_t k = 0; k < a.size(); ++k) bias.data<float>()[k] = bias.data<float>()[k] * a[k] + c[k];
    }
    const std::string name = s.name;
    int64_t pad = s.kernel / 2;
    if (o_.drop_dw_pads && s.group > 1) pad = 0;
    if (o_.insert_noops) {
      x = b_.node("Cast", n(name + "_cast"), {x}, {Attr::i("to", 1)}, v(name + "_cast"));
      if (pad > 0) {  // explicit Pad node and a Conv without pads, as tf2onnx emits for SAME padding
        const std::string pads = raw_store(v(name + "_pads"), int64_tensor({8}, {0, 0, pad, pad, 0, 0, pad, pad}));
        x = b_.node("Pad", n(name + "_pad"), {x, pads}, {}, v(name + "_padded"));
        pad = 0;
      }
    }
    std::vector<Attr> attrs{Attr::ints("kernel_shape", {s.kernel, s.kernel}), Attr::ints("strides", {s.stride, s.stride}),
                            Attr::i("group", s.group)};
    if (pad > 0) attrs.push_back(Attr::ints("pads", {pad, pad, pad, pad}));
    const std::string wv = conv_weight(v(name + "_w"), w);
    x = b_.node("Conv", n(name), {x, wv, store(v(name + "_b"), bias)}, attrs, v(name + "_out"));
    if (o_.insert_noops) x = b_.node("Identity", n(name + "_identity"), {x}, {}, v(name + "_id"));
    if (s.bn && o_.bn == BnForm::kSeparate) {
      x = b_.node("BatchNormalization", n(name + "_bn"),
                  {x, store(v(name + "_gamma"), gamma), store(v(name + "_beta"), beta), store(v(name + "_mean"), mean),
                   store(v(name + "_var"), var)},
                  {Attr::f("epsilon", eps)}, v(name + "_bn"));
    } else if (s.bn && o_.bn == BnForm::kMulAdd) {
      x = b_.node("Mul", n(name + "_scale"), {x, store(v(name + "_a"), float_tensor({s.out, 1, 1}, a))}, {},
                  v(name + "_scaled"));
      x = b_.node("Add", n(name + "_shift"), {x, store(v(name + "_c"), float_tensor({s.out, 1, 1}, c))}, {},
                  v(name + "_shifted"));
    }
    if (o_.hard_swish) {  // x feeds the Add and the Mul: a fork right after the layer
      const std::string shifted = b_.node("Add", n(name + "_hs_add"), {x, store(v(name + "_hs_three"), float_tensor({}, {3.0f}))},
                                          {}, v(name + "_hs_shifted"));
      std::vector<std::string> clip_inputs{shifted, store(v(name + "_hs_min"), float_tensor({}, {0.0f}))};
      if (!o_.unbounded_hard_swish) clip_inputs.push_back(store(v(name + "_hs_max"), float_tensor({}, {o_.hard_swish_max})));
      const std::string gate = b_.node("Clip", n(name + "_hs_clip"), clip_inputs, {}, v(name + "_hs_gate"));
      const std::string product = b_.node("Mul", n(name + "_hs_mul"), {x, gate}, {}, v(name + "_hs_product"));
      return b_.node("Div", n(name + "_hs_div"), {product, store(v(name + "_hs_six"), float_tensor({}, {6.0f}))}, {},
                     v(name + "_hs"));
    }
    return b_.node("Relu", n(name + "_relu"), {x}, {}, v(name + "_relu"));
  }

  CnnOptions o_;
  GraphBuilder b_;
};

inline onnx::ModelProto build_cnn(CnnOptions options = {}) { return CnnBuilder(std::move(options)).build(); }

// CnnOptions with some fields changed: cnn_options([](CnnOptions& o) { o.scaled_layer = 2; }).
// (Designated initializers would warn about every field left out.)
template <class F>
CnnOptions cnn_options(F change) {
  CnnOptions o;
  change(o);
  return o;
}

// The model with every layer weight ("..._w"), or only those in `only`, changed in place: zeroed,
// or replaced by unrelated values of the same shape (the bytes reversed scramble the floats) — a
// re-initialized or broken Target.
inline onnx::ModelProto with_weights_changed(onnx::ModelProto model, const std::set<std::string>& only = {},
                                             bool zero = false) {
  for (auto& init : *model.mutable_graph()->mutable_initializer()) {
    if (init.name().find("_w") == std::string::npos || (!only.empty() && !only.count(init.name()))) continue;
    std::string& raw = *init.mutable_raw_data();
    if (zero) std::fill(raw.begin(), raw.end(), '\0');
    else std::reverse(raw.begin(), raw.end());
  }
  return model;
}

}  // namespace fetafix::testing
