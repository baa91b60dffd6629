#include "inject/architectures.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "data/image.h"
#include "model/builder.h"
#include "runtime/session.h"

namespace fetafix::inject {
namespace {

// FNV-1a: std::hash is implementation-defined, and weights must be the same everywhere.
uint64_t name_hash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Layer helpers over GraphBuilder that track each value's channel count.
class Net {
 public:
  Net(GraphBuilder& g, const ArchitectureOptions& o) : g_(g), o_(o) {}

  int64_t scaled(int64_t channels) const {
    return std::max<int64_t>(4, static_cast<int64_t>(std::llround(static_cast<double>(channels) * o_.width)));
  }
  int64_t channels(const std::string& v) const { return channels_.at(v); }
  void set_channels(const std::string& v, int64_t c) { channels_[v] = c; }
  uint64_t seed(const std::string& name) const { return name_hash(name) ^ (o_.seed * 0x9E3779B97F4A7C15ull); }

  // pads: top, left, bottom, right (ONNX order for 2-D: begins then ends).
  std::string conv(const std::string& name, const std::string& x, int64_t out, int64_t kh, int64_t kw, int64_t stride,
                   std::array<int64_t, 4> pads, bool bias) {
    const int64_t in = channels(x);
    const std::string w = g_.initializer(name + "/kernel",
                                         random_tensor({out, in, kh, kw}, seed(name + "/kernel"),
                                                       std::sqrt(2.0f / static_cast<float>(in * kh * kw))));
    std::vector<std::string> inputs{x, w};
    if (bias) inputs.push_back(g_.initializer(name + "/bias", random_tensor({out}, seed(name + "/bias"), 0.05f)));
    std::vector<Attr> attrs{Attr::ints("kernel_shape", {kh, kw}), Attr::ints("strides", {stride, stride})};
    if (pads != std::array<int64_t, 4>{0, 0, 0, 0})
      attrs.push_back(Attr::ints("pads", {pads[0], pads[1], pads[2], pads[3]}));
    const std::string y = g_.node("Conv", name, inputs, attrs, name);
    set_channels(y, out);
    return y;
  }

  std::string batch_norm(const std::string& name, const std::string& x, float epsilon) {
    const int64_t c = channels(x);
    const std::string gamma = g_.initializer(name + "/gamma", float_tensor({c}, std::vector<float>(c, 1.0f)));
    const std::string beta = g_.initializer(name + "/beta", random_tensor({c}, seed(name + "/beta"), 0.1f));
    const std::string mean = g_.initializer(name + "/moving_mean", float_tensor({c}, std::vector<float>(c, 0.0f)));
    const std::string var = g_.initializer(name + "/moving_variance", float_tensor({c}, std::vector<float>(c, 1.0f)));
    const std::string y =
        g_.node("BatchNormalization", name, {x, gamma, beta, mean, var}, {Attr::f("epsilon", epsilon)}, name);
    set_channels(y, c);
    return y;
  }

  std::string unary(const std::string& op, const std::string& name, const std::string& x) {
    const std::string y = g_.node(op, name, {x}, {}, name);
    set_channels(y, channels(x));
    return y;
  }

  // A zero Pad of `amount` on each spatial side (Keras ZeroPadding2D, as tf2onnx writes it).
  std::string pad(const std::string& name, const std::string& x, int64_t amount) {
    const std::string pads =
        g_.initializer(name + "/pads", int64_tensor({8}, {0, 0, amount, amount, 0, 0, amount, amount}));
    const std::string y = g_.node("Pad", name, {x, pads}, {Attr::s("mode", "constant")}, name);
    set_channels(y, channels(x));
    return y;
  }

  std::string max_pool(const std::string& name, const std::string& x, int64_t kernel, int64_t stride) {
    const std::string y = g_.node("MaxPool", name, {x},
                                  {Attr::ints("kernel_shape", {kernel, kernel}), Attr::ints("strides", {stride, stride})},
                                  name);
    set_channels(y, channels(x));
    return y;
  }

