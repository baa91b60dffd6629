// Small models of the non-classifier kinds fetafix compares (issue 11), built in code with
// deterministic weights, each with a "converted" variant carrying one planted fault. The
// behaviour is designed, not random, so a test can say which samples must disagree. The
// evaluation corpus (task_corpus.cpp) and the tests (tests/support/task_models.h) use them.
#pragma once

#include <filesystem>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "data/preprocess.h"

namespace fetafix::inject {

// 0..255 floats, stretched (no crop): the test images are already the models' size, so every
// pixel reaches the model as it was written.
data::Preset stretched_raw_preset();

// Detector head on [N,3,32,32] float (0..255): a 4x4 grid of 8x8 cells, one anchor per cell.
// scores [N,16,3] = softmax over the cell's mean colour (class = dominant channel, R/G/B);
// boxes [N,16,4] (xyxy, pixels) = the cell's square, its half-size 4 * (0.5 + 0.5 * brightness).
// box_scale != 1 is the fault: the Target's boxes are that much larger.
onnx::ModelProto detector_model(float box_scale = 1.0f);

// Segmenter on [N,3,16,16] float: a 1x1 Conv gives per-pixel class logits [N,3,16,16]
// (class = dominant channel). swap_rb swaps the red and blue class weights (a fault).
onnx::ModelProto segmenter_model(bool swap_rb = false);

// Stateful GRU with two inputs and two outputs: x [1,T,4] and the state h0 [1,1,3] in,
// y [1,T,3] (every step's state) and h [1,1,3] (the last state) out. weight_scale != 1 scales
// the Target's input weights (a weights fault).
onnx::ModelProto gru_model(float weight_scale = 1.0f);

// Audio front end on raw samples [N,8000] (1 s at 8 kHz): 40 frames of 200 samples -> DFT
// magnitude (32 bins, a MatMul with cos and sin bases) -> log -> mean over time = embedding
// [N,32] -> a linear classifier, logits [N,8]. Two outputs. frame_gain != 1 scales the
// Target's frames before the DFT (a preprocessing-like fault that shifts the log spectrum).
onnx::ModelProto audio_model(float frame_gain = 1.0f);

// Conv nets with a task head, for localize and repair on any task (issue 11): the faults
// `fetafix inject` plants (LH pads/epsilon/clip, WB quantization, ...) have layers to act on.
// Backbone: Conv 3x3 (pads 1) -> BatchNormalization (small variances) -> Clip(0, 6) -> Conv 3x3
// (pads 1) -> Relu; seeded weights; input raw 0..255 floats (stretched_raw_preset()).
// image [N,3,16,16] -> logits [N,3,16,16] (task mask).
onnx::ModelProto conv_segmenter_model();
// image [N,3,16,16] -> a 4x4 grid of cells (Conv 4x4, stride 4): boxes [N,16,4] (xyxy, pixels:
// the cell's centre +- 1..3) and scores [N,16,3] (softmax) (task boxes).
onnx::ModelProto conv_detector_model();
// image [N,3,8,32] -> probs [N,32,5]: per column a softmax over 5 symbols, 0 the CTC blank (task
// text:blank=0).
onnx::ModelProto conv_recognizer_model();
// Images of `width` x `height` made of 4x4 blocks of seeded random colours, 00.png, 01.png, ...
// `first` numbers the first file (first.png, ...: a second set continues the names).
Status write_block_images(const std::filesystem::path& dir, int width, int height, int count, uint64_t seed,
                          int first = 0);

// Two-colour images for the segmenter and the detector: the left `split` columns one colour,
// the rest another; written as PNGs into `dir`, named 00.png, 01.png, ...
struct TwoTone {
  uint8_t left[3], right[3];
  int split;
};
Status write_two_tone_images(const std::filesystem::path& dir, int width, int height, const std::vector<TwoTone>& images);

}  // namespace fetafix::inject
