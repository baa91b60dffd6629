#include "compare/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_pipeline.h>

#include "compare/pair_setup.h"

namespace fetafix::compare {
namespace fs = std::filesystem;

namespace {

bool same_preprocessing(const data::Preset& a, const data::Preset& b) {
  auto ja = a.to_json(), jb = b.to_json();
  ja.erase("name");
  jb.erase("name");
  return ja == jb;
}

bool same_slots(const std::vector<data::InputSlot>& a, const std::vector<data::InputSlot>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].dtype != b[i].dtype || a[i].shape != b[i].shape) return false;
  return true;
}

// Declared output shapes can be missing (converters drop them); the no-guessing rule needs
// ranks, so they are observed on the first sample that decodes.
Status observe_output_shapes(const PairSetup& p, ModelOutputs& source, ModelOutputs& target) {
  for (size_t i = 0; i < p.samples.size(); ++i) {
    auto sample = p.samples.decode(i);
    if (!sample.ok()) continue;
    const std::string& name = p.samples.files()[i].name;
    FETAFIX_ASSIGN_OR_RETURN(auto sf, p.feeds.source.feed(*sample, name));
    FETAFIX_ASSIGN_OR_RETURN(auto tf, p.feeds.target.feed(*sample, name));
    FETAFIX_ASSIGN_OR_RETURN(auto so, p.source_session->run(sf));
    FETAFIX_ASSIGN_OR_RETURN(auto to, p.target_session->run(tf));
    for (size_t o = 0; o < source.outputs.size(); ++o) source.outputs[o].shape = so.at(o).shape;
    for (size_t o = 0; o < target.outputs.size(); ++o) target.outputs[o].shape = to.at(o).shape;
    return {};
  }
  return {};  // nothing decodes: compare_models reports that itself
}

// Outputs holding NaN or infinite values: the model computed garbage for this sample. Only the
// outputs the comparator reads are looked at.
bool has_non_finite(const SampleOutputs& outputs, const std::vector<size_t>& used) {
  for (size_t i : used) {
    const Tensor& t = outputs.at(i);
    if (t.dtype != DType::kFloat32 && t.dtype != DType::kFloat16 && t.dtype != DType::kFloat64 &&
        t.dtype != DType::kBFloat16)
      continue;
    const FloatValues v(t);
    if (std::any_of(v.begin(), v.end(), [](float x) { return !std::isfinite(x); })) return true;
  }
  return false;
}

struct NonFinite {
  size_t samples = 0;
  std::string first;

  void count(const SampleOutputs& outputs, const std::vector<size_t>& used, const std::string& file) {
    if (has_non_finite(outputs, used) && samples++ == 0) first = file;
  }
  void warn(const std::string& side, const std::string& task, std::vector<std::string>& warnings) const {
    if (!samples) return;
    warnings.push_back(fmt::format("{} output holds NaN or infinite {} for {} sample(s) (first: {}){}", side,
                                   task == "label" ? "scores" : "values", samples, first,
                                   task == "label" ? "; NaN scores rank last, ties by class id" : ""));
  }
};

}  // namespace

std::vector<data::InputSlot> input_slots(const runtime::Session& session) {
  std::vector<data::InputSlot> slots;
  for (const auto& in : session.inputs()) slots.push_back({in.name, in.dtype, in.shape});
  return slots;
}

ModelOutputs model_outputs(const runtime::Session& session, const std::string& label) {
  ModelOutputs m{label, {}};
  for (size_t i = 0; i < session.num_model_outputs(); ++i) m.outputs.push_back(session.outputs()[i]);
  return m;
}

TaskSpec effective_task(const CompareOptions& options) {
  TaskSpec task = options.task;
  if (task.kind.empty() || task.kind == "label") {
    // Only a k asked for is passed on: a default one is lowered to the class count silently.
    if (options.top_k_given || options.top_k != CompareOptions{}.top_k)
      task.set_default("top_k", std::to_string(options.top_k));
    if (options.label_offset) task.set_default("offset", std::to_string(*options.label_offset));
  }
  return task;
}

