// PP: which preprocessing makes the Target agree with the Source (paper §4.1.1). The Target is
// run under its own preset, the Source's and the standard ones; a preset that removes enough of
// the disagreement is a finding, and its repair feeds the Target with it.
#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <tbb/parallel_for.h>

#include "compare/labels.h"
#include "localize/checks/check.h"
#include "compare/evaluator.h"
#include "localize/input_checks.h"
#include "localize/sample_feeds.h"
#include "runtime/session.h"

namespace fetafix::localize {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

Result<std::unique_ptr<runtime::Session>> open_image_model(const compare::ModelSide& side, int threads) {
  if (side.model == nullptr) return make_error("{}: no model given", side.label);
  runtime::SessionOptions so;
  so.threads = threads;
  FETAFIX_ASSIGN_OR_RETURN(auto session, runtime::Session::create(*side.model, so, side.label));
  if (session->inputs().size() != 1)
    return make_error("{}: the model has {} inputs; fetafix feeds a single image input", side.label,
                      session->inputs().size());
  if (session->outputs().empty()) return make_error("{}: the model has no outputs", side.label);
  return session;
}

Result<data::Preset> bind_to(const data::Preset& preset, const runtime::Session& session, const std::string& label) {
  const auto& in = session.inputs()[0];
  auto bound = data::bind_preset_to_input(preset, in.shape, in.dtype, in.name);
  if (!bound.ok()) return make_error("{}: {}", label, bound.error().message);
  return bound;
}

bool same_preprocessing(const data::Preset& a, const data::Preset& b) {
  auto ja = a.to_json(), jb = b.to_json();
  ja.erase("name");
  jb.erase("name");
  return ja == jb;
}

std::vector<int64_t> image_shape(const data::Preset& bound) {
  return bound.layout == data::Layout::kNHWC ? std::vector<int64_t>{bound.height, bound.width, 3}
                                              : std::vector<int64_t>{3, bound.height, bound.width};
}

size_t image_bytes(const data::Preset& bound) {
  return static_cast<size_t>(shape_numel(image_shape(bound))) * dtype_size(bound.dtype);
}

// Preprocesses `images` with `bound`, runs the model and returns the top-k of each image.
Result<std::vector<compare::TopK>> infer_top_k(const runtime::Session& session, const std::string& label,
                                               const data::Preset& bound, const std::vector<data::Image>& images,
                                               int k, int64_t& classes) {
  const size_t n = images.size();
  const int64_t fixed = session.fixed_batch();
  size_t padded = n;
  if (fixed > 1 && n % static_cast<size_t>(fixed)) padded = (n / fixed + 1) * fixed;  // repeat the last image
  std::vector<int64_t> shape{static_cast<int64_t>(padded)};
  const auto per_image = image_shape(bound);
  shape.insert(shape.end(), per_image.begin(), per_image.end());
  Tensor input(bound.dtype, shape);
  const size_t bytes = image_bytes(bound);
  tbb::parallel_for(size_t{0}, padded, [&](size_t i) {
    data::preprocess_into(images[std::min(i, n - 1)], bound, input.bytes.data() + i * bytes);
  });
  FETAFIX_ASSIGN_OR_RETURN(auto outputs, session.run({input}));
  const Tensor& out = outputs.at(0);
  if (out.shape.empty() || out.shape[0] != static_cast<int64_t>(padded))
    return make_error("{}: output '{}' has shape {}, expected a batch of {} first", label, session.outputs()[0].name,
                      shape_to_string(out.shape), padded);
  classes = out.numel() / static_cast<int64_t>(padded);
  if (classes < 2)
    return make_error("{}: output '{}' has shape {}: one value per image is not a classifier's scores", label,
                      session.outputs()[0].name, shape_to_string(out.shape));
  const std::vector<float> scores = out.to_float();
  std::vector<compare::TopK> result(n);
  for (size_t i = 0; i < n; ++i)
    result[i] = compare::top_k(std::span<const float>(scores.data() + i * classes, static_cast<size_t>(classes)), k);
  return result;
}

// The trials of the PP check, planned on the Target's image input: its own preset, the Source's,
// then the standard ones; a trial whose bound preprocessing equals an earlier one's is measured
// by it (measured_by[t]).
struct TrialPlan {
  PreprocessingReport report;
  std::vector<size_t> measured_by;
};

void add_trial(TrialPlan& plan, const data::InputSlot& in, data::Preset preset, const std::string& role) {
  PreprocessingReport& report = plan.report;
  plan.measured_by.push_back(report.trials.size());
  PresetTrial t;
  t.preset = preset.name;
  t.role = role;
  auto bound = data::bind_preset_to_input(preset, in.shape, in.dtype, in.name);
  if (!bound.ok() && (preset.width > 0 || preset.height > 0 || preset.layout)) {
    // Size and layout describe the other model's input, not the preprocessing: let the
    // Target's input decide them (a size mismatch is the ID check's business).
    preset.width = preset.height = 0;
    preset.layout.reset();
    auto retry = data::bind_preset_to_input(preset, in.shape, in.dtype, in.name);
    if (retry.ok()) bound = std::move(retry);
  }
  if (!bound.ok()) {
    t.skipped_reason = bound.error().message;
  } else {
    t.measured = true;
    t.bound = std::move(bound).value();
    for (size_t e = 0; e < report.trials.size(); ++e) {
      const PresetTrial& earlier = report.trials[e];
      if (earlier.measured && earlier.same_as.empty() && same_preprocessing(earlier.bound, t.bound)) {
        t.same_as = earlier.preset;
        plan.measured_by.back() = e;
        break;
      }
    }
  }
  report.trials.push_back(std::move(t));
}

// The preset with its channel order reversed (RGB <-> BGR) and its per-channel mean and std
// reversed with it, so each colour is still normalised with its own numbers: what the Target
// needs when its graph reverses the channels itself (a port's `x[:, [2, 1, 0]]`).
data::Preset channels_reversed(data::Preset preset) {
  const bool bgr = preset.channels == data::ChannelOrder::kBGR;
  preset.channels = bgr ? data::ChannelOrder::kRGB : data::ChannelOrder::kBGR;
  std::reverse(preset.mean.begin(), preset.mean.end());
  std::reverse(preset.std.begin(), preset.std.end());
  preset.name += bgr ? "-rgb" : "-bgr";
  return preset;
}

Result<TrialPlan> plan_trials(const data::InputSlot& in, const compare::ModelSide& source,
                              const compare::ModelSide& target, const std::vector<std::string>& presets) {
  auto own = data::bind_preset_to_input(target.preset, in.shape, in.dtype, in.name);
  if (!own.ok()) return make_error("{}: {}", target.label, own.error().message);
  TrialPlan plan;
  add_trial(plan, in, target.preset, "target");
  add_trial(plan, in, source.preset, "source");
  add_trial(plan, in, channels_reversed(target.preset), "target_reversed");
  for (const auto& spec : presets) {
    FETAFIX_ASSIGN_OR_RETURN(auto preset, data::resolve_preset(spec));
    add_trial(plan, in, std::move(preset), "standard");
  }
  return plan;
}

// The trial that disagrees least; ties: the higher top-k agreement (label tasks) or the smaller
// distance (other tasks), then the earlier trial.
void choose_best(PreprocessingReport& report) {
  for (size_t t = 0; t < report.trials.size(); ++t) {
    const PresetTrial& trial = report.trials[t];
    if (!trial.measured) continue;
    if (!report.best) {
      report.best = t;
      continue;
    }
    const PresetTrial& best = report.trials[*report.best];
    const bool closer = trial.distance ? *trial.distance < best.distance.value_or(0)
                                       : trial.top_k_agreement > best.top_k_agreement;
    if (trial.disagreeing < best.disagreeing || (trial.disagreeing == best.disagreeing && closer)) report.best = t;
  }
}

// Tasks other than label, and models with several inputs: each trial preset feeds the Target's
// image input through the evaluator (the Source runs once), and the task's comparator decides.
Result<PreprocessingReport> measure_by_comparator(const compare::ModelSide& source, const compare::ModelSide& target,
                                                  const data::SampleSet& samples,
                                                  const PreprocessingCheckOptions& options) {
  compare::CompareOptions co = options.compare;
  co.progress = ProgressMode::kQuiet;
  FETAFIX_ASSIGN_OR_RETURN(auto feeds, data::plan_feeds(samples, declared_inputs(*source.model),
                                                        declared_inputs(*target.model), source.preset, target.preset,
                                                        source.label, target.label));
  if (!feeds.target.image_input())
    return make_error("{}: no input takes the images, so no preset applies", target.label);
  const data::InputSlot in = feeds.target.inputs().at(*feeds.target.image_input());
  FETAFIX_ASSIGN_OR_RETURN(TrialPlan plan, plan_trials(in, source, target, options.presets));
  FETAFIX_ASSIGN_OR_RETURN(auto eval, compare::Evaluator::create(source, target, samples, co));
  PreprocessingReport& report = plan.report;
  report.images_compared = eval->images();
  for (size_t t = 0; t < report.trials.size(); ++t) {
    PresetTrial& trial = report.trials[t];
    if (!trial.measured) continue;
    if (plan.measured_by[t] != t) {
      const PresetTrial& by = report.trials[plan.measured_by[t]];
      trial.disagreeing = by.disagreeing;
      trial.disagreement = by.disagreement;
      trial.distance = by.distance;
      continue;
    }
    auto score = eval->score_with_preset(*target.model, trial.bound);
    if (!score.ok()) {
      trial.measured = false;
      trial.skipped_reason = score.error().message;
      continue;
    }
    trial.disagreeing = score->disagreeing;
    trial.disagreement = score->discrepancy;
    trial.distance = score->distance;
  }
  if (!report.trials[0].measured)
    return make_error("{}: the Target does not run with its own preset: {}", target.label,
                      report.trials[0].skipped_reason);
  choose_best(report);
  return report;
}

bool label_task(const compare::CompareOptions& o) { return o.task.kind.empty() || o.task.kind == "label"; }

struct TrialTally {
  size_t disagreeing = 0;
  double overlap_sum = 0;
};

json trial_json(const PresetTrial& t) {
  json j{{"preset", t.preset}, {"role", t.role}, {"measured", t.measured}};
  if (!t.measured) {
    j["skipped_reason"] = t.skipped_reason;
    return j;
  }
  j["disagreement"] = t.disagreement;
  j["disagreeing"] = t.disagreeing;
  if (t.distance) j["distance"] = *t.distance;
  else j["top_k_agreement"] = t.top_k_agreement;
  if (!t.same_as.empty()) j["same_as"] = t.same_as;
  j["preset_json"] = t.bound.to_json();
  return j;
}

// How a finding's summary names the role of the best trial.
std::string role_text(const std::string& role) {
  if (role == "standard") return "standard";
  if (role == "target_reversed") return "Target's channel-reversed";
  return role + "'s";
}

// Label tasks on single-input models: every image is decoded once per batch and preprocessed for
// every preset, the Source runs once and the Target once per preset, and labels are compared.
Result<PreprocessingReport> measure_by_labels(const compare::ModelSide& source, const compare::ModelSide& target,
                                              const data::SampleSet& samples, const PreprocessingCheckOptions& options) {
  const auto& co = options.compare;
  FETAFIX_ASSIGN_OR_RETURN(auto src_session, open_image_model(source, co.threads));
  FETAFIX_ASSIGN_OR_RETURN(auto tgt_session, open_image_model(target, co.threads));
  FETAFIX_ASSIGN_OR_RETURN(const data::Preset src_bound, bind_to(source.preset, *src_session, source.label));

  const auto& in = tgt_session->inputs()[0];
  FETAFIX_ASSIGN_OR_RETURN(TrialPlan plan, plan_trials({in.name, in.dtype, in.shape}, source, target, options.presets));
  PreprocessingReport& report = plan.report;
  const std::vector<size_t>& measured_by = plan.measured_by;
  std::vector<TrialTally> tallies(report.trials.size());
  const int k = co.top_k;
  const int64_t offset = co.label_offset.value_or(0);
  const size_t batch = static_cast<size_t>(co.batch_size);
  for (size_t first = 0; first < samples.size(); first += batch) {
    const size_t count = std::min(batch, samples.size() - first);
    std::vector<Result<data::DecodedSample>> decoded(count, Result<data::DecodedSample>(Error{}));
    tbb::parallel_for(size_t{0}, count, [&](size_t j) { decoded[j] = samples.decode(first + j); });
    std::vector<data::Image> images;
    for (auto& d : decoded) {
      if (!d.ok()) {
        if (co.strict) return d.error();
        ++report.images_skipped;
        continue;
      }
      images.push_back(std::move(d->image));
    }
    if (images.empty()) continue;
    int64_t src_classes = 0, tgt_classes = 0;
    FETAFIX_ASSIGN_OR_RETURN(auto src_top, infer_top_k(*src_session, source.label, src_bound, images, k, src_classes));
    for (size_t t = 0; t < report.trials.size(); ++t) {
      const PresetTrial& trial = report.trials[t];
      if (!trial.measured || !trial.same_as.empty()) continue;
      FETAFIX_ASSIGN_OR_RETURN(auto tgt_top, infer_top_k(*tgt_session, target.label, trial.bound, images, k, tgt_classes));
      for (size_t i = 0; i < images.size(); ++i) {
        std::vector<int64_t> in_source;
        for (int64_t id : tgt_top[i].ids) in_source.push_back(compare::to_source_label(id, offset, src_classes));
        if (src_top[i].ids.empty() || in_source.empty() || src_top[i].ids[0] != in_source[0]) ++tallies[t].disagreeing;
        tallies[t].overlap_sum += compare::top_k_overlap(src_top[i].ids, in_source, k);
      }
    }
    report.images_compared += images.size();
  }
  if (report.images_compared == 0)
    return make_error("{}: none of the {} images could be decoded", samples.dir().string(), samples.size());

  const double n = static_cast<double>(report.images_compared);
  for (size_t t = 0; t < report.trials.size(); ++t) {
    PresetTrial& trial = report.trials[t];
    if (!trial.measured) continue;
    const size_t from = measured_by[t];
    trial.disagreeing = tallies[from].disagreeing;
    trial.disagreement = tallies[from].disagreeing / n;
    trial.top_k_agreement = tallies[from].overlap_sum / n;
  }
  choose_best(report);
  return std::move(plan.report);
}

// The label path reads only the folder's images (other files are not its samples); the comparator
// path takes every sample and needs them all to be images.
bool by_labels(const compare::ModelSide& source, const compare::ModelSide& target, const compare::CompareOptions& co) {
  return label_task(co) && declared_inputs(*source.model).size() == 1 && declared_inputs(*target.model).size() == 1;
}

}  // namespace

