#include "cli/pair_options.h"

#include "cli/commands.h"

#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/limits.h"
#include "compare/comparator.h"

namespace fetafix::cli {
namespace fs = std::filesystem;

int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput: return kExitBadInput;
    case ErrorKind::kInternal: return kExitInternal;
  }
  return kExitInternal;
}
namespace {
const Communicator* the_ranks = &single_process();
}  // namespace

const Communicator& ranks() { return *the_ranks; }
void set_ranks(const Communicator& comm) { the_ranks = &comm; }
Status on_root(Status check) { return ranks().is_root() ? check : Status(); }

int fail(const Error& e) {
  std::fprintf(stderr, "fetafix: %s\n", e.message.c_str());
  return exit_code_for(e.kind);
}

namespace {

Result<data::Preset> make_preset(const std::string& spec, const std::string& overrides, const onnx::ModelProto& m,
                                 const char* flag) {
  nlohmann::json j = nlohmann::json::object();
  if (!overrides.empty()) {
    j = nlohmann::json::parse(overrides, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return make_error("{}-override: not a JSON object: {}", flag, overrides);
  }
  return compare::resolve_side_preset(spec, j, m, flag);
}

// --data, --task, --input, --sample-rate (docs/cli.md, "Any model").
void add_any_model_options(CLI::App* cmd, PairArgs& a, CLI::Option* images) {
  cmd->add_option("--data", a.data,
                  "Folder of samples, one file each, searched recursively: images (.jpg/.png), .npz (one array per "
                  "model input, named after it), .npy (single-input models), .wav (mono audio)")
      ->excludes(images);
  cmd->add_option("--input", a.inputs, "NAME=FILE.npy: the same value for input NAME on every sample (repeatable)");
  cmd->add_option("--sample-rate", a.sample_rate, "Resample .wav samples to this rate (Hz); default: keep each file's")
      ->check(CLI::Range(1, 10000000));
}

}  // namespace

void add_pair_options(CLI::App* cmd, PairArgs& a) {
  cmd->add_option("SOURCE", a.source_path, "Source model (.onnx)")->required();
  cmd->add_option("TARGET", a.target_path, "Target (converted) model (.onnx)")->required();
  auto* images = cmd->add_option("--images", a.images, "Folder of .jpg/.jpeg/.png images (searched recursively)");
  add_any_model_options(cmd, a, images);
  std::string kinds;
  for (const auto& k : compare::ComparatorRegistry::instance().names()) kinds += (kinds.empty() ? "" : ", ") + k;
  cmd->add_option("--task", a.task,
                  "What to compare: KIND[:key=value,...], KIND one of " + kinds +
                      " (docs/cli.md). Default: label, when each model has one [batch, classes] output");
  cmd->add_option("--source-preprocess", a.source_preprocess,
                  "Preset for the Source: torch, tf (inception), caffe, raw, uint8, auto, or a JSON preset file. "
                  "auto = uint8 for a uint8 input, torch otherwise")
      ->capture_default_str();
  cmd->add_option("--target-preprocess", a.target_preprocess, "Preset for the Target (same choices)")
      ->capture_default_str();
  cmd->add_option("--source-preprocess-override", a.source_override,
                  "JSON object of preset fields to change, e.g. '{\"crop\":\"stretch\",\"width\":299}'");
  cmd->add_option("--target-preprocess-override", a.target_override, "Same, for the Target");
  cmd->add_option("--top-k", a.top_k, "Length of the label lists compared (at most the class count)")
      ->capture_default_str()->check(CLI::Range(1, 1000))->each([&a](const std::string&) { a.top_k_given = true; });
  cmd->add_option("--label-offset", a.label_offset,
                  "Target label - offset = Source label (1 for a 1001-class Target with a background class)");
  cmd->add_option("--threads", a.threads, "ONNX Runtime threads per model (0 = one per core)")
      ->capture_default_str()->check(CLI::Range(0, 256));
  cmd->add_option("--batch-size", a.batch_size, "Images per inference call")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--json", a.json_path, "Also write the results as JSON here")->check(non_empty_path());
  cmd->add_flag("--strict", a.strict, "Fail on the first image that cannot be decoded instead of skipping it");
  cmd->add_flag("--quiet,-q", a.quiet, "No progress output");
}

namespace {

// --input NAME=FILE.npy as (NAME, FILE).
Result<std::pair<std::string, std::string>> split_input_spec(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    return make_error("--input {}: expected NAME=FILE.npy", spec);
  return std::pair{spec.substr(0, eq), spec.substr(eq + 1)};
}

// The task and sample options into CompareOptions.
Status load_task_and_samples(const PairArgs& a, compare::CompareOptions& o) {
  if (a.samples_dir().empty()) return make_error("give the samples with --data DIR (or --images DIR)");
  if (!a.task.empty()) {
    FETAFIX_ASSIGN_OR_RETURN(o.task, compare::ComparatorRegistry::instance().parse(a.task));
  }
  o.samples.images_only = !a.images.empty();
  o.samples.sample_rate = a.sample_rate;
  o.samples.limits = data::array_limits(resource_limits());
  for (const auto& spec : a.inputs) {
    FETAFIX_ASSIGN_OR_RETURN(auto input, split_input_spec(spec));
    o.samples.constants.push_back(std::move(input));
  }
  return {};
}

}  // namespace

RunFiles pair_run_files(const PairArgs& a) {
  RunFiles files;
  files.input("the Source model", a.source_path);
  files.input("the Target model", a.target_path);
  std::error_code ec;
  for (const auto& preset : {a.source_preprocess, a.target_preprocess})
    if (fs::is_regular_file(preset, ec)) files.input("the preset file", preset);
  for (const auto& spec : a.inputs)
    if (auto input = split_input_spec(spec); input.ok()) files.input("--input " + input->first, input->second);
  files.sample_folder("--images", a.images, true);
  files.sample_folder("--data", a.data, false);
  files.output("--json", a.json_path);
  return files;
}

Result<std::unique_ptr<LoadedPair>> load_pair(const PairArgs& a) {
  auto p = std::make_unique<LoadedPair>();
  FETAFIX_ASSIGN_OR_RETURN(p->source, model::load_model(a.source_path));
  FETAFIX_ASSIGN_OR_RETURN(p->target, model::load_model(a.target_path));
  for (const auto* m : {&p->source, &p->target})
    FETAFIX_TRY_STATUS(model::check_input_sizes(m->proto, m->path.string(), resource_limits().max_tensor_bytes));
  FETAFIX_ASSIGN_OR_RETURN(auto sp, make_preset(a.source_preprocess, a.source_override, p->source.proto,
                                                "--source-preprocess"));
  FETAFIX_ASSIGN_OR_RETURN(auto tp, make_preset(a.target_preprocess, a.target_override, p->target.proto,
                                                "--target-preprocess"));
  p->source_side = {&p->source.proto, a.source_path, sp};
  p->target_side = {&p->target.proto, a.target_path, tp};
  p->compare.top_k = a.top_k;
  p->compare.top_k_given = a.top_k_given;
  p->compare.label_offset = a.label_offset;
  p->compare.threads = a.threads;
  p->compare.comm = &ranks();
  if (ranks().size() > 1) {  // docs/scaling.md: threads per rank
    if (p->compare.threads == 0) p->compare.threads = threads_per_rank(ranks());
    p->thread_limit.emplace(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(p->compare.threads));
    if (!a.quiet)
      std::fprintf(stderr, "fetafix: mpi: %d ranks x %d thread(s) each\n", ranks().size(), p->compare.threads);
  }
  p->compare.batch_size = a.batch_size;
  p->compare.strict = a.strict;
  p->compare.progress = a.quiet ? ProgressMode::kQuiet : ProgressMode::kAuto;
  FETAFIX_TRY_STATUS(load_task_and_samples(a, p->compare));
  return p;
}

}  // namespace fetafix::cli
