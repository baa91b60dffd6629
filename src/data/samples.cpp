#include "data/samples.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "data/folder.h"

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

std::optional<SampleKind> kind_of(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") return SampleKind::kImage;
  if (ext == ".npz") return SampleKind::kNpz;
  if (ext == ".npy") return SampleKind::kNpy;
  if (ext == ".wav") return SampleKind::kWav;
  return std::nullopt;
}

std::string shape_with(const std::vector<int64_t>& shape) { return declared_shape(shape); }

// Does `shape` fit the declared one? Dynamic dims take any size.
bool fits(const std::vector<int64_t>& shape, const std::vector<int64_t>& declared) {
  if (shape.size() != declared.size()) return false;
  for (size_t d = 0; d < shape.size(); ++d)
    if (declared[d] >= 0 && shape[d] != declared[d]) return false;
  return true;
}

const NamedArray* find_array(const std::vector<NamedArray>& arrays, const std::vector<std::string>& names) {
  for (const auto& n : names)
    for (const auto& a : arrays)
      if (a.name == n) return &a;
  return nullptr;
}

}  // namespace

bool is_sample_file_name(const fs::path& path) { return kind_of(path).has_value(); }

std::string_view sample_kind_name(SampleKind kind) {
  switch (kind) {
    case SampleKind::kImage: return "image";
    case SampleKind::kNpz: return "npz";
    case SampleKind::kNpy: return "npy";
    case SampleKind::kWav: return "wav";
  }
  return "?";
}

std::string declared_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t d = 0; d < shape.size(); ++d) {
    if (d) s += ',';
    s += shape[d] >= 0 ? std::to_string(shape[d]) : std::string(d == 0 ? "N" : "?");
  }
  return s + "]";
}

Result<std::vector<SampleFile>> list_samples(const fs::path& dir, bool images_only) {
  std::vector<SampleFile> files;
  if (images_only) {  // the image folder's own listing and messages
    FETAFIX_ASSIGN_OR_RETURN(auto paths, list_images(dir));
    for (auto& p : paths) files.push_back({p, p.lexically_relative(dir).generic_string(), SampleKind::kImage});
    return files;
  }
  FETAFIX_ASSIGN_OR_RETURN(auto found,
                           list_folder(dir, "sample folder", [](const fs::path& p) { return kind_of(p).has_value(); }));
  for (auto& f : found) {
    const SampleKind kind = *kind_of(f.path);
    files.push_back({std::move(f.path), std::move(f.name), kind});
  }
  if (files.empty())
    return make_error("sample folder '{}' holds no sample (.jpg, .jpeg, .png, .npz, .npy or .wav)", dir.string());
  return files;
}

Result<SampleSet> SampleSet::open(const fs::path& dir, const SampleOptions& options) {
  SampleSet set;
  set.dir_ = dir;
  set.options_ = options;
  if (options.sample_rate < 0) return make_error("--sample-rate must be positive (got {})", options.sample_rate);
  FETAFIX_ASSIGN_OR_RETURN(set.files_, list_samples(dir, options.images_only));
  for (const auto& [name, path] : options.constants) {
    auto value = read_npy(path, options.limits);
    if (!value.ok()) return make_error("--input {}: {}", name, value.error().message);
    FETAFIX_TRY_STATUS(set.add_constant(name, std::move(value).value()));
  }
  return set;
}

Result<SampleSet> SampleSet::hold(std::vector<HeldSample> samples, const SampleOptions& options) {
  if (samples.empty()) return make_error("no sample given");
  SampleSet set;
  set.options_ = options;
  set.options_.constants.clear();
  set.options_.images_only = false;
  auto held = std::make_shared<std::vector<DecodedSample>>();
  held->reserve(samples.size());
  for (auto& s : samples) {
    const bool one_unnamed = s.arrays.size() == 1 && s.arrays[0].name.empty();
    if (s.arrays.empty()) return make_error("{}: no array", s.name);
    for (const auto& a : s.arrays)
      if (!one_unnamed && a.name.empty())
        return make_error("{}: an unnamed array among several; name every array after the input it feeds", s.name);
    DecodedSample d;
    d.kind = one_unnamed ? SampleKind::kNpy : SampleKind::kNpz;
    d.arrays = std::move(s.arrays);
    set.files_.push_back({{}, std::move(s.name), d.kind});
    held->push_back(std::move(d));
  }
  set.held_ = std::move(held);
  return set;
}

Status SampleSet::add_constant(const std::string& name, Tensor value) {
  for (const auto& c : constants_)
    if (c.name == name) return make_error("--input {}: given twice", name);
  constants_.push_back({name, std::move(value)});
  return {};
}

SampleSet SampleSet::subset(const std::vector<size_t>& indices) const {
  SampleSet set;
  set.dir_ = dir_;
  set.options_ = options_;
  set.constants_ = constants_;
  std::shared_ptr<std::vector<DecodedSample>> held;
  if (held_) held = std::make_shared<std::vector<DecodedSample>>();
  for (size_t i : indices) {
    set.files_.push_back(files_.at(i));
    if (held) held->push_back(held_->at(i));
  }
  set.held_ = std::move(held);
  return set;
}