Result<PreprocessingReport> measure_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                  const data::SampleSet& samples,
                                                  const PreprocessingCheckOptions& options) {
  const auto& co = options.compare;
  if (co.top_k < 1) return make_error("top-k must be at least 1 (got {})", co.top_k);
  if (co.batch_size < 1) return make_error("batch size must be at least 1 (got {})", co.batch_size);
  if (!samples.images_only())
    return make_error("{}: the samples are not all images, so no preset applies", samples.dir().string());
  const data::SampleSet chosen = options.subset.empty() ? samples : samples.subset(options.subset);
  if (!by_labels(source, target, co)) return measure_by_comparator(source, target, chosen, options);
  return measure_by_labels(source, target, chosen, options);
}

Result<PreprocessingReport> measure_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                  const fs::path& image_dir, const PreprocessingCheckOptions& options) {
  data::SampleOptions so = options.compare.samples;
  if (by_labels(source, target, options.compare)) so.images_only = true;
  FETAFIX_ASSIGN_OR_RETURN(auto samples, data::SampleSet::open(image_dir, so));
  return measure_preprocessing(source, target, samples, options);
}

std::vector<Finding> preprocessing_findings(const PreprocessingReport& report, double min_relative_gain) {
  if (report.trials.empty() || !report.best || !report.trials[0].measured) return {};
  const PresetTrial& current = report.trials[0];
  const PresetTrial& best = report.trials[*report.best];
  if (best.disagreeing >= current.disagreeing) return {};
  const double gain = static_cast<double>(current.disagreeing - best.disagreeing) / current.disagreeing;
  if (gain + 1e-12 < min_relative_gain) return {};
  PreprocessingEvidence e;
  e.images_compared = report.images_compared;
  e.images_skipped = report.images_skipped;
  e.trials = report.trials;
  e.best = *report.best;
  std::string summary = fmt::format(
      "Target disagrees with Source on {} of {} images ({:.1f}%) with its preset '{}', on {} ({:.1f}%) with the {} "
      "preset '{}'",
      current.disagreeing, report.images_compared, 100 * current.disagreement, current.preset, best.disagreeing,
      100 * best.disagreement, role_text(best.role), best.preset);
  Finding f = make_finding(std::move(e), "", "", std::move(summary));
  return {std::move(f)};
}

