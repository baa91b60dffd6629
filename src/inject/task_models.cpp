#include "inject/task_models.h"

#include <cmath>

#include <fmt/format.h>

#include "data/png_write.h"
#include "model/builder.h"

namespace fetafix::inject {

data::Preset stretched_raw_preset() {
  data::Preset p = data::preset_by_name("raw").value();
  p.crop = data::CropPolicy::kStretch;
  return p;
}

namespace {

// The output "boxes" [N,16,4] (xyxy): each cell of a 4x4 grid of `cell`-pixel cells, its centre
// +- `half` ([N,16,1]).
void boxes_around_cells(GraphBuilder& g, const std::string& half, float cell) {
  std::vector<float> centres;
  for (int cy = 0; cy < 4; ++cy)
    for (int cx = 0; cx < 4; ++cx) {
      centres.push_back(cell * static_cast<float>(cx) + cell / 2);
      centres.push_back(cell * static_cast<float>(cy) + cell / 2);
    }
  g.initializer("centres", float_tensor({1, 16, 2}, centres));
  std::string lo = g.node("Sub", "corner_lo", {"centres", half});
  std::string hi = g.node("Add", "corner_hi", {"centres", half});
  g.node("Concat", "boxes_xyxy", {lo, hi}, {Attr::i("axis", 2)}, "boxes");
}

}  // namespace

onnx::ModelProto detector_model(float box_scale) {
  GraphBuilder g("detector", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 32, 32});
  std::string cells = g.node("AveragePool", "cell_mean", {x}, {Attr::ints("kernel_shape", {8, 8}), Attr::ints("strides", {8, 8})});
  g.initializer("cells_shape", int64_tensor({3}, {0, 16, 3}));
  std::string per_cell = g.node("Transpose", "to_nhwc", {cells}, {Attr::ints("perm", {0, 2, 3, 1})});
  per_cell = g.node("Reshape", "cells_flat", {per_cell, "cells_shape"});
  g.initializer("logit_scale", float_tensor({}, {10.0f / 255.0f}));
  std::string logits = g.node("Mul", "logits", {per_cell, "logit_scale"});
  g.node("Softmax", "class_probs", {logits}, {Attr::i("axis", 2)}, "scores");
  // Half-size = 4 * (0.5 + 0.5 * mean/255) * box_scale, per cell.
  std::string brightness = g.node("ReduceMean", "brightness", {per_cell}, {Attr::ints("axes", {2}), Attr::i("keepdims", 1)});
  g.initializer("half_a", float_tensor({}, {2.0f * box_scale / 255.0f}));
  g.initializer("half_b", float_tensor({}, {2.0f * box_scale}));
  std::string half = g.node("Mul", "half_mul", {brightness, "half_a"});
  half = g.node("Add", "half", {half, "half_b"});
  boxes_around_cells(g, half, 8.0f);
  g.output("boxes", DType::kFloat32, {-1, 16, 4});
  g.output("scores", DType::kFloat32, {-1, 16, 3});
  return g.build();
}

onnx::ModelProto segmenter_model(bool swap_rb) {
  GraphBuilder g("segmenter", 13);
  std::string x = g.input("image", DType::kFloat32, {-1, 3, 16, 16});
  std::vector<float> w(9, 0.0f);
  for (int c = 0; c < 3; ++c) w[static_cast<size_t>(c * 3 + (swap_rb && c != 1 ? 2 - c : c))] = 1.0f / 255.0f;
  g.initializer("class_w", float_tensor({3, 3, 1, 1}, w));
  g.node("Conv", "classify", {x, "class_w"}, {}, "logits");
  g.output("logits", DType::kFloat32, {-1, 3, 16, 16});
  return g.build();
}

onnx::ModelProto gru_model(float weight_scale) {
  const int64_t features = 4, hidden = 3;
  GraphBuilder g("gru", 14);
  std::string x = g.input("x", DType::kFloat32, {1, -1, features});
  std::string h0 = g.input("h0", DType::kFloat32, {1, 1, hidden});
  std::string xt = g.node("Transpose", "time_major", {x}, {Attr::ints("perm", {1, 0, 2})});
  Tensor w = random_tensor({1, 3 * hidden, features}, 31, 0.5f);
  for (auto& v : w.span<float>()) v *= weight_scale;
  g.initializer("W", w);
  g.initializer("R", random_tensor({1, 3 * hidden, hidden}, 32, 0.5f));
  g.initializer("B", random_tensor({1, 6 * hidden}, 33, 0.1f));
  g.node_multi("GRU", "gru", {xt, "W", "R", "B", "", h0}, {"Y", "h"}, {Attr::i("hidden_size", hidden)});
  g.initializer("y_shape", int64_tensor({3}, {1, -1, hidden}));
  g.node("Reshape", "batch_major", {"Y", "y_shape"}, {}, "y");  // Y [T,1,1,H] -> [1,T,H] (batch of 1)
  g.output("y", DType::kFloat32, {1, -1, hidden});
  g.output("h", DType::kFloat32, {1, 1, hidden});
  return g.build();
}

