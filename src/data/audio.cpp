#include "data/audio.h"

#include <cmath>
#include <memory>

#include <sndfile.h>
#include <soxr.h>

#include "common/fs.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {
struct SndCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
}  // namespace

Result<Audio> decode_wav(const fs::path& path, const ArrayLimits& limits) {
  FETAFIX_TRY_STATUS(check_regular_file(path));  // libsndfile would block on a FIFO
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) return make_error("{}: cannot read as audio: {}", path.string(), sf_strerror(nullptr));
  const int major = info.format & SF_FORMAT_TYPEMASK;
  if (major != SF_FORMAT_WAV && major != SF_FORMAT_WAVEX)
    return make_error("{}: not a WAV file (fetafix reads .wav samples only)", path.string());
  if (info.channels != 1)
    return make_error("{}: {} channels; audio samples must be mono (mix down first, e.g. sox in.wav -c 1 out.wav)",
                      path.string(), info.channels);
  if (info.samplerate <= 0) return make_error("{}: invalid sample rate {}", path.string(), info.samplerate);
  const uint64_t bytes = static_cast<uint64_t>(info.frames) * sizeof(float);
  if (info.frames < 0 || bytes > limits.max_array_bytes)
    return make_error("{}: {} samples would take {} bytes as float, {}", path.string(), info.frames, bytes,
                      array_limit_text(limits));
  Audio a;
  a.sample_rate = info.samplerate;
  a.samples.resize(static_cast<size_t>(info.frames));
  const sf_count_t got = sf_readf_float(file.get(), a.samples.data(), info.frames);
  if (got != info.frames)
    return make_error("{}: truncated: {} of {} samples could be read", path.string(), got, info.frames);
  return a;
}

Result<std::vector<float>> resample_audio(std::span<const float> samples, int from, int to,
                                          const ArrayLimits& limits) {
  if (from <= 0 || to <= 0) return make_error("sample rates must be positive (got {} and {})", from, to);
  if (from == to) return std::vector<float>(samples.begin(), samples.end());
  const double out_samples = std::round(static_cast<double>(samples.size()) * to / from);
  if (out_samples * sizeof(float) > static_cast<double>(limits.max_array_bytes))
    return make_error("resampled from {} Hz to {} Hz it would take {} samples, {}", from, to,
                      static_cast<uint64_t>(out_samples), array_limit_text(limits));
  const size_t out_len = static_cast<size_t>(out_samples);
  std::vector<float> out(out_len);
  size_t done = 0;
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_error_t err = soxr_oneshot(from, to, 1, samples.data(), samples.size(), nullptr, out.data(), out_len,
                                        &done, nullptr, &quality, nullptr);
  if (err) return make_error("resampling from {} Hz to {} Hz failed: {}", from, to, soxr_strerror(err));
  out.resize(done);  // soxr flushes its filter: done == out_len for every length we tried
  out.resize(out_len, 0.0f);
  return out;
}

Status write_wav(const fs::path& path, std::span<const float> samples, int sample_rate) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  const fs::path tmp = path.string() + ".tmp";
  {
    std::unique_ptr<SNDFILE, SndCloser> file(sf_open(tmp.c_str(), SFM_WRITE, &info));
    if (!file) return make_error("{}: cannot create: {}", path.string(), sf_strerror(nullptr));
    if (sf_writef_float(file.get(), samples.data(), static_cast<sf_count_t>(samples.size())) !=
        static_cast<sf_count_t>(samples.size()))
      return make_error("{}: cannot write: {}", path.string(), sf_strerror(file.get()));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return make_error("{}: cannot write: {}", path.string(), ec.message());
  return {};
}

}  // namespace fetafix::data