Result<std::vector<Finding>> check_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                 const fs::path& image_dir, const PreprocessingCheckOptions& options) {
  FETAFIX_ASSIGN_OR_RETURN(auto report, measure_preprocessing(source, target, image_dir, options));
  return preprocessing_findings(report, options.min_relative_gain);
}

json PreprocessingEvidence::to_json() const {
  json all = json::array();
  for (const auto& t : trials) all.push_back(trial_json(t));
  if (trials.empty() || best >= trials.size())  // only a hand-made finding; the check always has trials
    return json{{"images_compared", images_compared}, {"images_skipped", images_skipped}, {"trials", std::move(all)}};
  const PresetTrial& current = current_trial();
  const PresetTrial& chosen = best_trial();
  return json{{"images_compared", images_compared},
              {"images_skipped", images_skipped},
              {"current_preset", current.preset},
              {"current_disagreement", current.disagreement},
              {"best_preset", chosen.preset},
              {"best_role", chosen.role},
              {"best_disagreement", chosen.disagreement},
              {"best_preset_json", chosen.bound.to_json()},
              {"trials", std::move(all)}};
}

// Only where some image disagrees (else no preset can do better), on a seeded sample of the
// images when options.preprocessing_sample asks for one.
Result<std::vector<Finding>> PreprocessingEvidence::run(const CheckContext& c) {
  if (!c.stages.preprocessing) {
    c.notes->push_back("preprocessing check not run in this stage");
    return std::vector<Finding>{};
  }
  const auto [similar, dissimilar] = split_by_agreement(c.detection);
  if (dissimilar.empty()) {
    c.notes->push_back("preprocessing check skipped: no image disagrees, so no preset can do better");
    return std::vector<Finding>{};
  }
  if (!c.detection.samples.images_only()) {
    c.notes->push_back("preprocessing check skipped: the samples are not images (presets apply to an image input)");
    return std::vector<Finding>{};
  }
  const LocalizeOptions& o = c.options;
  PreprocessingCheckOptions pp;
  pp.presets = o.presets_to_try;
  pp.compare = o.compare;
  if (o.preprocessing_sample > 0 && dissimilar.size() + similar.size() > 2 * o.preprocessing_sample) {
    auto chosen = seeded_subset(dissimilar, o.preprocessing_sample, o.activation.seed + 7);
    auto agreeing = seeded_subset(similar, o.preprocessing_sample, o.activation.seed + 8);
    chosen.insert(chosen.end(), agreeing.begin(), agreeing.end());
    std::sort(chosen.begin(), chosen.end());
    pp.subset = chosen;
    c.notes->push_back(fmt::format("preprocessing check on a seeded sample of {} images ({} disagreeing)",
                                   chosen.size(), std::min(dissimilar.size(), o.preprocessing_sample)));
  }
  FETAFIX_ASSIGN_OR_RETURN(*c.preprocessing, measure_preprocessing(c.source, c.target, c.detection.samples, pp));
  return preprocessing_findings(*c.preprocessing, o.preprocessing_min_gain);
}

}  // namespace fetafix::localize
