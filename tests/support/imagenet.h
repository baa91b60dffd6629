// Top-1 accuracy on ../shared/assets/images/imagenet-samples (class = the wnid's position in
// sorted order): proves that decoding, preprocessing and a model agree with ImageNet's labels.
#pragma once

#include <filesystem>
#include <string>

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::testing {

// Runs `model` (one image input, [N,1000] scores) on every sample with the named preset.
Result<double> imagenet_top1(const onnx::ModelProto& model, const std::filesystem::path& image_dir,
                             const std::string& preset_name);

}  // namespace fetafix::testing