Result<PairSetup> set_up_pair(const ModelSide& source, const ModelSide& target, const fs::path& data_dir,
                              const CompareOptions& options, const SetupOptions& setup) {
  if (options.top_k < 1) return make_error("--top-k must be at least 1 (got {})", options.top_k);
  if (options.batch_size < 1) return make_error("--batch-size must be at least 1 (got {})", options.batch_size);
  FETAFIX_ASSIGN_OR_RETURN(data::SampleSet samples, data::SampleSet::open(data_dir, options.samples));
  PairSetup p{std::move(samples), nullptr, nullptr, {}, nullptr, false};
  runtime::SessionOptions so;
  so.threads = options.threads;
  so.allow_spinning = setup.allow_spinning;
  FETAFIX_ASSIGN_OR_RETURN(p.source_session, runtime::Session::create(*source.model, so, source.label));
  FETAFIX_ASSIGN_OR_RETURN(p.target_session, runtime::Session::create(*target.model, so, target.label));
  const auto source_slots = input_slots(*p.source_session), target_slots = input_slots(*p.target_session);
  FETAFIX_ASSIGN_OR_RETURN(p.feeds, data::plan_feeds(p.samples, source_slots, target_slots, source.preset,
                                                     target.preset, source.label, target.label));
  const bool identity = std::all_of(p.feeds.pairing.target_of_source.begin(), p.feeds.pairing.target_of_source.end(),
                                    [i = size_t{0}](size_t t) mutable { return t == i++; });
  p.shared_feed = identity && same_slots(source_slots, target_slots) &&
                  (!p.samples.has(data::SampleKind::kImage) ||
                   same_preprocessing(p.feeds.source.preset(), p.feeds.target.preset()));
  ModelOutputs src = model_outputs(*p.source_session, source.label), tgt = model_outputs(*p.target_session, target.label);
  const TaskSpec task = effective_task(options);
  auto unknown_rank = [](const ModelOutputs& m) {
    return std::any_of(m.outputs.begin(), m.outputs.end(), [](const auto& o) { return o.shape.empty(); });
  };
  if (task.kind.empty() && (unknown_rank(src) || unknown_rank(tgt))) FETAFIX_TRY_STATUS(observe_output_shapes(p, src, tgt));
  FETAFIX_ASSIGN_OR_RETURN(p.comparator, make_comparator(task, src, tgt));
  return p;
}

