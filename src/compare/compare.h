// `fetafix compare`: run Source and Target over a folder of samples (images, .npz, .npy, .wav:
// data/samples.h) and measure, sample by sample, whether their outputs agree for the task
// (compare/comparator.h: class labels, detections, masks, CTC text, raw tensors). Decoding and
// preprocessing run on worker threads, overlapped with inference, so the models are the
// bottleneck, not the decoders.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/communicator.h"
#include "common/progress.h"
#include "common/result.h"
#include "compare/evidence.h"
#include "compare/labels.h"
#include "compare/task.h"
#include "data/preprocess.h"
#include "data/samples.h"
#include "runtime/session.h"

namespace fetafix::compare {

struct ModelSide {
  const onnx::ModelProto* model = nullptr;
  std::string label;     // how errors and reports name it (its path)
  data::Preset preset;   // for the image input; may leave size/layout to the model
};

struct CompareOptions {
  int top_k = 5;
  // top_k asked for (--top-k given; a top_k other than the default counts too): more than the
  // class count is an error. The default is lowered to the class count silently.
  bool top_k_given = false;
  std::optional<int64_t> label_offset;  // Target label - offset = Source label
  int threads = 0;                      // ONNX Runtime intra-op threads per model; 0 = one per core
  int batch_size = 8;
  bool strict = false;                  // a corrupt sample is an error instead of skipped
  ProgressMode progress = ProgressMode::kAuto;
  // What agreement means (--task). No kind: the outputs must look like class scores (one
  // [batch, classes] output) and the task is label with top_k and label_offset above; those
  // two also fill a label task's top_k= and offset= when the task string leaves them out.
  TaskSpec task;
  data::SampleOptions samples;          // constant inputs, sample rate, images only, limits
  // The ranks sharing the samples (mpirun; docs/scaling.md); null: this process works alone.
  // Every rank gets the whole result.
  const Communicator* comm = nullptr;
  // Called after each batch with the samples done and the total (this rank's); returning false
  // stops the run with an error (the Python module's progress callback and Ctrl-C).
  std::function<bool(size_t done, size_t total)> on_progress;
};

// The communicator `options` name: options.comm, or the single process.
const Communicator& ranks_of(const CompareOptions& options);

// One sample (the name is historical; SampleRecord says what it is).
struct ImageRecord {
  std::string file;    // relative to the sample folder
  std::string error;   // why the sample was skipped; empty when compared
  bool agree = false;  // the task's verdict (label: top-1 equal after the offset)
  double distance = 0; // the task's distance (label: L1 between the probability vectors)
  std::string detail;  // the task's one-line account
  Evidence evidence;   // what the comparator saw (compare/evidence.h)
  // Label tasks only (copied from the evidence; empty for other tasks):
  TopK source;
  TopK target;         // ids in the Target's own numbering
  std::vector<int64_t> target_in_source;  // target.ids mapped through the label offset
  double top_k_overlap = 0;
};
using SampleRecord = ImageRecord;

// Counts are of samples (images_* are historical names).
struct Summary {
  size_t images_found = 0;
  size_t images_compared = 0;
  size_t images_skipped = 0;
  size_t disagreeing = 0;
  double discrepancy = 0;        // disagreeing / compared: the paper's label discrepancy
  double mean_distance = 0;      // mean of the task's per-sample distances
  std::string task;              // the task's kind
  nlohmann::json task_figures = nlohmann::json::object();  // the comparator's summary figures
  // Label tasks only:
  double top_k_agreement = 0;    // mean |top-k(S) ∩ top-k(T)| / k
  double source_top1_in_target_top_k = 0;  // share of images whose Source top-1 is in the Target's top-k
  int top_k = 0;
  int64_t label_offset = 0;
  int64_t source_classes = 0;
  int64_t target_classes = 0;
  double seconds = 0;
  double images_per_second = 0;
};

struct CompareResult {
  std::filesystem::path image_dir;            // the sample folder
  std::string source_label, target_label;
  data::Preset source_preset, target_preset;  // bound to the image inputs (as given when no input takes images)
  bool image_input = false;                   // the samples are images fed through the presets
  TaskSpec task;                              // the task compared, with its options as used
  std::vector<runtime::ValueInfo> source_inputs, target_inputs, source_outputs, target_outputs;
  std::string input_pairing;                  // "'x' -> 'input_1' (by order)"
  std::vector<ImageRecord> records;           // one per sample found, in dataset order
  Summary summary;
  std::vector<std::string> warnings;
};

// Runs both models over every sample of `data_dir` (options.samples says which files count
// and how non-image inputs are fed) and compares them sample by sample with the task's comparator.
// With several ranks (options.comm) each runs its share and every rank returns the whole result.
Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target,
                                     const std::filesystem::path& data_dir, const CompareOptions& options);
// The same on samples already opened (a folder, or arrays held in memory: data/samples.h);
// options.samples is not read again.
Result<CompareResult> compare_models(const ModelSide& source, const ModelSide& target, data::SampleSet samples,
                                     const CompareOptions& options);

// The preset for a model's image input from a user's spec: a built-in name or a JSON preset file
// (errors start with `what`, e.g. "--source-preprocess"), or "auto": uint8 (raw bytes) for a
// model whose first input is uint8 — a quantized model — torch otherwise; then `overrides` (an
// object with the keys of a preset file) applied.
Result<data::Preset> resolve_side_preset(const std::string& spec, const nlohmann::json& overrides,
                                         const onnx::ModelProto& model, const std::string& what);

// The task compare_models runs for these options: options.task with the label flags filled in.
TaskSpec effective_task(const CompareOptions& options);

// The JSON document of `fetafix compare --json` (schema: docs/compare-json.md).
nlohmann::json to_json(const CompareResult& result);

// The human-readable report printed on stdout.
std::string format_report(const CompareResult& result, size_t max_listed = 20);

}  // namespace fetafix::compare
