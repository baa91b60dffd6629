// Sample sets of any kind: listing, decoding, feeding model inputs, and the errors for arrays
// that do not fit (file, array and expected shape named).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <sndfile.h>

#include "data/samples.h"
#include "support/assets.h"
#include "support/images.h"
#include "support/special_files.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

Tensor filled(DType t, std::vector<int64_t> shape, float value = 0) {
  Tensor x(t, std::move(shape));
  if (t == DType::kFloat32)
    for (auto& v : x.span<float>()) v = value;
  return x;
}

// A GRU-like model's inputs: x [1, T, 4] and its state h0 [1, 1, 3].
std::vector<InputSlot> rnn_inputs() {
  return {{"x", DType::kFloat32, {1, -1, 4}}, {"h0", DType::kFloat32, {1, 1, 3}}};
}

std::vector<std::vector<std::string>> own_names(const std::vector<InputSlot>& inputs) {
  std::vector<std::vector<std::string>> n;
  for (const auto& in : inputs) n.push_back({in.name});
  return n;
}

template <class T>
std::string message(const Result<T>& r) { return r.ok() ? "(ok)" : r.error().message; }

}  // namespace

TEST(Samples, ListsEveryKindSortedAndIgnoresOtherFiles) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_list");
  fs::create_directories(dir / "b");
  ::fetafix::testing::write_png_rgb(dir / "b/img.PNG", 4, 4, std::vector<uint8_t>(48, 7));
  ASSERT_TRUE(write_npz(dir / "a.npz", {{"x", filled(DType::kFloat32, {2})}}).ok());
  { std::ofstream(dir / "c.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {2})); }
  ASSERT_TRUE(write_wav(dir / "d.wav", std::vector<float>(100, 0.1f), 8000).ok());
  { std::ofstream(dir / "notes.txt") << "not a sample"; }
  auto all = list_samples(dir);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].name, "a.npz");
  EXPECT_EQ((*all)[0].kind, SampleKind::kNpz);
  EXPECT_EQ((*all)[1].name, "b/img.PNG");
  EXPECT_EQ((*all)[1].kind, SampleKind::kImage);
  EXPECT_EQ((*all)[2].kind, SampleKind::kNpy);
  EXPECT_EQ((*all)[3].kind, SampleKind::kWav);
  auto images = list_samples(dir, /*images_only=*/true);
  ASSERT_TRUE(images.ok());
  ASSERT_EQ(images->size(), 1u);
  EXPECT_EQ((*images)[0].name, "b/img.PNG");
  const fs::path empty = ::fetafix::testing::temp_dir("samples_empty");
  EXPECT_NE(message(list_samples(empty)).find("holds no sample"), std::string::npos);
  EXPECT_NE(message(list_samples(empty / "nope")).find("does not exist"), std::string::npos);
}

// Entries named like samples that are not regular files are listed (so they are counted, or
// fail under --strict) and every reader refuses them at once: a FIFO never blocks a reader.
TEST(Samples, SpecialFilesAreListedAndRefusedByEveryReader) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_special");
  { std::ofstream(dir / "a.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {2})); }
  fs::create_symlink(dir / "gone.npy", dir / "b_dangling.npy");
  for (const char* name : {"c.npy", "d.npz", "e.wav"}) ASSERT_TRUE(::fetafix::testing::make_fifo(dir / name));
  auto all = list_samples(dir);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 5u);
  auto set = SampleSet::open(dir, {});
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_TRUE(set->decode(0).ok());
  EXPECT_NE(message(set->decode(1)).find("b_dangling.npy: dangling symbolic link"), std::string::npos);
  for (size_t i = 2; i < 5; ++i) EXPECT_NE(message(set->decode(i)).find(": is a FIFO"), std::string::npos) << i;
}