bool SampleSet::has(SampleKind kind) const {
  return std::any_of(files_.begin(), files_.end(), [&](const SampleFile& f) { return f.kind == kind; });
}

bool SampleSet::images_only() const {
  return std::all_of(files_.begin(), files_.end(), [](const SampleFile& f) { return f.kind == SampleKind::kImage; });
}

Result<DecodedSample> SampleSet::decode(size_t index) const {
  if (held_) return held_->at(index);
  const SampleFile& f = files_.at(index);
  DecodedSample s;
  s.kind = f.kind;
  switch (f.kind) {
    case SampleKind::kImage: {
      FETAFIX_ASSIGN_OR_RETURN(s.image, decode_image(f.path));
      break;
    }
    case SampleKind::kNpz: {
      FETAFIX_ASSIGN_OR_RETURN(s.arrays, read_npz(f.path, options_.limits));
      break;
    }
    case SampleKind::kNpy: {
      FETAFIX_ASSIGN_OR_RETURN(Tensor t, read_npy(f.path, options_.limits));
      s.arrays.push_back({"", std::move(t)});
      break;
    }
    case SampleKind::kWav: {
      FETAFIX_ASSIGN_OR_RETURN(Audio a, decode_wav(f.path, options_.limits));
      s.sample_rate = options_.sample_rate > 0 ? options_.sample_rate : a.sample_rate;
      auto resampled = resample_audio(a.samples, a.sample_rate, s.sample_rate, options_.limits);
      if (!resampled.ok()) return make_error("{}: {}", f.path.string(), resampled.error().message);
      s.audio = std::move(resampled).value();
      break;
    }
  }
  return s;
}

// ---- InputFeeder ------------------------------------------------------------------------------

Result<InputFeeder> InputFeeder::bind(const SampleSet& set, const std::vector<InputSlot>& inputs,
                                      const std::vector<std::vector<std::string>>& names, const Preset& preset,
                                      const std::string& model_label) {
  InputFeeder f;
  f.inputs_ = inputs;
  f.names_ = names;
  f.label_ = model_label;
  f.preset_ = preset;
  f.constants_.resize(inputs.size());
  for (const auto& c : set.constants()) {
    size_t i = 0;
    while (i < inputs.size() && std::find(names[i].begin(), names[i].end(), c.name) == names[i].end()) ++i;
    if (i == inputs.size()) {
      std::vector<std::string> known;
      for (const auto& n : names) known.push_back(n.front());
      return make_error("--input {}: {} has no input of that name (inputs: {})", c.name, model_label,
                        quoted_names(known));
    }
    FETAFIX_ASSIGN_OR_RETURN(f.constants_[i], f.fit(c.value, i, fmt::format("--input {}", c.name)));
  }
  std::vector<size_t> open;  // inputs the samples must feed
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!f.constants_[i]) open.push_back(i);
  const bool single_value = set.has(SampleKind::kImage) || set.has(SampleKind::kNpy) || set.has(SampleKind::kWav);
  if (single_value && open.size() != 1) {
    std::vector<std::string> open_names;
    for (size_t i : open) open_names.push_back(inputs[i].name);
    if (open.empty()) return make_error("{}: every input is given by --input; the samples would feed nothing", model_label);
    return make_error("{}: image, .npy and .wav samples feed one input, but {} inputs have no value ({}); give the "
                      "others with --input NAME=FILE.npy, or use .npz samples with one array per input",
                      model_label, open.size(), quoted_names(open_names));
  }
  if (single_value) f.image_input_ = open.front();
  if (set.has(SampleKind::kImage)) {
    FETAFIX_ASSIGN_OR_RETURN(f.preset_, f.bind_preset(preset));
  }
  if (set.has(SampleKind::kWav)) {
    const InputSlot& in = inputs[open.front()];
    if (in.dtype != DType::kFloat32 || in.shape.empty() || in.shape.size() > 2 ||
        (in.shape.size() == 2 && in.shape[0] > 1))
      return make_error("{}: .wav samples feed a float32 input of shape [batch, samples] or [samples]; input '{}' "
                        "is {} {}", model_label, in.name, dtype_name(in.dtype), shape_with(in.shape));
  }
  return f;
}

