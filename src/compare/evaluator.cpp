#include "compare/evaluator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include "runtime/session.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

Result<data::Preset> bind_to_input(const runtime::Session& session, const data::Preset& preset, const std::string& label) {
  if (session.inputs().size() != 1)
    return make_error("{}: the model has {} inputs; fetafix feeds a single image input", label, session.inputs().size());
  const auto& in = session.inputs()[0];
  auto bound = data::bind_preset_to_input(preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return make_error("{}: {}", label, bound.error().message);
  return bound;
}

std::vector<int64_t> image_shape(const data::Preset& p) {
  return p.layout == data::Layout::kNCHW ? std::vector<int64_t>{3, p.height, p.width}
                                         : std::vector<int64_t>{p.height, p.width, 3};
}

// Runs `session` over `inputs` ([n, ...]) in batches; returns [n, classes] scores.
Result<std::vector<float>> run_batches(const runtime::Session& session, const Tensor& inputs, size_t batch,
                                       const std::string& label, int64_t& classes) {
  const size_t n = static_cast<size_t>(inputs.shape[0]);
  const size_t image_bytes = n ? inputs.bytes.size() / n : 0;
  const int64_t fixed = session.fixed_batch();
  if (fixed > 1) batch = static_cast<size_t>(fixed);
  std::vector<float> all;
  for (size_t first = 0; first < n; first += batch) {
    const size_t count = std::min(batch, n - first);
    const size_t padded = fixed > 1 ? static_cast<size_t>(fixed) : count;
    std::vector<int64_t> shape = inputs.shape;
    shape[0] = static_cast<int64_t>(padded);
    Tensor chunk(inputs.dtype, shape);
    std::memcpy(chunk.bytes.data(), inputs.bytes.data() + first * image_bytes, count * image_bytes);
    for (size_t i = count; i < padded; ++i)  // pad a fixed batch with the last image
      std::memcpy(chunk.bytes.data() + i * image_bytes, inputs.bytes.data() + (first + count - 1) * image_bytes,
                  image_bytes);
    FETAFIX_ASSIGN_OR_RETURN(auto outs, session.run({chunk}));
    const Tensor& out = outs.at(0);
    if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(padded))
      return make_error("{}: output has shape {}, expected a batch of {} first", label, shape_to_string(out.shape), padded);
    const int64_t per = out.numel() / static_cast<int64_t>(padded);
    if (per < 2) return make_error("{}: output has one value per image: not a classifier's scores", label);
    if (classes && per != classes) return make_error("{}: output width changed from {} to {}", label, classes, per);
    classes = per;
    auto values = out.to_float();
    all.insert(all.end(), values.begin(), values.begin() + static_cast<std::ptrdiff_t>(count * per));
  }
  return all;
}

}  // namespace

Result<Tensor> LabelEvaluator::preprocess_all(const data::Preset& bound) const {
  std::vector<int64_t> shape{static_cast<int64_t>(files_.size())};
  auto per = image_shape(bound);
  shape.insert(shape.end(), per.begin(), per.end());
  Tensor t(bound.dtype, shape);
  const size_t image_bytes = files_.empty() ? 0 : t.bytes.size() / files_.size();
  std::vector<std::string> errors(files_.size());
  tbb::parallel_for(size_t{0}, files_.size(), [&](size_t i) {
    auto image = data::decode_image(files_[i]);
    if (!image.ok()) { errors[i] = image.error().message; return; }
    data::preprocess_into(*image, bound, t.bytes.data() + i * image_bytes);
  });
  for (const auto& e : errors)
    if (!e.empty()) return make_error("{} (repair needs every image decodable: remove it or fix it)", e);
  return t;
}

Result<std::unique_ptr<LabelEvaluator>> LabelEvaluator::create(const ModelSide& source, const ModelSide& target,
                                                               const fs::path& image_dir,
                                                               const CompareOptions& options) {
  std::unique_ptr<LabelEvaluator> e(new LabelEvaluator());
  e->options_ = options;
  e->target_label_ = target.label;
  FETAFIX_ASSIGN_OR_RETURN(e->files_, data::list_images(image_dir));
  runtime::SessionOptions so;
  so.threads = options.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto src_session, runtime::Session::create(*source.model, so, source.label));
  FETAFIX_ASSIGN_OR_RETURN(auto src_preset, bind_to_input(*src_session, source.preset, source.label));
  FETAFIX_ASSIGN_OR_RETURN(auto src_inputs, e->preprocess_all(src_preset));
  FETAFIX_ASSIGN_OR_RETURN(auto scores, run_batches(*src_session, src_inputs, static_cast<size_t>(options.batch_size),
                                                    source.label, e->source_classes_));
  const size_t n = e->files_.size(), c = static_cast<size_t>(e->source_classes_);
  e->source_probs_.resize(n * c);
  for (size_t i = 0; i < n; ++i) {
    std::span<const float> row(scores.data() + i * c, c);
    auto probs = probabilities(row);
    std::copy(probs.begin(), probs.end(), e->source_probs_.begin() + static_cast<std::ptrdiff_t>(i * c));
    e->source_top1_.push_back(top_k(row, 1).ids.at(0));
  }
  FETAFIX_TRY_STATUS(e->set_target_preset(*target.model, target.preset));
  return e;
}

Status LabelEvaluator::set_target_preset(const onnx::ModelProto& target, const data::Preset& preset) {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(target_preset_, bind_to_input(*session, preset, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(target_inputs_, preprocess_all(target_preset_));
  return {};
}

Result<CandidateScore> LabelEvaluator::score_inputs(const onnx::ModelProto& target, const Tensor& inputs) const {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  int64_t classes = 0;
  FETAFIX_ASSIGN_OR_RETURN(auto scores, run_batches(*session, inputs, static_cast<size_t>(options_.batch_size),
                                                    target_label_, classes));
  const int64_t offset = options_.label_offset.value_or(0);
  CandidateScore s;
  const size_t n = files_.size(), c = static_cast<size_t>(classes), sc = static_cast<size_t>(source_classes_);
  double distance = 0;
  for (size_t i = 0; i < n; ++i) {
    std::span<const float> row(scores.data() + i * c, c);
    const int64_t t1 = to_source_label(top_k(row, 1).ids.at(0), offset, source_classes_);
    s.top1.push_back(t1);
    s.agree.push_back(t1 == source_top1_[i]);
    if (!s.agree.back()) ++s.disagreeing;
    auto probs = probabilities(row);
    double d = 0;
    for (size_t k = 0; k < sc; ++k) {
      const int64_t tk = static_cast<int64_t>(k) + offset;  // Target index of Source class k
      const float tp = tk >= 0 && tk < classes ? probs[static_cast<size_t>(tk)] : 0.0f;
      d += std::fabs(source_probs_[i * sc + k] - tp);
    }
    distance += d;
  }
  s.discrepancy = n ? static_cast<double>(s.disagreeing) / n : 0;
  s.distance = n ? distance / n : 0;
  return s;
}

Result<CandidateScore> LabelEvaluator::score(const onnx::ModelProto& target) const {
  return score_inputs(target, target_inputs_);
}

Result<CandidateScore> LabelEvaluator::score_with_preset(const onnx::ModelProto& target,
                                                         const data::Preset& preset) const {
  runtime::SessionOptions so;
  so.threads = options_.threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(target, so, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(auto bound, bind_to_input(*session, preset, target_label_));
  FETAFIX_ASSIGN_OR_RETURN(auto inputs, preprocess_all(bound));
  return score_inputs(target, inputs);
}

}  // namespace fetafix::compare