  // 3x3 stride-1 'same' average pool; TF leaves the padding out of the count.
  std::string avg_pool_same(const std::string& name, const std::string& x) {
    const std::string y = g_.node("AveragePool", name, {x},
                                  {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {1, 1}),
                                   Attr::ints("pads", {1, 1, 1, 1}), Attr::i("count_include_pad", 0)},
                                  name);
    set_channels(y, channels(x));
    return y;
  }

  std::string concat(const std::string& name, const std::vector<std::string>& xs) {
    int64_t c = 0;
    for (const auto& x : xs) c += channels(x);
    const std::string y = g_.node("Concat", name, xs, {Attr::i("axis", 1)}, name);
    set_channels(y, c);
    return y;
  }

  std::string add(const std::string& name, const std::string& a, const std::string& b) {
    const std::string y = g_.node("Add", name, {a, b}, {}, name);
    set_channels(y, channels(a));
    return y;
  }

  // Global average pool, flatten, dense, softmax: the graph's output "probabilities".
  void classifier(const std::string& x) {
    const int64_t features = channels(x);
    std::string y = g_.node("GlobalAveragePool", "avg_pool", {x}, {}, "avg_pool");
    y = g_.node("Flatten", "avg_pool_flatten", {y}, {Attr::i("axis", 1)}, "avg_pool_flatten");
    const std::string w = g_.initializer("predictions/kernel",
                                         random_tensor({o_.classes, features}, seed("predictions/kernel"),
                                                       1.0f / std::sqrt(static_cast<float>(features))));
    const std::string b = g_.initializer("predictions/bias", random_tensor({o_.classes}, seed("predictions/bias"), 0.1f));
    y = g_.node("Gemm", "predictions", {y, w, b}, {Attr::i("transB", 1)}, "logits");
    g_.node("Softmax", "predictions_softmax", {y}, {Attr::i("axis", 1)}, "probabilities");
    g_.output("probabilities", DType::kFloat32, {-1, o_.classes});
  }

  // The image input, through the optional normalisation block; returns an NCHW value.
  std::string image_input(int64_t size) {
    if (o_.input_block == InputBlock::kNhwc) {
      std::string x = g_.input("input", DType::kFloat32, {-1, size, size, 3});
      return input_block(x, 3);
    }
    std::string x = g_.input("input", DType::kFloat32, {-1, 3, size, size});
    set_channels(x, 3);
    return o_.input_block == InputBlock::kNchw ? input_block(x, 1) : x;
  }

 private:
  std::string input_block(const std::string& x, int64_t axis) {
    static constexpr std::array<float, 3> kMean{0.485f, 0.456f, 0.406f}, kStd{0.229f, 0.224f, 0.225f};
    const std::string axes = g_.initializer("transform_input/axes", int64_tensor({1}, {axis}));
    std::vector<std::string> channels;
    for (int c = 0; c < 3; ++c) {
      const std::string n = "transform_input/ch" + std::to_string(c);
      const std::string index = g_.initializer(n + "/index", int64_tensor({}, {c}));
      const std::string scale = g_.initializer(n + "/scale", float_tensor({}, {kStd[c] / 0.5f}));
      const std::string shift = g_.initializer(n + "/shift", float_tensor({}, {(kMean[c] - 0.5f) / 0.5f}));
      std::string y = g_.node("Gather", n + "/gather", {x, index}, {Attr::i("axis", axis)}, n + "/gather");
      y = g_.node("Unsqueeze", n + "/unsqueeze", {y, axes}, {}, n + "/unsqueeze");
      y = g_.node("Mul", n + "/mul", {y, scale}, {}, n + "/mul");
      channels.push_back(g_.node("Add", n + "/add", {y, shift}, {}, n + "/add"));
    }
    std::string y = g_.node("Concat", "transform_input/concat", channels, {Attr::i("axis", axis)}, "transform_input");
    if (axis == 3)
      y = g_.node("Transpose", "transform_input/to_nchw", {y}, {Attr::ints("perm", {0, 3, 1, 2})},
                  "transform_input/nchw");
    set_channels(y, 3);
    return y;
  }

