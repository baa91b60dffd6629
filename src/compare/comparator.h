// The comparator seam: per sample, do the Source's and the Target's outputs agree, how far
// apart are they, and a short line saying why. Every task (class labels, detections, masks,
// CTC text, raw tensors) is one implementation; compare_models and the evaluator see only this
// interface, so localization and repair decide "fewer samples disagree, then closer" the same
// way on any model. Kinds are kept in a registry (like ncnn's layer registry): a name, the
// options it takes (checked before any model runs), and a factory.
//
// Distances: 0 when the outputs are identical as far as the task can tell; larger is worse;
// only compared between candidates of the same task. Output pairs that cannot be compared at
// all (shapes differ, NaN where the Source has a number) get the task's maximum.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/tensor.h"
#include "compare/evidence.h"
#include "compare/task.h"
#include "runtime/session.h"

namespace fetafix::compare {

struct Verdict {
  bool agree = false;
  double distance = 0;
  std::string detail;  // one short line: "281 (0.912) -> 285 (0.433)", "'abc' -> 'abd' (1 edit)"
  Evidence evidence;
};

// A model's outputs as declared (dims -1 when dynamic), and how errors name the model.
struct ModelOutputs {
  std::string label;
  std::vector<runtime::ValueInfo> outputs;
};

struct TaskSummary {
  nlohmann::json figures = nlohmann::json::object();  // task-specific means (docs/compare-json.md)
  std::vector<std::string> warnings;
};

class Comparator {
 public:
  explicit Comparator(TaskSpec task) : task_(std::move(task)) {}
  virtual ~Comparator() = default;
  Comparator(const Comparator&) = delete;
  Comparator& operator=(const Comparator&) = delete;

  const TaskSpec& task() const { return task_; }

  // Resolves the outputs the task reads on both models (a Target output is the Source's
  // partner by name, else by position) and checks their declared types and ranks. Once,
  // before any sample.
  Status bind(const ModelOutputs& source, const ModelOutputs& target);
  // Indices (into the models' outputs) the comparator reads: callers may drop the others.
  const std::vector<size_t>& source_outputs() const { return source_used_; }
  const std::vector<size_t>& target_outputs() const { return target_used_; }
  std::vector<std::string> source_output_names() const;

  // One sample: every output of each model in model order (a batch of 1); outputs not read
  // may be empty tensors. An error is a task that does not fit the outputs (e.g. a boxes
  // output whose size is not a multiple of 4), never a mere disagreement.
  virtual Result<Verdict> compare(std::span<const Tensor> source, std::span<const Tensor> target) const = 0;

  // Figures over all compared samples (verdicts in sample order).
  virtual TaskSummary summarize(std::span<const Verdict> verdicts) const;

 protected:
  virtual Status on_bind(const ModelOutputs& source, const ModelOutputs& target) = 0;

  // The (source, target) output indices for the Source output named by option `key`; when the
  // option is absent: the output called `fallback_name` if there is one, else the only output.
  // Records both as read.
  Result<std::pair<size_t, size_t>> resolve_output(const std::string& key, const std::string& fallback_name = {});
  // The same for a Source output given by name.
  Result<std::pair<size_t, size_t>> resolve_named(const std::string& name);
  // Every output, paired.
  Result<std::vector<std::pair<size_t, size_t>>> resolve_all();

  const ModelOutputs& source_model() const { return source_; }
  const ModelOutputs& target_model() const { return target_; }

 private:
  TaskSpec task_;
  ModelOutputs source_, target_;
  std::vector<size_t> source_used_, target_used_;
};

using ComparatorFactory = std::function<Result<std::unique_ptr<Comparator>>(const TaskSpec&)>;

struct ComparatorKind {
  std::string name;
  std::string summary;  // one line for --help and the docs
  std::vector<OptionDoc> options;
  ComparatorFactory make;
  // Could outputs of these shapes be this task? Only for the message that asks for --task.
  std::function<bool(const std::vector<runtime::ValueInfo>&)> fits;
};

class ComparatorRegistry {
 public:
  // The registry with the built-in kinds: label, boxes, mask, text, tensor.
  static ComparatorRegistry& instance();

  Status add(ComparatorKind kind);  // an error when the name is taken
  const ComparatorKind* find(std::string_view name) const;
  std::vector<std::string> names() const;

  // Parses and checks "KIND[:key=value,...]" against the kind's options.
  Result<TaskSpec> parse(const std::string& text) const;

 private:
  std::vector<ComparatorKind> kinds_;
};

// The comparator for `task`, bound to both models' outputs. With no kind (no --task), the
// outputs must look like class scores — one output of rank 2, [batch, classes], on both models
// — and the task is `label` with the given options; anything else is an error naming the
// outputs' shapes and the kinds that fit: nothing is read as class scores by guessing.
Result<std::unique_ptr<Comparator>> make_comparator(const TaskSpec& task, const ModelOutputs& source,
                                                    const ModelOutputs& target);

// Shared by the comparators: the per-sample numbers of an output as floats — a view of float32
// data (no copy: a text detector's map is 400k values per sample), a converted copy otherwise.
class FloatValues {
 public:
  explicit FloatValues(const Tensor& t);
  FloatValues(const FloatValues&) = delete;
  FloatValues& operator=(const FloatValues&) = delete;
  std::span<const float> span() const { return view_; }
  operator std::span<const float>() const { return view_; }  // NOLINT: implicit on purpose
  size_t size() const { return view_.size(); }
  const float* data() const { return view_.data(); }
  float operator[](size_t i) const { return view_[i]; }
  auto begin() const { return view_.begin(); }
  auto end() const { return view_.end(); }

 private:
  std::vector<float> converted_;
  std::span<const float> view_;
};
std::vector<float> values_of(const Tensor& t);  // always a copy
// "'boxes' [N,100,4]": an output for messages.
std::string describe_output(const runtime::ValueInfo& output);

}  // namespace fetafix::compare
