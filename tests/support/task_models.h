// The task models of src/inject/task_models.h, for the tests under their old names: the image
// writers throw on failure (a test fixture that cannot be written is a broken test machine).
#pragma once

#include <stdexcept>

#include "inject/task_models.h"

namespace fetafix::testing {

using inject::audio_model;
using inject::conv_detector_model;
using inject::conv_recognizer_model;
using inject::conv_segmenter_model;
using inject::detector_model;
using inject::gru_model;
using inject::segmenter_model;
using inject::stretched_raw_preset;
using inject::TwoTone;

inline void write_block_images(const std::filesystem::path& dir, int width, int height, int count, uint64_t seed) {
  if (auto st = inject::write_block_images(dir, width, height, count, seed); !st.ok())
    throw std::runtime_error(st.error().message);
}

inline void write_two_tone_images(const std::filesystem::path& dir, int width, int height,
                                  const std::vector<TwoTone>& images) {
  if (auto st = inject::write_two_tone_images(dir, width, height, images); !st.ok())
    throw std::runtime_error(st.error().message);
}

}  // namespace fetafix::testing