  GraphBuilder& g_;
  const ArchitectureOptions& o_;
  std::map<std::string, int64_t> channels_;
};

Status check_options(const ArchitectureOptions& o) {
  if (!(o.width > 0) || o.width > 4) return make_error("width must be in (0, 4], not {}", o.width);
  if (o.image_size < 0 || o.image_size > 4096) return make_error("image size {} is out of range", o.image_size);
  if (o.classes < 2) return make_error("at least 2 classes are needed, not {}", o.classes);
  return Status::Ok();
}

// ---- ResNet101 v2 -------------------------------------------------------------------------

constexpr float kResNetEpsilon = 1.001e-5f;

std::string resnet_block(Net& net, const std::string& x, int64_t filters, int64_t stride, bool conv_shortcut,
                         const std::string& name) {
  std::string preact = net.batch_norm(name + "_preact_bn", x, kResNetEpsilon);
  preact = net.unary("Relu", name + "_preact_relu", preact);
  std::string shortcut = x;
  if (conv_shortcut) shortcut = net.conv(name + "_0_conv", preact, 4 * filters, 1, 1, stride, {0, 0, 0, 0}, true);
  else if (stride > 1) shortcut = net.max_pool(name + "_0_pool", x, 1, stride);
  std::string y = net.conv(name + "_1_conv", preact, filters, 1, 1, 1, {0, 0, 0, 0}, false);
  y = net.batch_norm(name + "_1_bn", y, kResNetEpsilon);
  y = net.unary("Relu", name + "_1_relu", y);
  y = net.pad(name + "_2_pad", y, 1);
  y = net.conv(name + "_2_conv", y, filters, 3, 3, stride, {0, 0, 0, 0}, false);
  y = net.batch_norm(name + "_2_bn", y, kResNetEpsilon);
  y = net.unary("Relu", name + "_2_relu", y);
  y = net.conv(name + "_3_conv", y, 4 * filters, 1, 1, 1, {0, 0, 0, 0}, true);
  return net.add(name + "_out", shortcut, y);
}

std::string resnet_stack(Net& net, std::string x, int64_t filters, int blocks, int64_t stride, const std::string& name) {
  x = resnet_block(net, x, filters, 1, true, name + "_block1");
  for (int b = 2; b < blocks; ++b) x = resnet_block(net, x, filters, 1, false, name + "_block" + std::to_string(b));
  return resnet_block(net, x, filters, stride, false, name + "_block" + std::to_string(blocks));
}

// ---- InceptionV3 ---------------------------------------------------------------------------

class Inception {
 public:
  explicit Inception(Net& net) : net_(net) {}

  // Keras conv2d_bn: Conv (no bias) -> BatchNormalization (scale=False, epsilon 0.001) -> ReLU,
  // named conv2d[_k], batch_normalization[_k], activation[_k].
  std::string conv_bn(const std::string& x, int64_t filters, int64_t kh, int64_t kw, int64_t stride = 1,
                      bool same = true) {
    const std::string suffix = count_ == 0 ? "" : "_" + std::to_string(count_);
    ++count_;
    const std::array<int64_t, 4> pads =
        same ? std::array<int64_t, 4>{kh / 2, kw / 2, kh / 2, kw / 2} : std::array<int64_t, 4>{0, 0, 0, 0};
    std::string y = net_.conv("conv2d" + suffix, x, net_.scaled(filters), kh, kw, stride, pads, false);
    y = net_.batch_norm("batch_normalization" + suffix, y, 1e-3f);
    return net_.unary("Relu", "activation" + suffix, y);
  }
  std::string pool_name() {
    const std::string n = pool_count_ == 0 ? "max_pooling2d" : "max_pooling2d_" + std::to_string(pool_count_);
    ++pool_count_;
    return n;
  }
  std::string avg_name() {
    const std::string n = avg_count_ == 0 ? "average_pooling2d" : "average_pooling2d_" + std::to_string(avg_count_);
    ++avg_count_;
    return n;
  }