Result<Preset> InputFeeder::bind_preset(const Preset& preset) const {
  if (!image_input_) return make_error("{}: no input takes images", label_);
  const InputSlot& in = inputs_[*image_input_];
  auto bound = bind_preset_to_input(preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return make_error("{}: {}", label_, bound.error().message);
  return bound;
}

// `array` as input `input`'s value: the dtype must be the input's; the shape must fit the
// declared one, or fit it once a leading batch dim of 1 is added.
Result<Tensor> InputFeeder::fit(const Tensor& array, size_t input, const std::string& what) const {
  const InputSlot& in = inputs_[input];
  auto expected = [&] {
    return fmt::format("input '{}' of {} takes {} {}", in.name, label_, dtype_name(in.dtype), shape_with(in.shape));
  };
  if (array.dtype != in.dtype)
    return make_error("{} is {} {}; {} (convert it, e.g. arr.astype(np.{}))", what, dtype_name(array.dtype),
                      shape_to_string(array.shape), expected(), dtype_name(in.dtype));
  if (fits(array.shape, in.shape)) return array;
  if (array.shape.size() + 1 == in.shape.size() && in.shape[0] <= 1) {
    std::vector<int64_t> batched{1};
    batched.insert(batched.end(), array.shape.begin(), array.shape.end());
    if (fits(batched, in.shape)) {
      Tensor t = array;
      t.shape = std::move(batched);
      return t;
    }
  }
  return make_error("{} has shape {}; {}", what, shape_to_string(array.shape), expected());
}

Result<std::vector<Tensor>> InputFeeder::feed(const DecodedSample& sample, const std::string& sample_name) const {
  return feed(sample, sample_name, preset_);
}

Result<std::vector<Tensor>> InputFeeder::feed(const DecodedSample& sample, const std::string& sample_name,
                                              const Preset& preset) const {
  std::vector<Tensor> out(inputs_.size());
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (constants_[i]) out[i] = *constants_[i];
  switch (sample.kind) {
    case SampleKind::kImage: {
      const size_t i = *image_input_;
      out[i] = preprocess(sample.image, preset);
      break;
    }
    case SampleKind::kNpy: {
      FETAFIX_ASSIGN_OR_RETURN(out[*image_input_], fit(sample.arrays.at(0).value, *image_input_, sample_name));
      break;
    }
    case SampleKind::kWav: {
      const size_t i = *image_input_;
      const int64_t n = static_cast<int64_t>(sample.audio.size());
      Tensor t(DType::kFloat32, inputs_[i].shape.size() == 2 ? std::vector<int64_t>{1, n} : std::vector<int64_t>{n});
      std::memcpy(t.bytes.data(), sample.audio.data(), sample.audio.size() * sizeof(float));
      if (!fits(t.shape, inputs_[i].shape))
        return make_error("{}: {} samples at {} Hz; input '{}' of {} takes {} (trim or pad the audio, or pick another "
                          "--sample-rate)", sample_name, n, sample.sample_rate, inputs_[i].name, label_,
                          shape_with(inputs_[i].shape));
      out[i] = std::move(t);
      break;
    }
    case SampleKind::kNpz: {
      for (const auto& a : sample.arrays) {
        size_t i = 0;
        while (i < inputs_.size() && std::find(names_[i].begin(), names_[i].end(), a.name) == names_[i].end()) ++i;
        if (i == inputs_.size())
          return make_error("{}: array '{}' names no input of {} (inputs: {})", sample_name, a.name, label_,
                            quoted_names([&] {
                              std::vector<std::string> n;
                              for (const auto& in : inputs_) n.push_back(in.name);
                              return n;
                            }()));
        if (constants_[i])
          return make_error("{}: array '{}' is also given by --input; give it one way", sample_name, a.name);
      }
      for (size_t i = 0; i < inputs_.size(); ++i) {
        if (constants_[i]) continue;
        const NamedArray* a = find_array(sample.arrays, names_[i]);
        if (!a)
          return make_error("{}: no array '{}'; {} {} expected", sample_name, names_[i].front(),
                            dtype_name(inputs_[i].dtype), shape_with(inputs_[i].shape));
        FETAFIX_ASSIGN_OR_RETURN(out[i], fit(a->value, i, fmt::format("{}: array '{}'", sample_name, a->name)));
      }
      break;
    }
  }
  return out;
}

Result<FeedPlan> plan_feeds(const SampleSet& set, const std::vector<InputSlot>& source_inputs,
                            const std::vector<InputSlot>& target_inputs, const Preset& source_preset,
                            const Preset& target_preset, const std::string& source_label,
                            const std::string& target_label) {
  std::vector<std::string> sn, tn;
  for (const auto& in : source_inputs) sn.push_back(in.name);
  for (const auto& in : target_inputs) tn.push_back(in.name);
  FETAFIX_ASSIGN_OR_RETURN(NamePairing pairing, pair_by_name_or_order(sn, tn, "inputs", source_label, target_label));
  // Each input answers to its own name first, then to its partner's.
  std::vector<std::vector<std::string>> source_names(sn.size()), target_names(tn.size());
  for (size_t i = 0; i < sn.size(); ++i) {
    const size_t t = pairing.target_of_source[i];
    source_names[i] = {sn[i], tn[t]};
    target_names[t] = {sn[i], tn[t]};  // the Source's name first: arrays are named after the Source
  }
  FETAFIX_ASSIGN_OR_RETURN(InputFeeder s, InputFeeder::bind(set, source_inputs, source_names, source_preset, source_label));
  FETAFIX_ASSIGN_OR_RETURN(InputFeeder t, InputFeeder::bind(set, target_inputs, target_names, target_preset, target_label));
  std::string mapping = pairing.describe(sn, tn);
  return FeedPlan{std::move(s), std::move(t), std::move(pairing), std::move(mapping)};
}

}  // namespace fetafix::data
