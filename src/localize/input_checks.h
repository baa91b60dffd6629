// Input-based fault checks (paper §4.1.1-4.1.3): preprocessing (PP, checks/pp.cpp), input
// dimensions (ID, checks/id.cpp) and tensor shape and structure (TSS, checks/tss.cpp). Each
// reports localize::Finding values with typed evidence (finding.h) a repair step acts on; its
// JSON is documented in docs/input-checks.md.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "compare/compare.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "localize/finding.h"
#include "match/match.h"

namespace fetafix::localize {

// ---- PP: which preprocessing makes the Target agree with the Source ----------------------

struct PreprocessingCheckOptions {
  // Presets tried on the Target besides its own and the Source's: built-in names or JSON
  // preset files. Those that cannot bind to the Target's input (dtype, size) are skipped
  // with the reason recorded.
  std::vector<std::string> presets{"torch", "tf", "caffe", "raw", "uint8"};
  compare::CompareOptions compare;  // top_k, label_offset, threads, batch_size, strict
  // These samples (ascending indices into the sample set) instead of all of them, when not empty.
  std::vector<size_t> subset;
  double min_relative_gain = 0.25;  // see preprocessing_findings (kDefaultPresetMinGain)
};

struct PreprocessingReport {
  size_t images_compared = 0;
  size_t images_skipped = 0;             // could not be decoded
  std::vector<PresetTrial> trials;       // trials[0] is the Target's current preset
  std::optional<size_t> best;            // lowest disagreement (ties: higher top-k agreement, then order)
};

// Runs the Source once per image and the Target once per image and preset (each image is
// decoded once per batch and preprocessed for every preset).
// The samples must all be images (presets apply to an image input).
Result<PreprocessingReport> measure_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                  const data::SampleSet& samples,
                                                  const PreprocessingCheckOptions& options = {});
// The same on the images of a folder.
Result<PreprocessingReport> measure_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                  const std::filesystem::path& image_dir,
                                                  const PreprocessingCheckOptions& options = {});
// A PP finding when some preset removes at least `min_relative_gain` of the Target's current
// disagreement (0 = any strict drop). A wrong preset moves many labels and the right one
// brings most back; a small drop is as likely chance (a preset that happens to match a few
// more labels of a model broken elsewhere), and keeping it would feed every later step the
// wrong input.
inline constexpr double kDefaultPresetMinGain = 0.25;
std::vector<Finding> preprocessing_findings(const PreprocessingReport& report,
                                            double min_relative_gain = kDefaultPresetMinGain);
Result<std::vector<Finding>> check_preprocessing(const compare::ModelSide& source, const compare::ModelSide& target,
                                                 const std::filesystem::path& image_dir,
                                                 const PreprocessingCheckOptions& options = {});

// ---- ID: declared input shapes -----------------------------------------------------------

// Compares the image input (the first graph input that is not an initializer) of both
// models: rank, every dim, fixed versus dynamic. Dims are compared by logical axis (N, C, H,
// W), so an NHWC Target of an NCHW Source with the same sizes is not a finding.
Result<std::vector<Finding>> check_input_dimensions(const onnx::ModelProto& source, const onnx::ModelProto& target);

// ---- TSS: structure of the data the first layers see ---------------------------------------

// The layout of each model's image input; unset = read from the shape (a dim of 3 at
// position 1 -> NCHW, at 3 -> NHWC, both -> NCHW). Pass the bound presets' layouts when known.
struct InputLayouts {
  std::optional<data::Layout> source;
  std::optional<data::Layout> target;
};

// Tracks symbolically which logical axis (N, C, H, W) sits at each position from the input
// through layout ops (Transpose, Gather, Unsqueeze, Squeeze, Concat, Split, Slice and
// element-wise ops) up to the first layout-sensitive layer (Conv, pooling, BatchNorm, ...),
// in both models. A TSS finding when the Target's first layer sees another structure than
// the Source's (e.g. a Transpose [0,3,2,1] where [0,3,1,2] was meant: the same shape when
// H == W), or when an axis-taking node before it works on another logical axis than its
// Source counterpart. No model is run.
Result<std::vector<Finding>> check_input_structure(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                   const InputLayouts& layouts = {});

struct FlattenCheckOptions {
  int threads = 0;
  // Relative max-abs error under which two tensors count as the same values.
  double tolerance = 1e-4;
};

// Runs each model once on `sample` (preprocessed with its side's preset) and pairs the
// Target's Flatten/Reshape nodes with the Source's (through the nearest matched core layer
// upstream, else by order among those with equal element counts). A TSS finding when the
// tensors entering a pair have different shapes, equal element counts and a different
// element order (some permutation maps one onto the other), and the flattened values differ.
Result<std::vector<Finding>> check_flatten_structure(const compare::ModelSide& source,
                                                     const compare::ModelSide& target, const data::Image& sample,
                                                     const std::vector<match::NodeMatch>& matches,
                                                     const FlattenCheckOptions& options = {});

}  // namespace fetafix::localize