  std::string block_a(const std::string& x, int64_t pool_filters, const std::string& name) {
    const std::string b1 = conv_bn(x, 64, 1, 1);
    std::string b5 = conv_bn(x, 48, 1, 1);
    b5 = conv_bn(b5, 64, 5, 5);
    std::string b3 = conv_bn(x, 64, 1, 1);
    b3 = conv_bn(b3, 96, 3, 3);
    b3 = conv_bn(b3, 96, 3, 3);
    std::string bp = net_.avg_pool_same(avg_name(), x);
    bp = conv_bn(bp, pool_filters, 1, 1);
    return net_.concat(name, {b1, b5, b3, bp});
  }

  std::string block_b(const std::string& x) {
    const std::string b3 = conv_bn(x, 384, 3, 3, 2, false);
    std::string bd = conv_bn(x, 64, 1, 1);
    bd = conv_bn(bd, 96, 3, 3);
    bd = conv_bn(bd, 96, 3, 3, 2, false);
    const std::string bp = net_.max_pool(pool_name(), x, 3, 2);
    return net_.concat("mixed3", {b3, bd, bp});
  }

  std::string block_c(const std::string& x, int64_t c7, const std::string& name) {
    const std::string b1 = conv_bn(x, 192, 1, 1);
    std::string b7 = conv_bn(x, c7, 1, 1);
    b7 = conv_bn(b7, c7, 1, 7);
    b7 = conv_bn(b7, 192, 7, 1);
    std::string bd = conv_bn(x, c7, 1, 1);
    bd = conv_bn(bd, c7, 7, 1);
    bd = conv_bn(bd, c7, 1, 7);
    bd = conv_bn(bd, c7, 7, 1);
    bd = conv_bn(bd, 192, 1, 7);
    std::string bp = net_.avg_pool_same(avg_name(), x);
    bp = conv_bn(bp, 192, 1, 1);
    return net_.concat(name, {b1, b7, bd, bp});
  }

  std::string block_d(const std::string& x) {
    std::string b3 = conv_bn(x, 192, 1, 1);
    b3 = conv_bn(b3, 320, 3, 3, 2, false);
    std::string b7 = conv_bn(x, 192, 1, 1);
    b7 = conv_bn(b7, 192, 1, 7);
    b7 = conv_bn(b7, 192, 7, 1);
    b7 = conv_bn(b7, 192, 3, 3, 2, false);
    const std::string bp = net_.max_pool(pool_name(), x, 3, 2);
    return net_.concat("mixed8", {b3, b7, bp});
  }

  std::string block_e(const std::string& x, int index) {
    const std::string b1 = conv_bn(x, 320, 1, 1);
    std::string b3 = conv_bn(x, 384, 1, 1);
    const std::string b3a = conv_bn(b3, 384, 1, 3);
    const std::string b3b = conv_bn(b3, 384, 3, 1);
    b3 = net_.concat("mixed9_" + std::to_string(index), {b3a, b3b});
    std::string bd = conv_bn(x, 448, 1, 1);
    bd = conv_bn(bd, 384, 3, 3);
    const std::string bda = conv_bn(bd, 384, 1, 3);
    const std::string bdb = conv_bn(bd, 384, 3, 1);
    bd = net_.concat(index == 0 ? "concatenate" : "concatenate_" + std::to_string(index), {bda, bdb});
    std::string bp = net_.avg_pool_same(avg_name(), x);
    bp = conv_bn(bp, 192, 1, 1);
    return net_.concat("mixed" + std::to_string(9 + index), {b1, b3, bd, bp});
  }

 private:
  Net& net_;
  int count_ = 0, pool_count_ = 0, avg_count_ = 0;
};

// ---- calibration ---------------------------------------------------------------------------

int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  return 1;
}

