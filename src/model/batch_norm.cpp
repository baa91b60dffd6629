#include "model/batch_norm.h"

#include <algorithm>
#include <cmath>

namespace fetafix::model {

std::vector<double> batch_norm_scale(const std::vector<float>& gamma, const std::vector<float>& var, float epsilon) {
  std::vector<double> scale(gamma.size());
  for (size_t c = 0; c < scale.size(); ++c) scale[c] = gamma[c] / std::sqrt(static_cast<double>(var[c]) + epsilon);
  return scale;
}

void scale_channels(std::vector<float>& values, const std::vector<int64_t>& shape, int64_t axis, int64_t channels,
                    const std::vector<double>& scale) {
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(values[i] * scale[static_cast<size_t>((static_cast<int64_t>(i) / inner) % channels)]);
}

void fold_bias(std::vector<float>& bias, const std::vector<float>& mean, const std::vector<float>& beta,
               const std::vector<double>& scale) {
  for (size_t c = 0; c < std::min(bias.size(), scale.size()); ++c)
    bias[c] = static_cast<float>((bias[c] - mean[c]) * scale[c] + beta[c]);
}

}  // namespace fetafix::model
