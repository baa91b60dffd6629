// Sample data of any kind: a folder whose files are the samples, in sorted order, each fed to
// a model's inputs. One file per sample:
//   - an image (.jpg/.jpeg/.png): the preset (data/preprocess.h) turns it into the model's one
//     image input;
//   - an .npz: one array per model input, named after the input (a leading batch dim of 1 may
//     be left out);
//   - an .npy: the array for a model with one input;
//   - a .wav: mono audio for a float input of shape [batch, samples] (or [samples]), resampled
//     to SampleOptions::sample_rate when one is given.
// Inputs that stay the same for every sample (an RNN's initial state, a sample rate) are given
// once as constants (`--input NAME=FILE.npy`). Arrays must have the input's dtype exactly and a
// shape that fits its declared one; a mismatch is a bad-input error naming the file, the array
// and the expected shape. The Source and the Target are fed from the same decoded sample; their
// inputs are paired by name, else by order (common/pairing.h), and an array or constant may use
// either side's name for a pair.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/pairing.h"
#include "common/result.h"
#include "common/tensor.h"
#include "data/audio.h"
#include "data/image.h"
#include "data/npz.h"
#include "data/preprocess.h"

namespace fetafix::data {

enum class SampleKind { kImage, kNpz, kNpy, kWav };
std::string_view sample_kind_name(SampleKind kind);  // "image", "npz", "npy", "wav"

struct SampleFile {
  std::filesystem::path path;
  std::string name;  // relative to the folder, '/'-separated: how records and errors name it
  SampleKind kind = SampleKind::kImage;
};

struct SampleOptions {
  // --input NAME=FILE.npy: the same value for input NAME on every sample.
  std::vector<std::pair<std::string, std::filesystem::path>> constants;
  int sample_rate = 0;        // Hz .wav samples are resampled to; 0 = each file's own rate
  bool images_only = false;   // only image files are samples (--images)
  ArrayLimits limits;
};

// Every file of a kind fetafix reads (images only when images_only) under `dir`, recursively,
// sorted by relative path (byte order), listed as data/folder.h says (symlinked folders not
// followed; a dangling symlink or FIFO with a sample name is listed, and fails when read). Other
// files are ignored. Errors: no such folder; a subfolder that cannot be listed; no sample.
Result<std::vector<SampleFile>> list_samples(const std::filesystem::path& dir, bool images_only = false);

// Does the name say it is a sample (.jpg/.jpeg/.png, .npz, .npy, .wav; any case)?
bool is_sample_file_name(const std::filesystem::path& path);

// One sample, decoded once and fed to both models.
struct DecodedSample {
  SampleKind kind = SampleKind::kImage;
  Image image;                     // kImage
  std::vector<NamedArray> arrays;  // kNpz: by name; kNpy: one array, unnamed
  std::vector<float> audio;        // kWav: resampled
  int sample_rate = 0;             // kWav: the rate of `audio`
};

// A sample a caller already made (its own preprocessing), held in memory: one unnamed array
// (fed like an .npy) or one array per input, named after it (like an .npz).
struct HeldSample {
  std::string name;  // how records and errors name it, e.g. "data[3]"
  std::vector<NamedArray> arrays;
};

// The samples and the constants. Two sources: a folder, whose files are listed once and decoded
// on demand; or samples held in memory (the Python module's numpy arrays). Everything after
// (feeding, batching, comparing, sharding over ranks) sees only names, kinds and decode().
class SampleSet {
 public:
  static Result<SampleSet> open(const std::filesystem::path& dir, const SampleOptions& options);
  // Samples in memory; options.constants (paths) and images_only do not apply (add_constant).
  static Result<SampleSet> hold(std::vector<HeldSample> samples, const SampleOptions& options = {});

  // The same value for input `name` on every sample (--input NAME=FILE.npy, or an array).
  Status add_constant(const std::string& name, Tensor value);

  const std::filesystem::path& dir() const { return dir_; }  // empty for held samples
  const std::vector<SampleFile>& files() const { return files_; }  // held samples: no path
  size_t size() const { return files_.size(); }
  const SampleOptions& options() const { return options_; }
  const std::vector<NamedArray>& constants() const { return constants_; }
  bool has(SampleKind kind) const;
  bool images_only() const;  // every sample is an image

  Result<DecodedSample> decode(size_t index) const;

  // The samples at `indices` (ascending, each < size()), with the same constants and options:
  // what a check runs on a seeded sample of the set.
  SampleSet subset(const std::vector<size_t>& indices) const;

 private:
  std::filesystem::path dir_;
  std::vector<SampleFile> files_;
  SampleOptions options_;
  std::vector<NamedArray> constants_;
  std::shared_ptr<const std::vector<DecodedSample>> held_;  // shared by copies of the set
};

// A model input as the feeder sees it (runtime::ValueInfo's fields; data does not see runtime).
struct InputSlot {
  std::string name;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;  // declared; -1 = dynamic
};

// How one model's inputs get their values from a sample set.
class InputFeeder {
 public:
  // names[i]: the names input i answers to in arrays and constants (its own, and its partner's
  // on the other model). `preset` is bound to the image input when the set holds images.
  static Result<InputFeeder> bind(const SampleSet& set, const std::vector<InputSlot>& inputs,
                                  const std::vector<std::vector<std::string>>& names, const Preset& preset,
                                  const std::string& model_label);

  // The model's inputs for one sample, in input order, each of the input's rank (a batch of 1).
  Result<std::vector<Tensor>> feed(const DecodedSample& sample, const std::string& sample_name) const;
  // The same, with the image input preprocessed by `preset` (bound) instead of the feeder's.
  Result<std::vector<Tensor>> feed(const DecodedSample& sample, const std::string& sample_name,
                                   const Preset& preset) const;

  const std::vector<InputSlot>& inputs() const { return inputs_; }
  const std::vector<std::vector<std::string>>& names() const { return names_; }
  std::optional<size_t> image_input() const { return image_input_; }
  const Preset& preset() const { return preset_; }  // bound when image_input() is set
  // Binds another preset to the image input (what repair's PP candidates do).
  Result<Preset> bind_preset(const Preset& preset) const;

 private:
  Result<Tensor> fit(const Tensor& array, size_t input, const std::string& what) const;

  std::vector<InputSlot> inputs_;
  std::vector<std::vector<std::string>> names_;
  std::vector<std::optional<Tensor>> constants_;  // per input, fitted
  std::optional<size_t> image_input_;             // the input image/npy/wav samples feed
  Preset preset_;
  std::string label_;
};

// Both models' feeders, with their inputs paired.
struct FeedPlan {
  InputFeeder source, target;
  NamePairing pairing;
  std::string mapping;  // "'x' -> 'input_1', 'h0' -> 'h0' (by order)"
};

Result<FeedPlan> plan_feeds(const SampleSet& set, const std::vector<InputSlot>& source_inputs,
                            const std::vector<InputSlot>& target_inputs, const Preset& source_preset,
                            const Preset& target_preset, const std::string& source_label,
                            const std::string& target_label);

// "[N,3,224,224]": a declared shape with its dynamic dims shown as N (first) or ?.
std::string declared_shape(const std::vector<int64_t>& shape);

}  // namespace fetafix::data
