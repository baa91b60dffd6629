#include "support/op_form_models.h"

#include <cmath>
#include <functional>
#include <map>
#include <numbers>

#include <gtest/gtest.h>

#include "model/builder.h"

namespace fetafix::testing {
namespace {

// Writes one form reading `x` whose last node writes `out`; `p` prefixes every other name.
struct FormWriter {
  GraphBuilder& g;
  std::string p;
  int64_t opset;

  std::string scalar(const std::string& name, float v) { return g.initializer(p + name, float_tensor({}, {v})); }
  std::string op(const std::string& type, const std::string& name, std::vector<std::string> in,
                 std::vector<Attr> attrs = {}, const std::string& out = "") {
    return g.node(type, p + name, std::move(in), std::move(attrs), out.empty() ? p + name + "_out" : out);
  }
  // Clip(lo, hi) in the opset's form; NAN leaves a bound out.
  std::string clip(const std::string& x, float lo, float hi, const std::string& out, bool constant_nodes = false) {
    if (opset < 11) {
      std::vector<Attr> attrs;
      if (!std::isnan(lo)) attrs.push_back(Attr::f("min", lo));
      if (!std::isnan(hi)) attrs.push_back(Attr::f("max", hi));
      return op("Clip", "clip", {x}, attrs, out);
    }
    auto bound = [&](const char* name, float v) -> std::string {
      if (std::isnan(v)) return "";
      return constant_nodes ? g.constant(p + name, float_tensor({}, {v})) : scalar(name, v);
    };
    std::vector<std::string> in{x, bound("min", lo)};
    if (!std::isnan(hi)) in.push_back(bound("max", hi));
    return op("Clip", "clip", in, {}, out);
  }
};

using Writer = std::function<std::string(FormWriter&, const std::string& x, const std::string& out)>;

const std::map<std::string, Writer>& writers() {
  static const std::map<std::string, Writer> w{
      {"relu", [](FormWriter& f, auto x, auto out) { return f.op("Relu", "relu", {x}, {}, out); }},
      {"relu6_clip", [](FormWriter& f, auto x, auto out) { return f.clip(x, 0, 6, out); }},
      {"relu6_clip_constants", [](FormWriter& f, auto x, auto out) { return f.clip(x, 0, 6, out, true); }},
      {"clip_min_only", [](FormWriter& f, auto x, auto out) { return f.clip(x, 0, NAN, out); }},
      {"relu6_minmax", [](FormWriter& f, auto x, auto out) {
         return f.op("Min", "min", {f.op("Max", "max", {x, f.scalar("zero", 0)}), f.scalar("six", 6)}, {}, out);
       }},
      {"relu_min6", [](FormWriter& f, auto x, auto out) {
         return f.op("Min", "min", {f.op("Relu", "relu", {x}), f.scalar("six", 6)}, {}, out);
       }},
      {"clip_per_channel", [](FormWriter& f, auto x, auto out) {  // the Keras MobileNetV2 depthwise activation
         const auto m = f.g.initializer(f.p + "bound", float_tensor({1, kFormChannels, 1, 1}, {0, 1.5f, 4, 6}));
         return f.op("Relu", "relu2", {f.op("Min", "min", {f.op("Relu", "relu", {x}), m})}, {}, out);
       }},
      {"leaky_0.01", [](FormWriter& f, auto x, auto out) { return f.op("LeakyRelu", "leaky", {x}, {}, out); }},
      {"leaky_0.3", [](FormWriter& f, auto x, auto out) {
         return f.op("LeakyRelu", "leaky", {x}, {Attr::f("alpha", 0.3f)}, out);
       }},
      {"hardsigmoid_paddle", [](FormWriter& f, auto x, auto out) {
         return f.op("HardSigmoid", "hs", {x}, {Attr::f("alpha", 0.2f), Attr::f("beta", 0.5f)}, out);
       }},
      {"hardsigmoid_torch", [](FormWriter& f, auto x, auto out) {
         return f.op("HardSigmoid", "hs", {x}, {Attr::f("alpha", 1.0f / 6), Attr::f("beta", 0.5f)}, out);
       }},
      {"hardsigmoid_clamp", [](FormWriter& f, auto x, auto out) {  // torch.clamp(0.2 * x + 0.5, 0, 1)
         auto a = f.op("Add", "add", {f.op("Mul", "mul", {x, f.scalar("slope", 0.2f)}), f.scalar("offset", 0.5f)});
         return f.clip(a, 0, 1, out);
       }},
      {"hardswish_op", [](FormWriter& f, auto x, auto out) { return f.op("HardSwish", "hswish", {x}, {}, out); }},
      {"hardswish_mul_hardsigmoid", [](FormWriter& f, auto x, auto out) {  // torch.onnx below opset 14
         auto g = f.op("HardSigmoid", "hs", {x}, {Attr::f("alpha", 1.0f / 6)});
         return f.op("Mul", "mul", {x, g}, {}, out);
       }},
      {"hardswish_paddle", [](FormWriter& f, auto x, auto out) {  // paddle2onnx: x * Clip(x + 3, 0, 6) / 6
         auto c = f.clip(f.op("Add", "add", {x, f.scalar("three", 3)}), 0, 6, f.p + "clip_out");
         return f.op("Div", "div", {f.op("Mul", "mul", {x, c}), f.scalar("six", 6)}, {}, out);
       }},
      {"sigmoid", [](FormWriter& f, auto x, auto out) { return f.op("Sigmoid", "sig", {x}, {}, out); }},
      {"swish", [](FormWriter& f, auto x, auto out) {
         return f.op("Mul", "mul", {x, f.op("Sigmoid", "sig", {x})}, {}, out);
       }},
      {"swish_1.702", [](FormWriter& f, auto x, auto out) {
         auto s = f.op("Sigmoid", "sig", {f.op("Mul", "scale", {x, f.scalar("beta", 1.702f)})});
         return f.op("Mul", "mul", {x, s}, {}, out);
       }},
      {"gelu_erf", [](FormWriter& f, auto x, auto out) {  // torch.onnx's nn.GELU()
         auto e = f.op("Erf", "erf", {f.op("Div", "div", {x, f.scalar("sqrt2", float(std::numbers::sqrt2))})});
         auto m = f.op("Mul", "mul", {x, f.op("Add", "add", {e, f.scalar("one", 1)})});
         return f.op("Mul", "half", {m, f.scalar("half", 0.5f)}, {}, out);
       }},
      {"gelu_tanh", [](FormWriter& f, auto x, auto out) {  // nn.GELU(approximate="tanh")
         auto cube = f.op("Pow", "pow", {x, f.scalar("three", 3)});
         auto inner = f.op("Add", "add", {x, f.op("Mul", "mul", {cube, f.scalar("k", 0.044715f)})});
         auto t = f.op("Tanh", "tanh", {f.op("Mul", "scale", {inner, f.scalar("c", 0.7978845608f)})});
         auto m = f.op("Mul", "mul2", {x, f.op("Add", "add1", {t, f.scalar("one", 1)})});
         return f.op("Mul", "half", {m, f.scalar("half", 0.5f)}, {}, out);
       }},
      {"gelu_op", [](FormWriter& f, auto x, auto out) { return f.op("Gelu", "gelu", {x}, {}, out); }},
      {"square_pow", [](FormWriter& f, auto x, auto out) { return f.op("Pow", "pow", {x, f.scalar("two", 2)}, {}, out); }},
      {"square_mul", [](FormWriter& f, auto x, auto out) { return f.op("Mul", "mul", {x, x}, {}, out); }},
      {"cube_pow", [](FormWriter& f, auto x, auto out) { return f.op("Pow", "pow", {x, f.scalar("three", 3)}, {}, out); }},
      {"resize_linear_half_pixel", [](FormWriter& f, auto x, auto out) {
         auto s = f.g.initializer(f.p + "scales", float_tensor({4}, {1, 1, 2, 2}));
         return f.op("Resize", "resize", {x, "", s}, {Attr::s("mode", "linear")}, out);
       }},
      {"resize_linear_align_corners", [](FormWriter& f, auto x, auto out) {
         auto s = f.g.initializer(f.p + "scales", float_tensor({4}, {1, 1, 2, 2}));
         return f.op("Resize", "resize", {x, "", s},
                     {Attr::s("mode", "linear"), Attr::s("coordinate_transformation_mode", "align_corners")}, out);
       }},
      {"resize_linear_pytorch_half_pixel", [](FormWriter& f, auto x, auto out) {
         auto s = f.g.initializer(f.p + "scales", float_tensor({4}, {1, 1, 2, 2}));
         return f.op("Resize", "resize", {x, "", s},
                     {Attr::s("mode", "linear"), Attr::s("coordinate_transformation_mode", "pytorch_half_pixel")}, out);
       }},
      {"resize_nearest_asymmetric", [](FormWriter& f, auto x, auto out) {
         auto s = f.g.initializer(f.p + "scales", float_tensor({4}, {1, 1, 2, 2}));
         return f.op("Resize", "resize", {x, "", s},
                     {Attr::s("mode", "nearest"), Attr::s("coordinate_transformation_mode", "asymmetric"),
                      Attr::s("nearest_mode", "floor")}, out);
       }},
      {"softmax_channels", [](FormWriter& f, auto x, auto out) {
         return f.op("Softmax", "softmax", {x}, {Attr::i("axis", 1)}, out);
       }},
      {"softmax_last", [](FormWriter& f, auto x, auto out) {
         return f.op("Softmax", "softmax", {x}, {Attr::i("axis", -1)}, out);
       }},
  };
  return w;
}

}  // namespace

const std::vector<std::string>& op_form_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, _] : writers()) v.push_back(k);
    return v;
  }();
  return names;
}

std::string form_output(int k) { return "act" + std::to_string(k); }

onnx::ModelProto form_model(const std::string& name, int64_t opset, int chain) {
  auto it = writers().find(name);
  EXPECT_NE(it, writers().end()) << "no form named " << name;
  GraphBuilder g("form_" + name, opset);
  std::string x = g.input("x", DType::kFloat32, {1, kFormChannels, 5, 5});
  for (int k = 0; k < chain; ++k) {
    FormWriter w{g, "f" + std::to_string(k) + "_", opset};
    const std::string act = it->second(w, x, form_output(k));
    const auto weight = g.initializer("conv" + std::to_string(k) + "_w",
                                      random_tensor({kFormChannels, kFormChannels, 1, 1}, 100 + k, 0.5f));
    x = g.node("Conv", "conv" + std::to_string(k), {act, weight}, {}, k + 1 == chain ? "y" : "c" + std::to_string(k));
  }
  const int64_t side = name.rfind("resize", 0) == 0 ? 5 << chain : 5;
  g.output("y", DType::kFloat32, {1, kFormChannels, side, side});
  return g.build();
}

}  // namespace fetafix::testing