onnx::ModelProto audio_model(float frame_gain) {
  const int frames = 40, frame = 200, bins = 32, classes = 8;
  GraphBuilder g("audio", 13);
  std::string x = g.input("wave", DType::kFloat32, {-1, frames * frame});
  g.initializer("frames_shape", int64_tensor({3}, {0, frames, frame}));
  std::string f = g.node("Reshape", "frames", {x, "frames_shape"});
  if (frame_gain != 1.0f) {
    g.initializer("frame_gain", float_tensor({}, {frame_gain}));
    f = g.node("Mul", "gain", {f, "frame_gain"});
  }
  std::vector<float> cos_basis(frame * bins), sin_basis(frame * bins);
  for (int n = 0; n < frame; ++n)
    for (int k = 0; k < bins; ++k) {  // bins 1..32 of a 200-point DFT: 40 Hz .. 1280 Hz at 8 kHz
      const double angle = 2 * M_PI * (k + 1) * n / frame;
      cos_basis[static_cast<size_t>(n * bins + k)] = static_cast<float>(std::cos(angle));
      sin_basis[static_cast<size_t>(n * bins + k)] = static_cast<float>(std::sin(angle));
    }
  g.initializer("dft_cos", float_tensor({frame, bins}, cos_basis));
  g.initializer("dft_sin", float_tensor({frame, bins}, sin_basis));
  std::string re = g.node("MatMul", "dft_re", {f, "dft_cos"});
  std::string im = g.node("MatMul", "dft_im", {f, "dft_sin"});
  re = g.node("Mul", "re2", {re, re});
  im = g.node("Mul", "im2", {im, im});
  std::string power = g.node("Add", "power", {re, im});
  g.initializer("eps", float_tensor({}, {1e-6f}));
  power = g.node("Add", "power_eps", {power, "eps"});
  std::string logspec = g.node("Log", "log_power", {power});
  g.node("ReduceMean", "mean_over_time", {logspec}, {Attr::ints("axes", {1}), Attr::i("keepdims", 0)}, "embedding");
  g.initializer("classifier_w", random_tensor({bins, classes}, 41, 0.3f));
  g.node("MatMul", "classify", {"embedding", "classifier_w"}, {}, "logits");
  g.output("logits", DType::kFloat32, {-1, classes});
  g.output("embedding", DType::kFloat32, {-1, bins});
  return g.build();
}

namespace {

// The shared backbone; returns the [N,8,H,W] feature map.
std::string conv_backbone(GraphBuilder& g, const std::string& image) {
  g.initializer("c1_w", random_tensor({8, 3, 3, 3}, 51, 0.008f));
  g.initializer("c1_b", random_tensor({8}, 52, 0.5f));
  std::string x = g.node("Conv", "conv1", {image, "c1_w", "c1_b"},
                         {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})});
  std::vector<float> gamma, beta, mean, var;
  Rng rng(53);
  for (int c = 0; c < 8; ++c) {
    gamma.push_back(rng.uniform(0.5f, 1.5f));
    beta.push_back(rng.uniform(-0.5f, 0.5f));
    mean.push_back(rng.uniform(-1.0f, 1.0f));
    var.push_back(rng.uniform(0.02f, 0.08f));
  }
  g.initializer("bn_gamma", float_tensor({8}, gamma));
  g.initializer("bn_beta", float_tensor({8}, beta));
  g.initializer("bn_mean", float_tensor({8}, mean));
  g.initializer("bn_var", float_tensor({8}, var));
  x = g.node("BatchNormalization", "bn1", {x, "bn_gamma", "bn_beta", "bn_mean", "bn_var"}, {Attr::f("epsilon", 1e-5f)});
  g.initializer("clip_min", float_tensor({}, {0.0f}));
  g.initializer("clip_max", float_tensor({}, {6.0f}));
  x = g.node("Clip", "relu6", {x, "clip_min", "clip_max"});
  g.initializer("c2_w", random_tensor({8, 8, 3, 3}, 54, 0.15f));
  g.initializer("c2_b", random_tensor({8}, 55, 0.2f));
  x = g.node("Conv", "conv2", {x, "c2_w", "c2_b"}, {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})});
  return g.node("Relu", "relu2", {x});
}

}  // namespace

