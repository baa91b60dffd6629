// The paper's other two architectures, ResNet101 v2 and InceptionV3, built in code with the
// block structure of their Keras definitions and deterministic weights: the evaluation corpus
// needs them and no trained weights ship with the project. Random weights alone give every
// photo the same label, so calibrate_on_photos() measures each BatchNormalization's statistics
// on real photos (as training would have) and standardizes the classifier's input: top-1 then
// varies across photos and faults flip it. Layer names follow Keras (conv2_block1_1_conv,
// mixed5, ...). docs/corpus.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "data/preprocess.h"

namespace fetafix::inject {

// Per-channel input normalisation inside the graph, as torchvision's pretrained InceptionV3
// does (transform_input: x_c * std_c/0.5 + (mean_c-0.5)/0.5, fed torch-preprocessed input):
// for each channel Gather(c) -> Unsqueeze -> Mul -> Add, then Concat.
enum class InputBlock {
  kNone,
  kNchw,  // NCHW input, axes 1 (a PyTorch export)
  kNhwc,  // NHWC input, axes 3, then Transpose [0,3,1,2] (a TF/Keras export)
};

struct ArchitectureOptions {
  // Every layer's channel count times `width` (rounded, at least 4): the corpus uses less
  // than 1 to keep evaluation fast on a small machine.
  double width = 1.0;
  int64_t image_size = 0;  // 0: the architecture's own (ResNet101 v2 224, InceptionV3 299)
  int64_t classes = 1000;
  InputBlock input_block = InputBlock::kNone;
  uint64_t seed = 1;  // weights: a per-layer stream derived from the seed and the layer's name
};

// Keras ResNet101V2: Pad + 7x7/2 conv, Pad + 3x3/2 max pool, pre-activation bottleneck stacks of
// [3, 4, 23, 3] blocks (stride at each stack's last block, 1x1-conv shortcut in its first,
// 1x1/2 max-pool shortcut where it strides; Pad nodes before the 3x3 convs), post BN + ReLU,
// global average pool, dense softmax. Input [N,3,S,S] float (NHWC with InputBlock::kNhwc).
Result<onnx::ModelProto> build_resnet101_v2(const ArchitectureOptions& options);

// Keras InceptionV3: the 5-conv stem with two 3x3/2 max pools, 3 InceptionA blocks (mixed0-2),
// InceptionB (mixed3), 4 InceptionC blocks with 1x7/7x1 convs (mixed4-7), InceptionD (mixed8),
// 2 InceptionE blocks (mixed9-10), global average pool, dense softmax: 94 conv + BN + ReLU
// layers. Default input 299.
Result<onnx::ModelProto> build_inception_v3(const ArchitectureOptions& options);

struct CalibrationReport {
  size_t photos = 0;
  size_t batch_norms = 0;
  bool classifier_standardized = false;
};

// Sets every BatchNormalization's mean and variance to those its input has over `photos` (one
// batch; each BN's statistics are measured with the BNs before it already calibrated, in a
// single run of a copy where BNs use batch statistics), and folds the per-feature
// standardization of the last Gemm's input (over the same photos) into that Gemm. The model's
// first input must take `preset` (dynamic batch). Deterministic: one thread, photos in the
// order given.
Result<CalibrationReport> calibrate_on_photos(onnx::ModelProto& model, const std::vector<std::filesystem::path>& photos,
                                              const data::Preset& preset);

}  // namespace fetafix::inject
