// Folding a BatchNormalization into the layer before it, as converters do:
//   w' = w * s along the output channels, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
// The WB check folds the Source's BN to compare with a Target that folded it; the WB repair folds
// it to write the Source's values into such a Target. Both must compute the same floats.
#pragma once

#include <cstdint>
#include <vector>

namespace fetafix::model {

// s per channel, in double (the products are rounded to float once, at the end).
std::vector<double> batch_norm_scale(const std::vector<float>& gamma, const std::vector<float>& var, float epsilon);
// values[i] *= scale[c], c the index of element i along `axis` of `shape` (which has `channels` there).
void scale_channels(std::vector<float>& values, const std::vector<int64_t>& shape, int64_t axis, int64_t channels,
                    const std::vector<double>& scale);
// bias[c] = (bias[c] - mean[c]) * scale[c] + beta[c], for the channels both have.
void fold_bias(std::vector<float>& bias, const std::vector<float>& mean, const std::vector<float>& beta,
               const std::vector<double>& scale);

}  // namespace fetafix::model