onnx::TensorProto* find_initializer(onnx::GraphProto& g, const std::string& name) {
  for (auto& t : *g.mutable_initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

Result<Tensor> initializer_tensor(onnx::GraphProto& g, const std::string& name) {
  const onnx::TensorProto* t = find_initializer(g, name);
  if (!t || t->data_type() != static_cast<int32_t>(DType::kFloat32) || !t->has_raw_data())
    return make_error("'{}' is not a float initializer with raw data", name);
  Tensor out(DType::kFloat32, std::vector<int64_t>(t->dims().begin(), t->dims().end()));
  if (t->raw_data().size() != out.bytes.size()) return make_error("'{}' has the wrong size", name);
  std::memcpy(out.bytes.data(), t->raw_data().data(), out.bytes.size());
  return out;
}

void set_initializer(onnx::GraphProto& g, const std::string& name, const Tensor& value) {
  onnx::TensorProto* t = find_initializer(g, name);
  *t = to_tensor_proto(name, value);
}

onnx::NodeProto make(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                     const std::string& output, std::vector<Attr> attrs = {}) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(std::move(i));
  n.add_output(output);
  for (auto& a : attrs) *n.add_attribute() = a.proto;
  return n;
}

onnx::ValueInfoProto float_output(const std::string& name) {
  onnx::ValueInfoProto vi;
  vi.set_name(name);
  vi.mutable_type()->mutable_tensor_type()->set_elem_type(static_cast<int32_t>(DType::kFloat32));
  return vi;
}

struct BatchNormStats {
  std::string mean_initializer, var_initializer, mean_output, var_output;
};

}  // namespace

Result<onnx::ModelProto> build_resnet101_v2(const ArchitectureOptions& options) {
  FETAFIX_TRY_STATUS(check_options(options));
  GraphBuilder g("resnet101v2", 13);
  Net net(g, options);
  std::string x = net.image_input(options.image_size ? options.image_size : 224);
  x = net.pad("conv1_pad", x, 3);
  x = net.conv("conv1_conv", x, net.scaled(64), 7, 7, 2, {0, 0, 0, 0}, true);
  x = net.pad("pool1_pad", x, 1);
  x = net.max_pool("pool1_pool", x, 3, 2);
  x = resnet_stack(net, x, net.scaled(64), 3, 2, "conv2");
  x = resnet_stack(net, x, net.scaled(128), 4, 2, "conv3");
  x = resnet_stack(net, x, net.scaled(256), 23, 2, "conv4");
  x = resnet_stack(net, x, net.scaled(512), 3, 1, "conv5");
  x = net.batch_norm("post_bn", x, kResNetEpsilon);
  x = net.unary("Relu", "post_relu", x);
  net.classifier(x);
  return g.build();
}

Result<onnx::ModelProto> build_inception_v3(const ArchitectureOptions& options) {
  FETAFIX_TRY_STATUS(check_options(options));
  const int64_t size = options.image_size ? options.image_size : 299;
  if (size < 75) return make_error("InceptionV3 needs an input of at least 75x75, not {}", size);
  GraphBuilder g("inceptionv3", 13);
  Net net(g, options);
  Inception inc(net);
  std::string x = net.image_input(size);
  x = inc.conv_bn(x, 32, 3, 3, 2, false);
  x = inc.conv_bn(x, 32, 3, 3, 1, false);
  x = inc.conv_bn(x, 64, 3, 3);
  x = net.max_pool(inc.pool_name(), x, 3, 2);
  x = inc.conv_bn(x, 80, 1, 1, 1, false);
  x = inc.conv_bn(x, 192, 3, 3, 1, false);
  x = net.max_pool(inc.pool_name(), x, 3, 2);
  x = inc.block_a(x, 32, "mixed0");
  x = inc.block_a(x, 64, "mixed1");
  x = inc.block_a(x, 64, "mixed2");
  x = inc.block_b(x);
  x = inc.block_c(x, 128, "mixed4");
  x = inc.block_c(x, 160, "mixed5");
  x = inc.block_c(x, 160, "mixed6");
  x = inc.block_c(x, 192, "mixed7");
  x = inc.block_d(x);
  x = inc.block_e(x, 0);
  x = inc.block_e(x, 1);
  net.classifier(x);
  return g.build();
}

