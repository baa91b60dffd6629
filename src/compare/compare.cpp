#include "compare/compare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_pipeline.h>

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
  if (!bound.ok()) return Error{fmt::format("{}: {}", side.label, bound.error().message), bound.error().kind};
  BoundSide b;
  b.preset = std::move(bound).value();
  b.session = std::move(session);
  const bool nchw = b.preset.layout == data::Layout::kNCHW;
  b.image_shape = nchw ? std::vector<int64_t>{3, b.preset.height, b.preset.width}
                       : std::vector<int64_t>{b.preset.height, b.preset.width, 3};
  b.image_bytes = static_cast<size_t>(shape_numel(b.image_shape)) * dtype_size(b.preset.dtype);
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

}  // namespace

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
    result.records[i].file = fs::relative(files[i], image_dir).generic_string();

  const size_t batch_size = static_cast<size_t>(options.batch_size);
  const size_t n_batches = (files.size() + batch_size - 1) / batch_size;
  Progress progress("compare", files.size(), options.progress);
  const auto t0 = std::chrono::steady_clock::now();
  size_t next_batch = 0;
  std::optional<Error> failure;  // set by the serial stages only
  int64_t src_classes = 0, tgt_classes = 0;
  const int k = options.top_k;
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
                  if (options.strict) failure = Error{b->errors[j], ErrorKind::kBadInput};
                }
                const size_t n = b->decoded.size();
                if (n > 0 && !failure) {
                  auto s = infer(src, source.label, b->source_input.data(), n, src_classes);
                  auto t = s.ok() ? infer(tgt, target.label, shared_input ? b->source_input.data() : b->target_input.data(),
                                          n, tgt_classes)
                                  : Result<std::vector<float>>(s.error());
                  if (!s.ok() || !t.ok()) {
                    Error e = !s.ok() ? s.error() : t.error();
                    failure = Error{e.message, e.kind};
                    return;
                  }
                  for (size_t j = 0; j < n; ++j) {
                    ImageRecord& r = result.records[b->decoded[j]];
                    r.source = top_k(std::span<const float>(s->data() + j * src_classes, static_cast<size_t>(src_classes)), k);
                    r.target = top_k(std::span<const float>(t->data() + j * tgt_classes, static_cast<size_t>(tgt_classes)), k);
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
