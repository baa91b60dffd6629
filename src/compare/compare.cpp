#include "compare/compare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_pipeline.h>

#include "common/limits.h"
#include "runtime/session.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

struct BoundSide {
  std::unique_ptr<runtime::Session> session;
  data::Preset preset;
  std::vector<int64_t> image_shape;  // per-image input shape (no batch dim)
  size_t image_bytes = 0;
  int64_t classes = 0;
};

Result<BoundSide> bind_side(const ModelSide& side, const CompareOptions& options) {
  runtime::SessionOptions so;
  so.threads = options.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(*side.model, so, side.label));
  const auto& inputs = session->inputs();
  if (inputs.size() != 1)
    return make_error("{}: the model has {} inputs; fetafix feeds a single image input", side.label, inputs.size());
  if (session->outputs().empty()) return make_error("{}: the model has no outputs", side.label);
  const auto& in = inputs[0];
  auto bound = data::bind_preset_to_input(side.preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return Error{fmt::format("{}: {}", side.label, bound.error().message), bound.error().exit_code};
  BoundSide b;
  b.preset = std::move(bound).value();
  b.session = std::move(session);
  const bool nchw = b.preset.layout == data::Layout::kNCHW;
  b.image_shape = nchw ? std::vector<int64_t>{3, b.preset.height, b.preset.width}
                       : std::vector<int64_t>{b.preset.height, b.preset.width, 3};
  b.image_bytes = static_cast<size_t>(shape_numel(b.image_shape)) * dtype_size(b.preset.dtype);
  // What infer() allocates per call: the batch (or the model's fixed batch) of preprocessed images.
  const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(options.batch_size, b.session->fixed_batch()));
  if (static_cast<long double>(b.image_bytes) * batch > resource_limits().max_tensor_bytes)
    return make_error("{}: a batch of {} images of shape {} is {}, over the tensor limit of {} (--max-tensor-bytes or {})",
                      side.label, batch, shape_to_string(b.image_shape),
                      bytes_text(static_cast<uint64_t>(static_cast<long double>(b.image_bytes) * batch)),
                      bytes_text(resource_limits().max_tensor_bytes), kMaxTensorBytesEnv);
  return b;
}

// One batch travelling through the pipeline.
struct Batch {
  size_t first = 0, count = 0;          // dataset indices [first, first + count)
  std::vector<size_t> decoded;          // dataset indices that made it into the tensors
  std::vector<std::string> errors;      // per dataset index in the batch; empty = ok
  std::vector<std::byte> source_input, target_input;  // target_input empty when shared
};

bool same_preprocessing(const data::Preset& a, const data::Preset& b) {
  auto ja = a.to_json(), jb = b.to_json();
  ja.erase("name");
  jb.erase("name");
  return ja == jb;
}

// Runs one side on n preprocessed images and returns [n, classes] scores as floats.
Result<std::vector<float>> infer(const BoundSide& side, const std::string& label, const std::byte* images, size_t n,
                                 int64_t& classes) {
  const int64_t fixed = side.session->fixed_batch();
  size_t padded = n;
  if (fixed > 1 && n % static_cast<size_t>(fixed)) padded = (n / fixed + 1) * fixed;  // pad with the last image
  std::vector<int64_t> shape{static_cast<int64_t>(padded)};
  shape.insert(shape.end(), side.image_shape.begin(), side.image_shape.end());
  Tensor input(side.preset.dtype, shape);
  std::memcpy(input.bytes.data(), images, n * side.image_bytes);
  for (size_t i = n; i < padded; ++i)
    std::memcpy(input.bytes.data() + i * side.image_bytes, images + (n - 1) * side.image_bytes, side.image_bytes);
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, side.session->run({input}));
  const Tensor& out = outputs.at(0);
  if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(padded))
    return make_error("{}: output '{}' has shape {}, expected a batch of {} first", label,
                      side.session->outputs()[0].name, shape_to_string(out.shape), padded);
  const int64_t per_image = out.numel() / static_cast<int64_t>(padded);
  if (per_image < 2)
    return make_error("{}: output '{}' has shape {}: one value per image is not a classifier's scores", label,
                      side.session->outputs()[0].name, shape_to_string(out.shape));
  classes = per_image;
  std::vector<float> all = out.to_float();
  all.resize(n * static_cast<size_t>(per_image));
  return all;
}