namespace {

// One batch travelling through the pipeline.
struct Batch {
  size_t first = 0, count = 0;               // dataset indices [first, first + count)
  std::vector<size_t> decoded;               // dataset indices that made it into the feeds
  std::vector<std::string> errors;           // per dataset index in the batch; empty = ok
  std::vector<Feed> source_feeds, target_feeds;  // per decoded sample; target empty when shared
  std::optional<Error> fatal;                // a sample that decodes but cannot feed the model
};

void fill_label_fields(ImageRecord& r) {
  if (const auto* e = std::get_if<LabelEvidence>(&r.evidence)) {
    r.source = e->source;
    r.target = e->target;
    r.target_in_source = e->target_in_source;
    r.top_k_overlap = e->top_k_overlap;
  }
}

void summarize(const PairSetup& p, const std::vector<Verdict>& verdicts, CompareResult& result) {
  Summary& s = result.summary;
  double distance = 0;
  for (const auto& v : verdicts) distance += v.distance;
  s.mean_distance = verdicts.empty() ? 0 : distance / verdicts.size();
  s.discrepancy = s.images_compared ? static_cast<double>(s.disagreeing) / s.images_compared : 0;
  TaskSummary ts = p.comparator->summarize(verdicts);
  s.task = result.task.kind;
  s.task_figures = ts.figures;
  for (auto& w : ts.warnings) result.warnings.push_back(std::move(w));
  if (s.task != "label") return;
  const auto& f = ts.figures;
  s.top_k = f.value("top_k", 0);
  s.label_offset = f.value("label_offset", int64_t{0});
  s.source_classes = f.value("source_classes", int64_t{0});
  s.target_classes = f.value("target_classes", int64_t{0});
  s.top_k_agreement = f.value("top_k_agreement", 0.0);
  s.source_top1_in_target_top_k = f.value("source_top1_in_target_top_k", 0.0);
}

}  // namespace

Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target, const fs::path& data_dir,
                                     const CompareOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(PairSetup p, set_up_pair(source, target, data_dir, options));
  const auto& files = p.samples.files();
  CompareResult result;
  result.image_dir = data_dir;
  result.source_label = source.label;
  result.target_label = target.label;
  result.image_input = p.samples.has(data::SampleKind::kImage);
  result.source_preset = result.image_input ? p.feeds.source.preset() : source.preset;
  result.target_preset = result.image_input ? p.feeds.target.preset() : target.preset;
  result.task = p.comparator->task();
  result.source_inputs = p.source_session->inputs();
  result.target_inputs = p.target_session->inputs();
  result.source_outputs = model_outputs(*p.source_session, source.label).outputs;
  result.target_outputs = model_outputs(*p.target_session, target.label).outputs;
  result.input_pairing = p.feeds.mapping;
  result.records.resize(files.size());
  for (size_t i = 0; i < files.size(); ++i) result.records[i].file = files[i].name;

  const BatchRunner source_runner(*p.source_session, source.label, static_cast<size_t>(options.batch_size));
  const BatchRunner target_runner(*p.target_session, target.label, static_cast<size_t>(options.batch_size));
  const size_t batch_size = static_cast<size_t>(options.batch_size);
  const size_t n_batches = (files.size() + batch_size - 1) / batch_size;
  Progress progress("compare", files.size(), options.progress, p.samples.images_only() ? "img" : "samples");
  const auto t0 = std::chrono::steady_clock::now();
  size_t next_batch = 0;
  std::optional<Error> failure;  // set by the serial stages only
  std::vector<Verdict> verdicts;  // compared samples, in order
  NonFinite src_non_finite, tgt_non_finite;

  // Enough batches in flight to keep the decoders ahead of inference, few enough to bound
  // memory (each token holds batch_size fed samples per side).
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
                for (size_t j = 0; j < b->count && !b->fatal; ++j) {
                  const size_t i = b->first + j;
                  auto sample = p.samples.decode(i);
                  if (!sample.ok()) {
                    b->errors[j] = sample.error().message;
                    continue;
                  }
                  auto sf = p.feeds.source.feed(*sample, files[i].name);
                  auto tf = p.shared_feed || !sf.ok() ? Result<Feed>(Feed{}) : p.feeds.target.feed(*sample, files[i].name);
                  if (!sf.ok() || !tf.ok()) {
                    b->fatal = !sf.ok() ? sf.error() : tf.error();
                    break;
                  }
                  b->source_feeds.push_back(std::move(sf).value());
                  if (!p.shared_feed) b->target_feeds.push_back(std::move(tf).value());
                  b->decoded.push_back(i);
                }
                return b;
              }) &
          tbb::make_filter<std::shared_ptr<Batch>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Batch> b) {
                if (!b || failure) return;
                if (b->fatal) {
                  failure = b->fatal;
                  return;
                }
                for (size_t j = 0; j < b->count; ++j) {
                  if (b->errors[j].empty()) continue;
                  result.records[b->first + j].error = b->errors[j];
                  if (options.strict) failure = Error{b->errors[j], kExitBadInput};
                }
                if (b->decoded.empty() || failure) {
                  progress.advance(b->count);
                  return;
                }
                std::vector<const Feed*> sp, tp;
                for (const auto& f : b->source_feeds) sp.push_back(&f);
                for (const auto& f : p.shared_feed ? b->source_feeds : b->target_feeds) tp.push_back(&f);
                auto s = source_runner.run(sp);
                auto t = s.ok() ? target_runner.run(tp) : Result<std::vector<SampleOutputs>>(s.error());
                if (!t.ok()) {
                  failure = t.error();
                  return;
                }
                for (size_t j = 0; j < b->decoded.size(); ++j) {
                  auto v = p.comparator->compare(s->at(j), t->at(j));
                  if (!v.ok()) {
                    failure = v.error();
                    return;
                  }
                  ImageRecord& r = result.records[b->decoded[j]];
                  src_non_finite.count(s->at(j), p.comparator->source_outputs(), r.file);
                  tgt_non_finite.count(t->at(j), p.comparator->target_outputs(), r.file);
                  r.agree = v->agree;
                  r.distance = v->distance;
                  r.detail = v->detail;
                  r.evidence = v->evidence;
                  fill_label_fields(r);
                  verdicts.push_back(std::move(v).value());
                }
                progress.advance(b->count);
              }));
  progress.finish();
  if (failure) return *failure;

  Summary& s = result.summary;
  s.images_found = files.size();
  for (const auto& r : result.records) {
    if (!r.error.empty()) { ++s.images_skipped; continue; }
    ++s.images_compared;
    if (!r.agree) ++s.disagreeing;
  }
  if (s.images_compared == 0)
    return make_error("{}: none of the {} samples could be decoded (first: {}: {})", data_dir.string(), files.size(),
                      result.records[0].file, result.records[0].error);
  summarize(p, verdicts, result);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.images_per_second = s.seconds > 0 ? files.size() / s.seconds : 0;
  src_non_finite.warn("Source", s.task, result.warnings);
  tgt_non_finite.warn("Target", s.task, result.warnings);
  if (s.images_skipped)
    result.warnings.push_back(fmt::format("{} sample(s) could not be decoded and were skipped", s.images_skipped));
  return result;
}