Result<CalibrationReport> calibrate_on_photos(onnx::ModelProto& model, const std::vector<std::filesystem::path>& photos,
                                              const data::Preset& preset) {
  if (photos.empty()) return make_error("calibration needs at least one photo");
  const int64_t opset = default_opset(model);
  if (opset < 13) return make_error("calibration needs opset 13 or later, not {}", opset);
  onnx::ModelProto calib = model;
  onnx::GraphProto& cg = *calib.mutable_graph();
  cg.clear_output();
  cg.clear_node();
  const std::string axes_value = "calibration/axes";
  if (opset >= 18) *cg.add_initializer() = to_tensor_proto(axes_value, int64_tensor({3}, {0, 2, 3}));
  auto reduce_mean = [&](const std::string& name, const std::string& x, const std::string& out) {
    if (opset >= 18) return make("ReduceMean", name, {x, axes_value}, out, {Attr::i("keepdims", 1)});
    return make("ReduceMean", name, {x}, out, {Attr::ints("axes", {0, 2, 3}), Attr::i("keepdims", 1)});
  };

  // Every BN becomes normalisation by its input's batch statistics, which become outputs.
  std::vector<BatchNormStats> stats;
  std::string classifier_input, classifier_node;
  int classifier_index = -1;
  for (int i = 0; i < model.graph().node_size(); ++i)
    if (model.graph().node(i).op_type() == "Gemm") classifier_index = i;
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const onnx::NodeProto& n = model.graph().node(i);
    if (i == classifier_index) classifier_input = n.input(0);
    if (n.op_type() != "BatchNormalization") {
      *cg.add_node() = n;
      continue;
    }
    if (n.input_size() != 5 || n.output_size() < 1) return make_error("BatchNormalization '{}' is not in inference form", n.name());
    float epsilon = 1e-5f;
    for (const auto& a : n.attribute())
      if (a.name() == "epsilon") epsilon = a.f();
    const std::string p = "calibration/" + n.name() + "/";
    FETAFIX_ASSIGN_OR_RETURN(Tensor gamma, initializer_tensor(*model.mutable_graph(), n.input(1)));
    FETAFIX_ASSIGN_OR_RETURN(Tensor beta, initializer_tensor(*model.mutable_graph(), n.input(2)));
    gamma.shape = {1, gamma.numel(), 1, 1};
    beta.shape = {1, beta.numel(), 1, 1};
    *cg.add_initializer() = to_tensor_proto(p + "gamma", gamma);
    *cg.add_initializer() = to_tensor_proto(p + "beta", beta);
    *cg.add_initializer() = to_tensor_proto(p + "epsilon", float_tensor({}, {epsilon}));
    *cg.add_node() = reduce_mean(p + "mean", n.input(0), p + "mean");
    *cg.add_node() = make("Sub", p + "centre", {n.input(0), p + "mean"}, p + "centred");
    *cg.add_node() = make("Mul", p + "square", {p + "centred", p + "centred"}, p + "squared");
    *cg.add_node() = reduce_mean(p + "var", p + "squared", p + "var");
    *cg.add_node() = make("Add", p + "var_eps", {p + "var", p + "epsilon"}, p + "var_eps");
    *cg.add_node() = make("Sqrt", p + "std", {p + "var_eps"}, p + "std");
    *cg.add_node() = make("Div", p + "normalise", {p + "centred", p + "std"}, p + "normalised");
    *cg.add_node() = make("Mul", p + "scale", {p + "normalised", p + "gamma"}, p + "scaled");
    *cg.add_node() = make("Add", p + "shift", {p + "scaled", p + "beta"}, n.output(0));
    stats.push_back({n.input(3), n.input(4), p + "mean", p + "var"});
  }
  for (const auto& s : stats) {
    *cg.add_output() = float_output(s.mean_output);
    *cg.add_output() = float_output(s.var_output);
  }
  if (!classifier_input.empty()) *cg.add_output() = float_output(classifier_input);

  // One batch of every photo, preprocessed as the model's input wants it.
  const auto& input = model.graph().input(0);
  std::vector<int64_t> dims;
  for (const auto& d : input.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  FETAFIX_ASSIGN_OR_RETURN(const data::Preset bound,
                           data::bind_preset_to_input(preset, dims, static_cast<DType>(input.type().tensor_type().elem_type()),
                                                      input.name()));
  Tensor batch;
  for (size_t k = 0; k < photos.size(); ++k) {
    FETAFIX_ASSIGN_OR_RETURN(const data::Image image, data::decode_image(photos[k]));
    const Tensor one = data::preprocess(image, bound);
    if (k == 0) {
      batch = Tensor(one.dtype, one.shape);
      batch.shape[0] = static_cast<int64_t>(photos.size());
      batch.bytes.resize(one.bytes.size() * photos.size());
    }
    std::memcpy(batch.bytes.data() + k * one.bytes.size(), one.bytes.data(), one.bytes.size());
  }
  runtime::SessionOptions so;
  so.threads = 1;  // one thread: the same sums in the same order, the same bytes every time
  // ONNX Runtime's LayerNormalization fusion takes the batch-statistics pattern for a layer
  // norm over the last axis and computes other statistics: run the graph as written.
  so.optimize = false;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(calib, so, "calibration model"));
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session->run({batch}));

  onnx::GraphProto& g = *model.mutable_graph();
  for (size_t s = 0; s < stats.size(); ++s) {
    Tensor mean = outputs[2 * s], var = outputs[2 * s + 1];
    mean.shape = var.shape = {mean.numel()};
    set_initializer(g, stats[s].mean_initializer, mean);
    set_initializer(g, stats[s].var_initializer, var);
  }
  CalibrationReport report{photos.size(), stats.size(), false};
  if (classifier_index >= 0) {
    // Standardize each feature the classifier reads, folded into its weights and bias.
    const onnx::NodeProto& gemm = g.node(classifier_index);
    bool trans_b = false;
    for (const auto& a : gemm.attribute())
      if (a.name() == "transB") trans_b = a.i() != 0;
    const Tensor& features = outputs.back();
    if (features.shape.size() != 2 || gemm.input_size() < 3) return make_error("Gemm '{}' is not a classifier", gemm.name());
    const int64_t n = features.shape[0], f = features.shape[1];
    FETAFIX_ASSIGN_OR_RETURN(Tensor w, initializer_tensor(g, gemm.input(1)));
    FETAFIX_ASSIGN_OR_RETURN(Tensor b, initializer_tensor(g, gemm.input(2)));
    const int64_t classes = b.numel();
    if (w.numel() != classes * f) return make_error("Gemm '{}' weights do not match its input", gemm.name());
    std::vector<double> mean(f, 0.0), sd(f, 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < f; ++j) mean[j] += features.data<float>()[k * f + j];
    for (auto& m : mean) m /= static_cast<double>(n);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < f; ++j) {
        const double d = features.data<float>()[k * f + j] - mean[j];
        sd[j] += d * d;
      }
    for (auto& s : sd) s = std::sqrt(s / static_cast<double>(n)) + 1e-6;
    for (int64_t c = 0; c < classes; ++c) {
      double shift = 0;
      for (int64_t j = 0; j < f; ++j) {
        float& wv = w.data<float>()[trans_b ? c * f + j : j * classes + c];
        wv = static_cast<float>(wv / sd[j]);
        shift += wv * mean[j];
      }
      b.data<float>()[c] = static_cast<float>(b.data<float>()[c] - shift);
    }
    set_initializer(g, gemm.input(1), w);
    set_initializer(g, gemm.input(2), b);
    report.classifier_standardized = true;
  }
  return report;
}

}  // namespace fetafix::inject