// Scores that are NaN or infinite: the model computed garbage for this image.
bool has_non_finite(std::span<const float> scores) {
  return std::any_of(scores.begin(), scores.end(), [](float v) { return !std::isfinite(v); });
}

struct NonFinite {
  size_t images = 0;
  std::string first;
};

void warn_non_finite(const NonFinite& n, const std::string& side, std::vector<std::string>& warnings) {
  if (n.images)
    warnings.push_back(fmt::format("{} output holds NaN or infinite scores for {} image(s) (first: {}); NaN scores rank "
                                   "last, ties by class id",
                                   side, n.images, n.first));
}

}  // namespace

int64_t declared_classes(const onnx::ModelProto& model) {
  if (model.graph().output_size() == 0) return 0;
  const auto& type = model.graph().output(0).type();
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return 0;
  const auto& dims = type.tensor_type().shape().dim();
  if (dims.size() < 2) return 0;
  int64_t classes = 1;
  for (int i = 1; i < dims.size(); ++i) {
    if (!dims[i].has_dim_value() || dims[i].dim_value() <= 0 || dims[i].dim_value() > (int64_t{1} << 31)) return 0;
    classes *= dims[i].dim_value();
    if (classes > (int64_t{1} << 31)) return 0;
  }
  return classes;
}