onnx::ModelProto conv_segmenter_model() {
  GraphBuilder g("conv_segmenter", 13);
  std::string x = conv_backbone(g, g.input("image", DType::kFloat32, {-1, 3, 16, 16}));
  g.initializer("head_w", random_tensor({3, 8, 1, 1}, 56, 0.5f));
  g.node("Conv", "head", {x, "head_w"}, {Attr::ints("kernel_shape", {1, 1})}, "logits");
  g.output("logits", DType::kFloat32, {-1, 3, 16, 16});
  return g.build();
}

onnx::ModelProto conv_detector_model() {
  GraphBuilder g("conv_detector", 13);
  std::string x = conv_backbone(g, g.input("image", DType::kFloat32, {-1, 3, 16, 16}));
  g.initializer("cell_w", random_tensor({8, 8, 4, 4}, 57, 0.1f));
  x = g.node("Conv", "cells", {x, "cell_w"}, {Attr::ints("kernel_shape", {4, 4}), Attr::ints("strides", {4, 4})});
  g.initializer("cls_w", random_tensor({3, 8, 1, 1}, 58, 0.6f));
  std::string cls = g.node("Conv", "cls_head", {x, "cls_w"}, {Attr::ints("kernel_shape", {1, 1})});
  cls = g.node("Transpose", "cls_nhwc", {cls}, {Attr::ints("perm", {0, 2, 3, 1})});
  g.initializer("cls_shape", int64_tensor({3}, {0, 16, 3}));
  cls = g.node("Reshape", "cls_flat", {cls, "cls_shape"});
  g.node("Softmax", "class_probs", {cls}, {Attr::i("axis", 2)}, "scores");
  g.initializer("size_w", random_tensor({1, 8, 1, 1}, 59, 0.3f));
  std::string size = g.node("Conv", "size_head", {x, "size_w"}, {Attr::ints("kernel_shape", {1, 1})});
  size = g.node("Sigmoid", "size_unit", {size});
  g.initializer("size_shape", int64_tensor({3}, {0, 16, 1}));
  size = g.node("Reshape", "size_flat", {size, "size_shape"});  // [N,1,4,4] -> [N,16,1], cells row-major
  g.initializer("half_scale", float_tensor({}, {2.0f}));
  g.initializer("half_base", float_tensor({}, {1.0f}));
  std::string half = g.node("Mul", "half_mul", {size, "half_scale"});
  half = g.node("Add", "half", {half, "half_base"});
  boxes_around_cells(g, half, 4.0f);
  g.output("boxes", DType::kFloat32, {-1, 16, 4});
  g.output("scores", DType::kFloat32, {-1, 16, 3});
  return g.build();
}

onnx::ModelProto conv_recognizer_model() {
  GraphBuilder g("conv_recognizer", 13);
  std::string x = conv_backbone(g, g.input("image", DType::kFloat32, {-1, 3, 8, 32}));
  g.initializer("col_w", random_tensor({5, 8, 8, 1}, 60, 0.15f));
  x = g.node("Conv", "columns", {x, "col_w"}, {Attr::ints("kernel_shape", {8, 1})});  // [N,5,1,32]
  g.initializer("seq_shape", int64_tensor({3}, {0, 5, 32}));
  x = g.node("Reshape", "seq", {x, "seq_shape"});
  x = g.node("Transpose", "time_major", {x}, {Attr::ints("perm", {0, 2, 1})});
  g.node("Softmax", "symbol_probs", {x}, {Attr::i("axis", 2)}, "probs");
  g.output("probs", DType::kFloat32, {-1, 32, 5});
  return g.build();
}

Status write_block_images(const std::filesystem::path& dir, int width, int height, int count, uint64_t seed,
                          int first) {
  Rng rng(seed);
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> block(static_cast<size_t>((width / 4 + 1) * (height / 4 + 1) * 3));
    for (auto& b : block) b = static_cast<uint8_t>(rng.next_u64() % 256);
    std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c)
          rgb[static_cast<size_t>((y * width + x) * 3 + c)] =
              block[static_cast<size_t>(((y / 4) * (width / 4 + 1) + x / 4) * 3 + c)];
    FETAFIX_TRY_STATUS(data::write_png_rgb(dir / fmt::format("{:02}.png", first + i), width, height, rgb));
  }
  return {};
}

Status write_two_tone_images(const std::filesystem::path& dir, int width, int height, const std::vector<TwoTone>& images) {
  for (size_t i = 0; i < images.size(); ++i) {
    std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < 3; ++c)
          rgb[static_cast<size_t>((y * width + x) * 3 + c)] = x < images[i].split ? images[i].left[c] : images[i].right[c];
    FETAFIX_TRY_STATUS(data::write_png_rgb(dir / fmt::format("{:02}.png", i), width, height, rgb));
  }
  return {};
}

}  // namespace fetafix::inject
