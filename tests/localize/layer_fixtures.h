// A small CNN in the variants converters produce, for the layer-check and equivalence tests:
//   x[N,3,8,8] -> conv1(pads 1) -> bn1 -> relu1 -> conv2(pads 1) -> clip2[0,1] -> pool2 -> y
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "match/match.h"
#include "model/builder.h"

namespace fetafix::testing::layer {

struct CnnSpec {
  int64_t opset = 13;                 // < 11: Clip bounds and Pad pads as attributes
  bool weights_as_constants = false;  // Constant nodes instead of initializers
  bool clip_max = true;
  enum class Bn { kNode, kMulAdd, kFoldedIntoConv1 } bn = Bn::kNode;
  enum class Conv1Pad { kAttribute, kPadNode, kSameUpper } conv1_pad = Conv1Pad::kAttribute;
  std::vector<int64_t> pad1_pads{0, 0, 1, 1, 0, 0, 1, 1};  // kPadNode: the Pad's pads
  // kPadNode: element-wise nodes between the Pad and conv1, in order: "Relu", "Identity",
  // "Clip" (to [-1, 1]), "Add" (of 1: zeros do not stay zeros).
  std::vector<std::string> after_pad1;
  bool conv2_pads = true;
};

struct CnnWeights {
  Tensor w1 = random_tensor({4, 3, 3, 3}, 1, 0.3f), b1 = random_tensor({4}, 2, 0.1f);
  Tensor gamma = uniform_tensor({4}, 3, 0.5f, 1.5f), beta = random_tensor({4}, 4, 0.1f);
  Tensor mean = random_tensor({4}, 5, 0.1f), var = uniform_tensor({4}, 6, 0.5f, 1.5f);
  Tensor w2 = random_tensor({4, 4, 3, 3}, 7, 0.3f), b2 = random_tensor({4}, 8, 0.1f);
};

// gamma / sqrt(var + 1e-5) per channel, in double as a careful converter would.
inline std::vector<double> bn_scale(const CnnWeights& w) {
  std::vector<double> s(4);
  for (size_t c = 0; c < 4; ++c) s[c] = w.gamma.span<const float>()[c] / std::sqrt(double(w.var.span<const float>()[c]) + 1e-5);
  return s;
}

inline onnx::ModelProto small_cnn(const CnnSpec& spec = {}, const CnnWeights& w = {}) {
  GraphBuilder b("small_cnn", spec.opset);
  auto weight = [&](const std::string& name, const Tensor& t) {
    return spec.weights_as_constants ? b.constant(name, t) : b.initializer(name, t);
  };
  std::string x = b.input("x", DType::kFloat32, {-1, 3, 8, 8});

  Tensor w1 = w.w1, b1 = w.b1;
  if (spec.bn == CnnSpec::Bn::kFoldedIntoConv1) {
    const auto s = bn_scale(w);
    for (size_t i = 0; i < 108; ++i) w1.span<float>()[i] = float(w1.span<float>()[i] * s[i / 27]);
    for (size_t c = 0; c < 4; ++c)
      b1.span<float>()[c] = float((double(b1.span<float>()[c]) - w.mean.span<const float>()[c]) * s[c] +
                                  w.beta.span<const float>()[c]);
  }
  std::vector<Attr> conv1_attrs;
  if (spec.conv1_pad == CnnSpec::Conv1Pad::kAttribute) conv1_attrs.push_back(Attr::ints("pads", {1, 1, 1, 1}));
  if (spec.conv1_pad == CnnSpec::Conv1Pad::kSameUpper) conv1_attrs.push_back(Attr::s("auto_pad", "SAME_UPPER"));
  if (spec.conv1_pad == CnnSpec::Conv1Pad::kPadNode) {
    const std::vector<int64_t>& pads = spec.pad1_pads;
    x = spec.opset < 11 ? b.node("Pad", "pad1", {x}, {Attr::ints("pads", pads)})
                        : b.node("Pad", "pad1", {x, weight("pad1_pads", int64_tensor({8}, pads))});
    for (size_t i = 0; i < spec.after_pad1.size(); ++i) {
      const std::string& op = spec.after_pad1[i];
      const std::string name = "after_pad1_" + std::to_string(i);
      if (op == "Clip" && spec.opset >= 11)
        x = b.node(op, name, {x, weight(name + "_lo", float_tensor({}, {-1.0f})), weight(name + "_hi", float_tensor({}, {1.0f}))});
      else if (op == "Clip")
        x = b.node(op, name, {x}, {Attr::f("min", -1.0f), Attr::f("max", 1.0f)});
      else if (op == "Add")
        x = b.node(op, name, {x, weight(name + "_c", float_tensor({}, {1.0f}))});
      else
        x = b.node(op, name, {x});
    }
  }
  std::string h = b.node("Conv", "conv1", {x, weight("W1", w1), weight("B1", b1)}, conv1_attrs);

  if (spec.bn == CnnSpec::Bn::kNode) {
    h = b.node("BatchNormalization", "bn1",
               {h, weight("bn1_gamma", w.gamma), weight("bn1_beta", w.beta), weight("bn1_mean", w.mean),
                weight("bn1_var", w.var)});
  } else if (spec.bn == CnnSpec::Bn::kMulAdd) {
    const auto s = bn_scale(w);
    std::vector<float> scale(4), shift(4);
    for (size_t c = 0; c < 4; ++c) {
      scale[c] = float(s[c]);
      shift[c] = float(w.beta.span<const float>()[c] - w.mean.span<const float>()[c] * s[c]);
    }
    h = b.node("Mul", "bn1_mul", {h, weight("bn1_scale", float_tensor({1, 4, 1, 1}, scale))});
    h = b.node("Add", "bn1_add", {h, weight("bn1_shift", float_tensor({1, 4, 1, 1}, shift))});
  }
  h = b.node("Relu", "relu1", {h});
  std::vector<Attr> conv2_attrs;
  if (spec.conv2_pads) conv2_attrs.push_back(Attr::ints("pads", {1, 1, 1, 1}));
  h = b.node("Conv", "conv2", {h, weight("W2", w.w2), weight("B2", w.b2)}, conv2_attrs);

  if (spec.opset < 11) {
    std::vector<Attr> bounds{Attr::f("min", 0.0f)};
    if (spec.clip_max) bounds.push_back(Attr::f("max", 1.0f));
    h = b.node("Clip", "clip2", {h}, bounds);
  } else {
    std::vector<std::string> in{h, weight("clip_min", float_tensor({}, {0.0f}))};
    if (spec.clip_max) in.push_back(weight("clip_max", float_tensor({}, {1.0f})));
    h = b.node("Clip", "clip2", in);
  }
  h = b.node("MaxPool", "pool2", {h}, {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})}, "y");
  b.output("y", DType::kFloat32, {-1, 4, -1, -1});
  return b.build();
}

inline std::vector<match::NodeMatch> cnn_pairs(bool bn_folded_in_target = false) {
  match::NodeMatch conv1{"conv1", "conv1", 1.0, {}, bn_folded_in_target, false, bn_folded_in_target ? "bn1" : "", ""};
  match::NodeMatch conv2{"conv2", "conv2", 1.0, {}, false, false, "", ""};
  return {conv1, conv2};
}

inline onnx::NodeProto* node_named(onnx::ModelProto& m, const std::string& name) {
  for (auto& n : *m.mutable_graph()->mutable_node())
    if (n.name() == name) return &n;
  return nullptr;
}

}  // namespace fetafix::testing::layer