Status check_label_options(const CompareOptions& o, int64_t source_classes, int64_t target_classes) {
  if (source_classes <= 0 || target_classes <= 0) return {};
  const int64_t fewest = std::min(source_classes, target_classes);
  if (o.top_k_given && o.top_k > fewest)
    return make_error("--top-k {}: the models have only {} classes (Source {}, Target {})", o.top_k, fewest,
                      source_classes, target_classes);
  if (o.label_offset) {
    const int64_t diff = target_classes - source_classes;
    const int64_t lo = std::min<int64_t>(0, diff), hi = std::max<int64_t>(0, diff);
    if (*o.label_offset < lo || *o.label_offset > hi)
      return make_error("--label-offset {}: Target has {} classes and Source {}, so Target label - offset = Source "
                        "label only holds for an offset {}",
                        *o.label_offset, target_classes, source_classes,
                        lo == hi ? fmt::format("of {}", lo) : fmt::format("from {} to {}", lo, hi));
  }
  return {};
}

Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target, const fs::path& image_dir,
                                     const CompareOptions& options) {
  if (options.top_k < 1) return make_error("--top-k must be at least 1 (got {})", options.top_k);
  if (options.batch_size < 1) return make_error("--batch-size must be at least 1 (got {})", options.batch_size);
  FETAFIX_ASSIGN_OR_RETURN(auto files, data::list_images(image_dir));
  FETAFIX_ASSIGN_OR_RETURN(BoundSide src, bind_side(source, options));
  FETAFIX_ASSIGN_OR_RETURN(BoundSide tgt, bind_side(target, options));
  const bool shared_input = same_preprocessing(src.preset, tgt.preset);

  CompareResult result;
  result.image_dir = image_dir;
  result.source_label = source.label;
  result.target_label = target.label;
  result.source_preset = src.preset;
  result.target_preset = tgt.preset;
  result.records.resize(files.size());
  for (size_t i = 0; i < files.size(); ++i)
    result.records[i].file = files[i].lexically_relative(image_dir).generic_string();  // no symlink resolving: a loop would throw

  const size_t batch_size = static_cast<size_t>(options.batch_size);
  const size_t n_batches = (files.size() + batch_size - 1) / batch_size;
  Progress progress("compare", files.size(), options.progress);
  const auto t0 = std::chrono::steady_clock::now();
  size_t next_batch = 0;
  std::optional<Error> failure;  // set by the serial stages only
  int64_t src_classes = 0, tgt_classes = 0;
  int k = options.top_k;  // lowered to the class count once it is known
  bool labels_checked = false;
  NonFinite src_non_finite, tgt_non_finite;
  const int64_t offset = options.label_offset.value_or(0);

  // Enough batches in flight to keep the decoders ahead of inference, few enough to
  // bound memory (each token holds batch_size preprocessed images per side).
  const size_t tokens = 4;
  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, std::shared_ptr<Batch>>(
          tbb::filter_mode::serial_in_order,
          [&](tbb::flow_control& fc) -> std::shared_ptr<Batch> {
            if (next_batch >= n_batches || failure) {
              fc.stop();
              return nullptr;
            }
            auto b = std::make_shared<Batch>();
            b->first = next_batch++ * batch_size;
            b->count = std::min(batch_size, files.size() - b->first);
            return b;
          }) &
          tbb::make_filter<std::shared_ptr<Batch>, std::shared_ptr<Batch>>(
              tbb::filter_mode::parallel,
              [&](std::shared_ptr<Batch> b) {
                b->errors.resize(b->count);
                b->source_input.resize(b->count * src.image_bytes);
                if (!shared_input) b->target_input.resize(b->count * tgt.image_bytes);
                for (size_t j = 0; j < b->count; ++j) {
                  auto image = data::decode_image(files[b->first + j]);
                  if (!image.ok()) {
                    b->errors[j] = image.error().message;
                    continue;
                  }
                  const size_t slot = b->decoded.size();
                  data::preprocess_into(*image, src.preset, b->source_input.data() + slot * src.image_bytes);
                  if (!shared_input)
                    data::preprocess_into(*image, tgt.preset, b->target_input.data() + slot * tgt.image_bytes);
                  b->decoded.push_back(b->first + j);
                }
                return b;
              }) &
          tbb::make_filter<std::shared_ptr<Batch>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Batch> b) {
                if (!b || failure) return;
                for (size_t j = 0; j < b->count; ++j) {
                  if (b->errors[j].empty()) continue;
                  result.records[b->first + j].error = b->errors[j];
                  if (options.strict) failure = Error{b->errors[j], kExitBadInput};
                }
                const size_t n = b->decoded.size();
                if (n > 0 && !failure) {
                  auto s = infer(src, source.label, b->source_input.data(), n, src_classes);
                  auto t = s.ok() ? infer(tgt, target.label, shared_input ? b->source_input.data() : b->target_input.data(),
                                          n, tgt_classes)
                                  : Result<std::vector<float>>(s.error());
                  if (!s.ok() || !t.ok()) {
                    Error e = !s.ok() ? s.error() : t.error();
                    failure = Error{e.message, kExitBadInput};
                    return;
                  }
                  if (!labels_checked) {
                    labels_checked = true;
                    if (auto st = check_label_options(options, src_classes, tgt_classes); !st.ok()) {
                      failure = st.error();
                      return;
                    }
                    k = static_cast<int>(std::min<int64_t>({k, src_classes, tgt_classes}));
                  }
                  for (size_t j = 0; j < n; ++j) {
                    ImageRecord& r = result.records[b->decoded[j]];
                    const std::span<const float> s_row(s->data() + j * src_classes, static_cast<size_t>(src_classes));
                    const std::span<const float> t_row(t->data() + j * tgt_classes, static_cast<size_t>(tgt_classes));
                    for (auto [row, tally] : {std::pair{s_row, &src_non_finite}, std::pair{t_row, &tgt_non_finite}})
                      if (has_non_finite(row) && tally->images++ == 0) tally->first = r.file;
                    r.source = top_k(s_row, k);
                    r.target = top_k(t_row, k);
                    for (int64_t id : r.target.ids) r.target_in_source.push_back(to_source_label(id, offset, src_classes));
                    r.agree = !r.source.ids.empty() && !r.target_in_source.empty() && r.source.ids[0] == r.target_in_source[0];
                    r.top_k_overlap = top_k_overlap(r.source.ids, r.target_in_source, k);
                  }
                }
                progress.advance(b->count);
              }));
  progress.finish();
  if (failure) return *failure;

  Summary& s = result.summary;
  s.images_found = files.size();
  s.top_k = k;
  s.label_offset = offset;
  s.source_classes = src_classes;
  s.target_classes = tgt_classes;
  double overlap_sum = 0;
  size_t top1_in_k = 0;
  for (const auto& r : result.records) {
    if (!r.error.empty()) { ++s.images_skipped; continue; }
    ++s.images_compared;
    if (!r.agree) ++s.disagreeing;
    overlap_sum += r.top_k_overlap;
    if (!r.source.ids.empty() &&
        std::find(r.target_in_source.begin(), r.target_in_source.end(), r.source.ids[0]) != r.target_in_source.end())
      ++top1_in_k;
  }
  if (s.images_compared == 0)
    return make_error("{}: none of the {} images could be decoded (first: {}: {})", image_dir.string(), files.size(),
                      result.records[0].file, result.records[0].error);
  s.discrepancy = static_cast<double>(s.disagreeing) / s.images_compared;
  s.top_k_agreement = overlap_sum / s.images_compared;
  s.source_top1_in_target_top_k = static_cast<double>(top1_in_k) / s.images_compared;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.images_per_second = s.seconds > 0 ? files.size() / s.seconds : 0;
  if (src_classes != tgt_classes && !options.label_offset)
    result.warnings.push_back(fmt::format(
        "Source has {} classes and Target {}: if one counts a background class, pass --label-offset "
        "(Target label - offset = Source label; 1 for a 1001-class Target)",
        src_classes, tgt_classes));
  warn_non_finite(src_non_finite, "Source", result.warnings);
  warn_non_finite(tgt_non_finite, "Target", result.warnings);
  if (s.images_skipped)
    result.warnings.push_back(fmt::format("{} image(s) could not be decoded and were skipped", s.images_skipped));
  return result;
}

