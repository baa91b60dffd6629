// WAV samples for audio models: decoded with libsndfile (any PCM or float WAV it reads),
// resampled with libsoxr (its "high quality" setting: a linear-phase filter with 0.01 dB
// passband ripple and about 125 dB stopband rejection, the quality sox itself defaults to).
#pragma once

#include <filesystem>
#include <span>
#include <vector>

#include "common/result.h"
#include "data/npy.h"

namespace fetafix::data {

struct Audio {
  int sample_rate = 0;
  std::vector<float> samples;  // mono, in [-1, 1] (libsndfile's scaling of integer PCM)
};

// Decodes a mono WAV file. Errors (naming the file): not a WAV, more than one channel (mix
// it down first: sox in.wav -c 1 out.wav), more samples than limits.max_array_bytes allows.
Result<Audio> decode_wav(const std::filesystem::path& path, const ArrayLimits& limits = {});

// `samples` at `from` Hz resampled to `to` Hz; round(n * to / from) samples come back.
// from == to returns the samples unchanged. Error: a result over limits.max_array_bytes (a long
// file at a low rate resampled to a high one), checked before anything is allocated.
Result<std::vector<float>> resample_audio(std::span<const float> samples, int from, int to,
                                          const ArrayLimits& limits = {});

// Writes mono 16-bit PCM (tests and tools make their sample sets with it).
Status write_wav(const std::filesystem::path& path, std::span<const float> samples, int sample_rate);

}  // namespace fetafix::data