TEST(Samples, UnreadableSubfolderIsNamed) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_unreadable");
  fs::create_directories(dir / "private");
  { std::ofstream(dir / "private" / "x.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {2})); }
  fs::permissions(dir / "private", fs::perms::none);
  const int code = ::fetafix::testing::run_unprivileged([&] {
    const std::string m = message(list_samples(dir));
    return m.find("cannot list sample folder '" + (dir / "private").string() + "'") != std::string::npos ? 0 : 1;
  });
  fs::permissions(dir / "private", fs::perms::owner_all);
  EXPECT_EQ(code, 0);
}

TEST(Samples, ArraysOverTheTensorLimitAreRefusedNamingTheFlag) {
  ResourceLimits r;
  r.max_tensor_bytes = 1000;
  const ArrayLimits limits = array_limits(r);
  EXPECT_EQ(limits.max_array_bytes, 1000u);
  EXPECT_EQ(limits.max_sample_bytes, 2000u);
  const fs::path dir = ::fetafix::testing::temp_dir("samples_limits");
  { std::ofstream(dir / "big.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {1, 300})); }
  EXPECT_NE(message(read_npy(dir / "big.npy", limits)).find("over the tensor limit of 1000 bytes (--max-tensor-bytes)"),
            std::string::npos);
  // Resampling is checked before it allocates: 1 s at 8 kHz to 10 MHz is 40 MB of floats.
  const std::vector<float> second(8000, 0.1f);
  EXPECT_NE(message(resample_audio(second, 8000, 10000000, limits)).find("10000000 samples, over the tensor limit"),
            std::string::npos);
  EXPECT_TRUE(resample_audio(second, 8000, 16000).ok());
}

TEST(Samples, NpzFeedsEveryInputByNameWithTheBatchDimOptional) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_npz");
  Tensor x = filled(DType::kFloat32, {5, 4}, 2.0f);  // no batch dim: [T, 4]
  Tensor h0 = filled(DType::kFloat32, {1, 1, 3}, 0.5f);
  ASSERT_TRUE(write_npz(dir / "s1.npz", {{"x", x}, {"h0", h0}}).ok());
  auto set = SampleSet::open(dir, {});
  ASSERT_TRUE(set.ok()) << set.error().message;
  auto feeder = InputFeeder::bind(*set, rnn_inputs(), own_names(rnn_inputs()), Preset{}, "rnn.onnx");
  ASSERT_TRUE(feeder.ok()) << feeder.error().message;
  auto sample = set->decode(0);
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto feed = feeder->feed(*sample, "s1.npz");
  ASSERT_TRUE(feed.ok()) << feed.error().message;
  ASSERT_EQ(feed->size(), 2u);
  EXPECT_EQ((*feed)[0].shape, (std::vector<int64_t>{1, 5, 4}));
  EXPECT_EQ((*feed)[1].to_float(), (std::vector<float>{0.5f, 0.5f, 0.5f}));
}

TEST(Samples, ArraysThatDoNotFitAreBadInputNamingFileArrayAndExpectedShape) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_bad_npz");
  auto check = [&](const std::vector<NamedArray>& arrays, const std::vector<std::string>& expected) {
    ASSERT_TRUE(write_npz(dir / "s.npz", arrays).ok());
    auto set = SampleSet::open(dir, {});
    ASSERT_TRUE(set.ok());
    auto feeder = InputFeeder::bind(*set, rnn_inputs(), own_names(rnn_inputs()), Preset{}, "rnn.onnx");
    ASSERT_TRUE(feeder.ok());
    auto feed = feeder->feed(set->decode(0).value(), "s.npz");
    ASSERT_FALSE(feed.ok());
    EXPECT_EQ(feed.error().kind, ErrorKind::kBadInput);
    for (const auto& e : expected) EXPECT_NE(feed.error().message.find(e), std::string::npos) << feed.error().message;
  };
  const Tensor h0 = filled(DType::kFloat32, {1, 1, 3});
  check({{"x", Tensor(DType::kFloat64, {1, 5, 4})}, {"h0", h0}},
        {"s.npz: array 'x' is float64 [1,5,4]", "input 'x' of rnn.onnx takes float32 [1,?,4]", "astype(np.float32)"});
  check({{"x", filled(DType::kFloat32, {1, 5, 3})}, {"h0", h0}},
        {"s.npz: array 'x' has shape [1,5,3]", "takes float32 [1,?,4]"});
  check({{"h0", h0}}, {"s.npz: no array 'x'", "float32 [1,?,4] expected"});
  check({{"x", filled(DType::kFloat32, {1, 5, 4})}, {"h0", h0}, {"c0", h0}},
        {"s.npz: array 'c0' names no input of rnn.onnx", "'x', 'h0'"});
}

TEST(Samples, ConstantInputsFeedEverySampleAndMustFit) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_const");
  { std::ofstream(dir / "x1.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {1, 6, 4}, 1.0f)); }
  { std::ofstream(dir / "x2.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {6, 4}, 2.0f)); }
  const fs::path state_dir = ::fetafix::testing::temp_dir("samples_const_state");
  { std::ofstream(state_dir / "h0.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {1, 1, 3}, 0.25f)); }
  { std::ofstream(state_dir / "bad.npy", std::ios::binary) << encode_npy(filled(DType::kFloat32, {1, 2, 3})); }

  // Without the state, .npy samples cannot feed a two-input model.
  auto bare = SampleSet::open(dir, {});
  ASSERT_TRUE(bare.ok());
  auto unfed = InputFeeder::bind(*bare, rnn_inputs(), own_names(rnn_inputs()), Preset{}, "rnn.onnx");
  ASSERT_FALSE(unfed.ok());
  EXPECT_NE(unfed.error().message.find("--input NAME=FILE.npy"), std::string::npos) << unfed.error().message;

  SampleOptions o;
  o.constants = {{"h0", state_dir / "h0.npy"}};
  auto set = SampleSet::open(dir, o);
  ASSERT_TRUE(set.ok()) << set.error().message;
  auto feeder = InputFeeder::bind(*set, rnn_inputs(), own_names(rnn_inputs()), Preset{}, "rnn.onnx");
  ASSERT_TRUE(feeder.ok()) << feeder.error().message;
  for (size_t i = 0; i < 2; ++i) {
    auto feed = feeder->feed(set->decode(i).value(), set->files()[i].name);
    ASSERT_TRUE(feed.ok()) << feed.error().message;
    EXPECT_EQ((*feed)[0].shape, (std::vector<int64_t>{1, 6, 4}));  // x2 had no batch dim
    EXPECT_EQ((*feed)[1].to_float()[0], 0.25f);
  }
  o.constants = {{"h0", state_dir / "bad.npy"}};
  auto bad = InputFeeder::bind(SampleSet::open(dir, o).value(), rnn_inputs(), own_names(rnn_inputs()), Preset{},
                               "rnn.onnx");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("--input h0 has shape [1,2,3]; input 'h0' of rnn.onnx takes float32 [1,1,3]"),
            std::string::npos)
      << bad.error().message;
  o.constants = {{"c0", state_dir / "h0.npy"}};
  EXPECT_NE(message(InputFeeder::bind(SampleSet::open(dir, o).value(), rnn_inputs(), own_names(rnn_inputs()), Preset{},
                                      "rnn.onnx"))
                .find("--input c0: rnn.onnx has no input of that name"),
            std::string::npos);
  o.constants = {{"h0", state_dir / "missing.npy"}};
  EXPECT_NE(message(SampleSet::open(dir, o)).find("--input h0: "), std::string::npos);
}

TEST(Samples, SourceAndTargetInputsArePairedByNameElseByOrder) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_pairing");
  ASSERT_TRUE(write_npz(dir / "s.npz", {{"x", filled(DType::kFloat32, {1, 2, 4}, 1)},
                                        {"h0", filled(DType::kFloat32, {1, 1, 3}, 3)}})
                  .ok());
  auto set = SampleSet::open(dir, {});
  ASSERT_TRUE(set.ok());
  // Same names in another order: by name.
  std::vector<InputSlot> swapped = {rnn_inputs()[1], rnn_inputs()[0]};
  auto by_name = plan_feeds(*set, rnn_inputs(), swapped, Preset{}, Preset{}, "s.onnx", "t.onnx");
  ASSERT_TRUE(by_name.ok()) << by_name.error().message;
  EXPECT_TRUE(by_name->pairing.by_name);
  EXPECT_EQ(by_name->mapping, "'x', 'h0' (by name)");
  auto target_feed = by_name->target.feed(set->decode(0).value(), "s.npz");
  ASSERT_TRUE(target_feed.ok()) << target_feed.error().message;
  EXPECT_EQ((*target_feed)[0].to_float()[0], 3.0f);  // the Target's first input is h0
  // Renamed by a converter: by order; the npz keeps the Source's names.
  std::vector<InputSlot> renamed = {{"input_1", DType::kFloat32, {1, -1, 4}}, {"state", DType::kFloat32, {1, 1, 3}}};
  auto by_order = plan_feeds(*set, rnn_inputs(), renamed, Preset{}, Preset{}, "s.onnx", "t.onnx");
  ASSERT_TRUE(by_order.ok()) << by_order.error().message;
  EXPECT_EQ(by_order->mapping, "'x' -> 'input_1', 'h0' -> 'state' (by order)");
  EXPECT_TRUE(by_order->target.feed(set->decode(0).value(), "s.npz").ok());
  auto uneven = plan_feeds(*set, rnn_inputs(), {renamed[0]}, Preset{}, Preset{}, "s.onnx", "t.onnx");
  ASSERT_FALSE(uneven.ok());
  EXPECT_NE(uneven.error().message.find("s.onnx has 2 inputs ('x', 'h0') and t.onnx has 1"), std::string::npos)
      << uneven.error().message;
}

TEST(Samples, ImagesFeedTheOneImageInputThroughThePreset) {
  const fs::path dir = ::fetafix::testing::temp_dir("samples_images");
  ::fetafix::testing::write_png_rgb(dir / "a.png", 8, 6, ::fetafix::testing::textured_solid(8, 6, 200, 10, 10, 1));
  auto set = SampleSet::open(dir, {});
  ASSERT_TRUE(set.ok());
  std::vector<InputSlot> image{{"image", DType::kFloat32, {-1, 3, 16, 16}}};
  auto feeder = InputFeeder::bind(*set, image, own_names(image), preset_by_name("raw").value(), "cnn.onnx");
  ASSERT_TRUE(feeder.ok()) << feeder.error().message;
  EXPECT_EQ(feeder->preset().width, 16);
  auto feed = feeder->feed(set->decode(0).value(), "a.png");
  ASSERT_TRUE(feed.ok());
  EXPECT_EQ((*feed)[0].shape, (std::vector<int64_t>{1, 3, 16, 16}));
  std::vector<InputSlot> vector{{"features", DType::kFloat32, {-1, 10}}};
  auto refused = InputFeeder::bind(*set, vector, own_names(vector), preset_by_name("raw").value(), "vec.onnx");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("vec.onnx: input 'features' has shape"), std::string::npos)
      << refused.error().message;
}

TEST(Audio, DecodesMonoWavAndResamplesWithSoxr) {
  const fs::path dir = ::fetafix::testing::temp_dir("audio_wav");
  std::vector<float> tone(16000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.5f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
  ASSERT_TRUE(write_wav(dir / "tone.wav", tone, 16000).ok());
  auto a = decode_wav(dir / "tone.wav");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->sample_rate, 16000);
  ASSERT_EQ(a->samples.size(), tone.size());
  EXPECT_NEAR(a->samples[100], tone[100], 1.0 / 32768 + 1e-6);  // 16-bit PCM
  auto half = resample_audio(a->samples, 16000, 8000);
  ASSERT_TRUE(half.ok()) << half.error().message;
  ASSERT_EQ(half->size(), 8000u);
  // A 440 Hz tone is well inside the new band: the resampled signal is the same tone.
  double err = 0;
  for (size_t i = 200; i < 7800; ++i) err = std::max(err, std::fabs((*half)[i] - 0.5 * std::sin(2 * M_PI * 440.0 * i / 8000.0)));
  EXPECT_LT(err, 1e-3);
  // Samples fed to a [batch, samples] input at --sample-rate.
  SampleOptions o;
  o.sample_rate = 8000;
  auto set = SampleSet::open(dir, o);
  ASSERT_TRUE(set.ok());
  std::vector<InputSlot> wave{{"wave", DType::kFloat32, {1, 8000}}};
  auto feeder = InputFeeder::bind(*set, wave, own_names(wave), Preset{}, "audio.onnx");
  ASSERT_TRUE(feeder.ok()) << feeder.error().message;
  auto feed = feeder->feed(set->decode(0).value(), "tone.wav");
  ASSERT_TRUE(feed.ok()) << feed.error().message;
  EXPECT_EQ((*feed)[0].shape, (std::vector<int64_t>{1, 8000}));
  std::vector<InputSlot> longer{{"wave", DType::kFloat32, {1, 16000}}};
  auto too_short = InputFeeder::bind(*set, longer, own_names(longer), Preset{}, "audio.onnx")->feed(
      set->decode(0).value(), "tone.wav");
  ASSERT_FALSE(too_short.ok());
  EXPECT_NE(too_short.error().message.find("tone.wav: 8000 samples at 8000 Hz; input 'wave' of audio.onnx takes [1,16000]"),
            std::string::npos)
      << too_short.error().message;
  std::vector<InputSlot> image{{"image", DType::kFloat32, {1, 3, 8, 8}}};
  EXPECT_NE(message(InputFeeder::bind(*set, image, own_names(image), Preset{}, "cnn.onnx")).find(".wav samples feed"),
            std::string::npos);
}

TEST(Audio, RefusesStereoAndNonWav) {
  const fs::path dir = ::fetafix::testing::temp_dir("audio_bad");
  { std::ofstream(dir / "noise.wav") << "RIFF....not really"; }
  auto bad = decode_wav(dir / "noise.wav");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("noise.wav"), std::string::npos);
  SF_INFO info{};
  info.samplerate = 8000;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open((dir / "stereo.wav").c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr);
  const std::vector<float> frames(200, 0.25f);
  sf_writef_float(f, frames.data(), 100);
  sf_close(f);
  auto stereo = decode_wav(dir / "stereo.wav");
  ASSERT_FALSE(stereo.ok());
  EXPECT_NE(stereo.error().message.find("stereo.wav: 2 channels; audio samples must be mono"), std::string::npos)
      << stereo.error().message;
}

}  // namespace fetafix::data