nlohmann::json to_json(const CompareResult& r) {
  using nlohmann::json;
  auto topk_json = [](const TopK& t) {
    json a = json::array();
    for (size_t i = 0; i < t.ids.size(); ++i) a.push_back({{"label", t.ids[i]}, {"score", t.scores[i]}});
    return a;
  };
  json images = json::array();
  for (const auto& rec : r.records) {
    json j{{"file", rec.file}};
    if (!rec.error.empty()) {
      j["status"] = "skipped";
      j["error"] = rec.error;
    } else {
      j["status"] = rec.agree ? "agree" : "disagree";
      j["source_top_k"] = topk_json(rec.source);
      j["target_top_k"] = topk_json(rec.target);
      j["target_labels_in_source_numbering"] = rec.target_in_source;
      j["top_k_overlap"] = rec.top_k_overlap;
    }
    images.push_back(std::move(j));
  }
  const Summary& s = r.summary;
  return json{
      {"schema", "fetafix.compare/1"},
      {"source", {{"model", r.source_label}, {"preprocess", r.source_preset.to_json()}, {"classes", s.source_classes}}},
      {"target", {{"model", r.target_label}, {"preprocess", r.target_preset.to_json()}, {"classes", s.target_classes}}},
      {"images_dir", r.image_dir.string()},
      {"summary",
       {{"images_found", s.images_found},
        {"images_compared", s.images_compared},
        {"images_skipped", s.images_skipped},
        {"disagreeing", s.disagreeing},
        {"label_discrepancy", s.discrepancy},
        {"top_k", s.top_k},
        {"top_k_agreement", s.top_k_agreement},
        {"source_top1_in_target_top_k", s.source_top1_in_target_top_k},
        {"label_offset", s.label_offset},
        {"seconds", s.seconds},
        {"images_per_second", s.images_per_second}}},
      {"warnings", r.warnings},
      {"images", std::move(images)},
  };
}

std::string format_report(const CompareResult& r, size_t max_listed) {
  const Summary& s = r.summary;
  std::string out;
  out += fmt::format("Source: {}  (preprocess {})\n", r.source_label, r.source_preset.name);
  out += fmt::format("Target: {}  (preprocess {})\n", r.target_label, r.target_preset.name);
  out += fmt::format("Images: {} compared", s.images_compared);
  if (s.images_skipped) out += fmt::format(", {} skipped", s.images_skipped);
  out += fmt::format(" ({:.1f} img/s)\n", s.images_per_second);
  out += fmt::format("Label discrepancy (top-1 differs): {:.2f}%  ({} of {})\n", 100 * s.discrepancy, s.disagreeing,
                     s.images_compared);
  out += fmt::format("Top-{} agreement: {:.2f}%   Source top-1 within Target top-{}: {:.2f}%\n", s.top_k,
                     100 * s.top_k_agreement, s.top_k, 100 * s.source_top1_in_target_top_k);
  if (s.disagreeing) {
    out += "Disagreeing images (Source top-1 -> Target top-1):\n";
    size_t listed = 0;
    for (const auto& rec : r.records) {
      if (!rec.error.empty() || rec.agree) continue;
      if (listed++ == max_listed) {
        out += fmt::format("  ... and {} more (see --json)\n", s.disagreeing - max_listed);
        break;
      }
      out += fmt::format("  {}  {} ({:.3f}) -> {} ({:.3f})\n", rec.file, rec.source.ids[0], rec.source.scores[0],
                         rec.target.ids[0], rec.target.scores[0]);
    }
  }
  for (const auto& rec : r.records)
    if (!rec.error.empty()) out += fmt::format("skipped: {}\n", rec.error);
  return out;
}

}  // namespace fetafix::compare