nlohmann::json to_json(const CompareResult& r) {
  using nlohmann::json;
  auto values_json = [](const std::vector<runtime::ValueInfo>& vs) {
    json a = json::array();
    for (const auto& v : vs) a.push_back({{"name", v.name}, {"dtype", dtype_name(v.dtype)}, {"shape", v.shape}});
    return a;
  };
  auto side_json = [&](const std::string& model, const data::Preset& preset, const std::vector<runtime::ValueInfo>& in,
                       const std::vector<runtime::ValueInfo>& out, int64_t classes) {
    json j{{"model", model}, {"inputs", values_json(in)}, {"outputs", values_json(out)}};
    if (r.image_input) j["preprocess"] = preset.to_json();
    if (r.summary.task == "label") j["classes"] = classes;
    return j;
  };
  json samples = json::array();
  for (const auto& rec : r.records) {
    json j{{"file", rec.file}};
    if (!rec.error.empty()) {
      j["status"] = "skipped";
      j["error"] = rec.error;
    } else {
      j["status"] = rec.agree ? "agree" : "disagree";
      j["distance"] = rec.distance;
      j["detail"] = rec.detail;
      j.update(evidence_to_json(rec.evidence));
    }
    samples.push_back(std::move(j));
  }
  const Summary& s = r.summary;
  json summary{{"samples_found", s.images_found},
               {"samples_compared", s.images_compared},
               {"samples_skipped", s.images_skipped},
               {"disagreeing", s.disagreeing},
               {"discrepancy", s.discrepancy},
               {"mean_distance", s.mean_distance},
               {"seconds", s.seconds},
               {"samples_per_second", s.images_per_second}};
  summary.update(s.task_figures);
  if (s.task == "label") summary["label_discrepancy"] = s.discrepancy;
  return json{
      {"schema", "fetafix.compare/2"},
      {"task", r.task.to_json()},
      {"source", side_json(r.source_label, r.source_preset, r.source_inputs, r.source_outputs, s.source_classes)},
      {"target", side_json(r.target_label, r.target_preset, r.target_inputs, r.target_outputs, s.target_classes)},
      {"input_pairing", r.input_pairing},
      {"data_dir", r.image_dir.string()},
      {"summary", std::move(summary)},
      {"warnings", r.warnings},
      {"samples", std::move(samples)},
  };
}

std::string format_report(const CompareResult& r, size_t max_listed) {
  const Summary& s = r.summary;
  const bool label = s.task == "label";
  std::string out;
  auto preprocess = [&](const data::Preset& p) {
    return r.image_input ? fmt::format("  (preprocess {})", p.name) : std::string();
  };
  out += fmt::format("Source: {}{}\n", r.source_label, preprocess(r.source_preset));
  out += fmt::format("Target: {}{}\n", r.target_label, preprocess(r.target_preset));
  const bool renamed = r.input_pairing.find("->") != std::string::npos;
  if (r.source_inputs.size() > 1 || renamed) out += fmt::format("Inputs: {}\n", r.input_pairing);
  if (!label) out += fmt::format("Task: {}\n", r.task.to_string());
  out += fmt::format("{}: {} compared", label && r.image_input ? "Images" : "Samples", s.images_compared);
  if (s.images_skipped) out += fmt::format(", {} skipped", s.images_skipped);
  out += fmt::format(" ({:.1f} {}/s)\n", s.images_per_second, label && r.image_input ? "img" : "samples");
  if (label) {
    out += fmt::format("Label discrepancy (top-1 differs): {:.2f}%  ({} of {})\n", 100 * s.discrepancy, s.disagreeing,
                       s.images_compared);
    out += fmt::format("Top-{} agreement: {:.2f}%   Source top-1 within Target top-{}: {:.2f}%\n", s.top_k,
                       100 * s.top_k_agreement, s.top_k, 100 * s.source_top1_in_target_top_k);
  } else {
    out += fmt::format("Disagreement ({}): {:.2f}%  ({} of {}); mean distance {:.4g}\n", s.task, 100 * s.discrepancy,
                       s.disagreeing, s.images_compared, s.mean_distance);
  }
  if (s.disagreeing) {
    out += label ? (r.image_input ? "Disagreeing images (Source top-1 -> Target top-1):\n"
                                  : "Disagreeing samples (Source top-1 -> Target top-1):\n")
                 : "Disagreeing samples:\n";
    size_t listed = 0;
    for (const auto& rec : r.records) {
      if (!rec.error.empty() || rec.agree) continue;
      if (listed++ == max_listed) {
        out += fmt::format("  ... and {} more (see --json)\n", s.disagreeing - max_listed);
        break;
      }
      out += fmt::format("  {}  {}\n", rec.file, rec.detail);
    }
  }
  for (const auto& rec : r.records)
    if (!rec.error.empty()) out += fmt::format("skipped: {}\n", rec.error);
  return out;
}

}  // namespace fetafix::compare
