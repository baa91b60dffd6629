// Writes the demo's model pair: a small CNN classifier (Source) and a "converted" copy
// (Target) carrying three faults of the kinds converters introduce: int8 quantize-dequantize
// of one layer's weights (TFLiteConverter's default optimization), a kernel written back
// with its height and width swapped (an HWIO -> OIHW layout slip), and a Conv whose pads
// were dropped (onnxmltools #716). Weights are deterministic, so every run writes the
// same bytes.
//
// Random convolutions followed by global pooling give features dominated by a component
// every photo shares, so every photo would get the same label. A BatchNormalization after
// the pooling, with statistics measured on the calibration photos (as a trained network's
// are), removes that component: labels then vary across photos, and faults flip them.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "data/preprocess.h"
#include "model/builder.h"
#include "model/model.h"
#include "runtime/session.h"

using namespace fetafix;

namespace {

constexpr int64_t kFeatures = 64;

struct DemoOptions {
  std::vector<float> feature_mean = std::vector<float>(kFeatures, 0.0f);
  std::vector<float> feature_var = std::vector<float>(kFeatures, 1.0f);
  bool quantize_conv3 = false;
  bool transpose_conv2_kernel = false;
  bool drop_conv1_pads = false;
};

// He-scaled normal weights; the per-layer seed keeps Source and Target weights equal.
Tensor conv_weight(int64_t out, int64_t in, int64_t k, uint64_t seed) {
  return random_tensor({out, in, k, k}, seed, std::sqrt(2.0f / static_cast<float>(in * k * k)));
}

// Symmetric per-tensor int8 quantization, then back to float.
Tensor quantize_dequantize_int8(Tensor t) {
  float max_abs = 0;
  for (float v : t.span<float>()) max_abs = std::max(max_abs, std::abs(v));
  const float scale = max_abs / 127.0f;
  for (float& v : t.span<float>()) v = std::round(v / scale) * scale;
  return t;
}

// Swaps the two spatial axes of an OIHW kernel.
Tensor transpose_kernel_hw(const Tensor& w) {
  Tensor t = w;
  const int64_t oi = w.shape[0] * w.shape[1], h = w.shape[2], wd = w.shape[3];
  for (int64_t p = 0; p < oi; ++p)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < wd; ++x) t.data<float>()[(p * wd + x) * h + y] = w.data<float>()[(p * h + y) * wd + x];
  t.shape = {w.shape[0], w.shape[1], wd, h};
  return t;
}

onnx::ModelProto build_classifier(const DemoOptions& o) {
  GraphBuilder g("demo_cnn", 13);
  std::string x = g.input("input", DType::kFloat32, {-1, 3, 224, 224});
  const int64_t channels[] = {3, 16, 32, 64};
  for (int i = 0; i < 3; ++i) {
    const std::string n = "conv" + std::to_string(i + 1);
    Tensor w = conv_weight(channels[i + 1], channels[i], 3, 100 + i);
    if (i == 2 && o.quantize_conv3) w = quantize_dequantize_int8(std::move(w));
    if (i == 1 && o.transpose_conv2_kernel) w = transpose_kernel_hw(w);
    g.initializer(n + ".weight", w);
    g.initializer(n + ".bias", random_tensor({channels[i + 1]}, 200 + i, 0.1f));
    std::vector<int64_t> pads = (i == 0 && o.drop_conv1_pads) ? std::vector<int64_t>{0, 0, 0, 0}
                                                              : std::vector<int64_t>{1, 1, 1, 1};
    x = g.node("Conv", n, {x, n + ".weight", n + ".bias"},
               {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("pads", pads)});
    x = g.node("Relu", "relu" + std::to_string(i + 1), {x});
  }
  x = g.node("GlobalAveragePool", "pool", {x}, {}, "pooled");
  g.initializer("bn.scale", float_tensor({kFeatures}, std::vector<float>(kFeatures, 1.0f)));
  g.initializer("bn.bias", float_tensor({kFeatures}, std::vector<float>(kFeatures, 0.0f)));
  g.initializer("bn.mean", float_tensor({kFeatures}, o.feature_mean));
  g.initializer("bn.var", float_tensor({kFeatures}, o.feature_var));
  x = g.node("BatchNormalization", "bn", {x, "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {Attr::f("epsilon", 1e-5f)});
  x = g.node("Flatten", "flatten", {x}, {Attr::i("axis", 1)});
  g.initializer("fc.weight", random_tensor({10, 64}, 300, 0.5f));
  g.initializer("fc.bias", random_tensor({10}, 301, 0.1f));
  x = g.node("Gemm", "fc", {x, "fc.weight", "fc.bias"}, {Attr::i("transB", 1)});
  g.node("Softmax", "softmax", {x}, {Attr::i("axis", 1)}, "probabilities");
  g.output("probabilities", DType::kFloat32, {-1, 10});
  return g.build();
}

// Per-feature mean and variance of the pooled features over the calibration photos.
Status calibrate(DemoOptions& o, const std::filesystem::path& photos) {
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(photos));
  runtime::SessionOptions so;
  so.capture = {"pooled"};
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(build_classifier(o), so, "demo source"));
  const auto& in = session->inputs()[0];
  FETAFIX_ASSIGN_OR_RETURN(auto preset, data::bind_preset_to_input(data::preset_by_name("torch").value(), in.shape,
                                                                    in.dtype, in.name));
  std::vector<double> sum(kFeatures, 0.0), sum_sq(kFeatures, 0.0);
  size_t n = 0;
  for (const auto& f : files) {
    FETAFIX_ASSIGN_OR_RETURN(auto image, data::decode_image(f));
    FETAFIX_ASSIGN_OR_RETURN(auto out, session->run({data::preprocess(image, preset)}));
    const auto& pooled = out.at(session->num_model_outputs());
    for (int64_t c = 0; c < kFeatures; ++c) {
      const double v = pooled.data<float>()[c];
      sum[c] += v;
      sum_sq[c] += v * v;
    }
    ++n;
  }
  for (int64_t c = 0; c < kFeatures; ++c) {
    const double mean = sum[c] / n;
    o.feature_mean[c] = static_cast<float>(mean);
    o.feature_var[c] = static_cast<float>(std::max(sum_sq[c] / n - mean * mean, 1e-6));
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr,
                 "usage: %s OUTDIR [CALIBRATION_PHOTOS]\n"
                 "writes OUTDIR/source.onnx and OUTDIR/target.onnx; with a photo folder, the pooled\n"
                 "features are normalized with statistics measured on it\n",
                 argv[0]);
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "%s: cannot create folder: %s\n", argv[1], ec.message().c_str());
    return 2;
  }
  DemoOptions source;
  if (argc == 3) {
    if (auto st = calibrate(source, argv[2]); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 2;
    }
  }
  DemoOptions target = source;
  target.quantize_conv3 = target.transpose_conv2_kernel = target.drop_conv1_pads = true;
  for (const auto& [name, opts] : {std::pair{"source.onnx", source}, std::pair{"target.onnx", target}}) {
    if (auto st = model::save_model(build_classifier(opts), dir / name); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 2;
    }
  }
  std::printf("wrote %s and %s\n", (dir / "source.onnx").c_str(), (dir / "target.onnx").c_str());
  return 0;
}
