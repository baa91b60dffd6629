#include "compare/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_pipeline.h>

#include "compare/pair_setup.h"
#include "compare/shard.h"

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

  void count(const std::string& file) {
    if (samples++ == 0) first = file;
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

namespace {

// DType of the first graph input that is not an initializer.
DType image_input_dtype(const onnx::ModelProto& m) {
  for (const auto& in : m.graph().input()) {
    bool is_init = false;
    for (const auto& init : m.graph().initializer()) is_init |= init.name() == in.name();
    if (!is_init) return static_cast<DType>(in.type().tensor_type().elem_type());
  }
  return DType::kUndefined;
}

}  // namespace

Result<data::Preset> resolve_side_preset(const std::string& spec, const nlohmann::json& overrides,
                                         const onnx::ModelProto& model, const std::string& what) {
  std::string name = spec;
  if (name == "auto") name = image_input_dtype(model) == DType::kUInt8 ? "uint8" : "torch";
  auto preset = data::resolve_preset(name);
  if (!preset.ok()) return Error{fmt::format("{}: {}", what, preset.error().message), preset.error().kind};
  if (!overrides.empty()) FETAFIX_TRY_STATUS(data::apply_overrides(*preset, overrides));
  return preset;
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

const Communicator& ranks_of(const CompareOptions& options) { return options.comm ? *options.comm : single_process(); }

namespace {

// set_up_pair's work on this rank.
Result<PairSetup> set_up_models(const ModelSide& source, const ModelSide& target, data::SampleSet samples,
                                const CompareOptions& options, const SetupOptions& setup) {
  if (options.top_k < 1) return make_error("--top-k must be at least 1 (got {})", options.top_k);
  if (options.batch_size < 1) return make_error("--batch-size must be at least 1 (got {})", options.batch_size);
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

// Ranks split the samples by position in the listing: they must all list the same ones.
Status check_same_samples(const Communicator& comm, const data::SampleSet& samples) {
  if (comm.size() == 1) return {};
  ByteWriter w;
  for (const auto& f : samples.files()) w.put(f.name);
  const std::string mine = fmt::format("{}:{}", samples.size(), std::hash<std::string>{}(w.bytes()));
  const auto all = comm.all_gather(mine);
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      return make_error("{}: rank {} lists other samples than rank 0 ({} and {} files, or other names); every rank "
                        "needs the same folder (a shared filesystem, or the same copy staged on every node)",
                        samples.dir().string(), r, all[r].substr(0, all[r].find(':')),
                        all[0].substr(0, all[0].find(':')));
  return {};
}

}  // namespace

Result<data::SampleSet> open_samples(const fs::path& data_dir, const CompareOptions& options) {
  auto samples = data::SampleSet::open(data_dir, options.samples);
  FETAFIX_TRY_STATUS(agree(ranks_of(options), samples.ok() ? Status() : Status(samples.error())));
  return samples;
}

Result<PairSetup> set_up_pair(const ModelSide& source, const ModelSide& target, data::SampleSet samples,
                              const CompareOptions& options, const SetupOptions& setup) {
  FETAFIX_TRY_STATUS(check_same_samples(ranks_of(options), samples));
  auto p = set_up_models(source, target, std::move(samples), options, setup);
  FETAFIX_TRY_STATUS(agree(ranks_of(options), p.ok() ? Status() : Status(p.error())));
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

// What became of one sample: skipped (why), or compared (the verdict).
struct SampleOutcome {
  std::string error;
  Verdict verdict;
  bool source_non_finite = false;  // NaN or infinity in an output the comparator reads
  bool target_non_finite = false;
};

void put_outcome(ByteWriter& w, const SampleOutcome& o) {
  w.put(o.error);
  encode(w, o.verdict);
  w.put(static_cast<uint8_t>(o.source_non_finite));
  w.put(static_cast<uint8_t>(o.target_non_finite));
}

void get_outcome(ByteReader& r, SampleOutcome& o) {
  r.get(o.error);
  decode(r, o.verdict);
  o.source_non_finite = r.get<uint8_t>() != 0;
  o.target_non_finite = r.get<uint8_t>() != 0;
}

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

// Everything about the pair, before any sample.
CompareResult describe_pair(const PairSetup& p, const ModelSide& source, const ModelSide& target) {
  CompareResult result;
  result.image_dir = p.samples.dir();
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
  result.records.resize(p.samples.size());
  for (size_t i = 0; i < p.samples.size(); ++i) result.records[i].file = p.samples.files()[i].name;
  return result;
}

// Decodes and feeds the samples of one batch (the pipeline's parallel stage).
void feed_batch(const PairSetup& p, Batch& b) {
  const auto& files = p.samples.files();
  b.errors.resize(b.count);
  for (size_t j = 0; j < b.count && !b.fatal; ++j) {
    const size_t i = b.first + j;
    auto sample = p.samples.decode(i);
    if (!sample.ok()) {
      b.errors[j] = sample.error().message;
      continue;
    }
    auto sf = p.feeds.source.feed(*sample, files[i].name);
    auto tf = p.shared_feed || !sf.ok() ? Result<Feed>(Feed{}) : p.feeds.target.feed(*sample, files[i].name);
    if (!sf.ok() || !tf.ok()) {
      b.fatal = !sf.ok() ? sf.error() : tf.error();
      break;
    }
    b.source_feeds.push_back(std::move(sf).value());
    if (!p.shared_feed) b.target_feeds.push_back(std::move(tf).value());
    b.decoded.push_back(i);
  }
}

// Runs both models on a fed batch and compares them (the pipeline's serial stage): the outcome
// of each of its samples, or the error that stops the pass.
Status compare_batch(const PairSetup& p, const BatchRunner& source_runner, const BatchRunner& target_runner,
                     bool strict, const Batch& b, std::span<SampleOutcome> outcomes) {
  if (b.fatal) return *b.fatal;
  for (size_t j = 0; j < b.count; ++j) {
    if (b.errors[j].empty()) continue;
    outcomes[j].error = b.errors[j];
    if (strict) return Error{b.errors[j], ErrorKind::kBadInput};
  }
  if (b.decoded.empty()) return {};
  std::vector<const Feed*> sp, tp;
  for (const auto& f : b.source_feeds) sp.push_back(&f);
  for (const auto& f : p.shared_feed ? b.source_feeds : b.target_feeds) tp.push_back(&f);
  FETAFIX_ASSIGN_OR_RETURN(auto s, source_runner.run(sp));
  FETAFIX_ASSIGN_OR_RETURN(auto t, target_runner.run(tp));
  for (size_t j = 0; j < b.decoded.size(); ++j) {
    SampleOutcome& o = outcomes[b.decoded[j] - b.first];
    FETAFIX_ASSIGN_OR_RETURN(o.verdict, p.comparator->compare(s[j], t[j]));
    o.source_non_finite = has_non_finite(s[j], p.comparator->source_outputs());
    o.target_non_finite = has_non_finite(t[j], p.comparator->target_outputs());
  }
  return {};
}

// This rank's share of the pass: its batches, decoded on worker threads while the models run.
RankPart<SampleOutcome> compare_shard(const PairSetup& p, const Shard& shard, const CompareOptions& options,
                                      const ModelSide& source, const ModelSide& target) {
  const size_t batch_size = static_cast<size_t>(options.batch_size);
  std::vector<size_t> batches;  // first sample of each batch this rank runs
  for (size_t first = 0; first < p.samples.size(); first += batch_size)
    if (shard.mine(first)) batches.push_back(first);
  RankPart<SampleOutcome> part;
  part.items.resize(shard.owned().size());
  const BatchRunner source_runner(*p.source_session, source.label, batch_size);
  const BatchRunner target_runner(*p.target_session, target.label, batch_size);
  Progress progress("compare", part.items.size(), options.progress, p.samples.images_only() ? "img" : "samples");
  size_t next = 0, done = 0;
  // Enough batches in flight to keep the decoders ahead of inference, few enough to bound
  // memory (each token holds batch_size fed samples per side).
  const size_t tokens = 4;
  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, std::shared_ptr<Batch>>(tbb::filter_mode::serial_in_order,
                                                     [&](tbb::flow_control& fc) -> std::shared_ptr<Batch> {
                                                       if (next >= batches.size() || part.error) {
                                                         fc.stop();
                                                         return nullptr;
                                                       }
                                                       auto b = std::make_shared<Batch>();
                                                       b->first = batches[next++];
                                                       b->count = std::min(batch_size, p.samples.size() - b->first);
                                                       return b;
                                                     }) &
          tbb::make_filter<std::shared_ptr<Batch>, std::shared_ptr<Batch>>(
              tbb::filter_mode::parallel, [&](std::shared_ptr<Batch> b) { return feed_batch(p, *b), b; }) &
          tbb::make_filter<std::shared_ptr<Batch>, void>(
              tbb::filter_mode::serial_in_order, [&](std::shared_ptr<Batch> b) {
                if (!b || part.error) return;
                const std::span<SampleOutcome> outcomes(part.items.data() + shard.local(b->first), b->count);
                if (auto st = compare_batch(p, source_runner, target_runner, options.strict, *b, outcomes); !st.ok())
                  return part.fail(b->first, st.error());
                progress.advance(b->count);
                done += b->count;
                if (options.on_progress && !options.on_progress(done, part.items.size()))
                  part.fail(b->first, make_error("stopped by the progress callback after {} samples", done));
              }));
  progress.finish();
  return part;
}

}  // namespace

Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target, const fs::path& data_dir,
                                     const CompareOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(data::SampleSet samples, open_samples(data_dir, options));
  return compare_models(source, target, std::move(samples), options);
}

Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target, data::SampleSet samples,
                                     const CompareOptions& options) {
  const Communicator& comm = ranks_of(options);
  FETAFIX_ASSIGN_OR_RETURN(PairSetup p, set_up_pair(source, target, std::move(samples), options));
  CompareResult result = describe_pair(p, source, target);
  const auto t0 = std::chrono::steady_clock::now();
  const Shard shard(p.samples.size(), static_cast<size_t>(options.batch_size), comm);
  const auto every = every_sample(p.samples.size());
  FETAFIX_ASSIGN_OR_RETURN(auto outcomes, merge_rows(comm, shard, every, compare_shard(p, shard, options, source, target),
                                                     put_outcome, get_outcome));
  Summary& s = result.summary;
  s.images_found = outcomes.size();
  std::vector<Verdict> verdicts;  // compared samples, in order
  NonFinite src_non_finite, tgt_non_finite;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    ImageRecord& r = result.records[i];
    if (!outcomes[i].error.empty()) {
      r.error = std::move(outcomes[i].error);
      ++s.images_skipped;
      continue;
    }
    if (outcomes[i].source_non_finite) src_non_finite.count(r.file);
    if (outcomes[i].target_non_finite) tgt_non_finite.count(r.file);
    Verdict& v = outcomes[i].verdict;
    r.agree = v.agree;
    r.distance = v.distance;
    r.detail = v.detail;
    r.evidence = v.evidence;
    fill_label_fields(r);
    ++s.images_compared;
    s.disagreeing += !v.agree;
    verdicts.push_back(std::move(v));
  }
  if (s.images_compared == 0)
    return make_error("{}: none of the {} samples could be decoded (first: {}: {})", p.samples.dir().string(),
                      outcomes.size(), result.records[0].file, result.records[0].error);
  summarize(p, verdicts, result);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.images_per_second = s.seconds > 0 ? outcomes.size() / s.seconds : 0;
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
