// What a comparator saw on one sample, typed per task, for the console, the JSON (schema:
// docs/compare-json.md, "evidence") and the report: both top-k lists, both detection sets and
// their matching, the mask statistics, both decoded strings, the per-output errors.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "compare/labels.h"

namespace fetafix::compare {

struct LabelEvidence {
  TopK source, target;                    // target.ids in the Target's own numbering
  std::vector<int64_t> target_in_source;  // target.ids through the label offset (-1: no Source class)
  double top_k_overlap = 0;
  int64_t source_classes = 0, target_classes = 0;
};

struct Detection {
  int64_t label = 0;
  float score = 0;
  std::array<float, 4> box{};  // x1, y1, x2, y2 (x1 <= x2, y1 <= y2), in the model's own units
};

struct BoxMatch {
  size_t source = 0, target = 0;  // indices into the detection lists
  double iou = 0;
};

struct BoxesEvidence {
  std::vector<Detection> source, target;  // after thresholding and NMS, best first
  std::vector<BoxMatch> matches;          // one-to-one, same label, IoU >= the task's iou
  bool normalized = true;                 // boxes in [0,1] image units (how to draw them)
};

struct MaskEvidence {
  std::vector<int64_t> shape;  // of the label maps compared (batch dim of 1 kept)
  int64_t pixels = 0;
  double pixel_agreement = 0;  // share of pixels with the same label
  double mean_iou = 0;         // over the labels present in either map
  struct ClassIoU {
    int64_t label = 0;
    int64_t source_pixels = 0, target_pixels = 0;
    double iou = 0;
  };
  std::vector<ClassIoU> classes;  // every label present, ascending
};

struct TextEvidence {
  std::vector<int64_t> source_ids, target_ids;  // decoded symbol ids (blank and repeats removed)
  std::string source_text, target_text;         // through the charset; ids as <id> without one
  size_t edits = 0;                             // Levenshtein distance between the id sequences
};

struct TensorEvidence {
  struct Output {
    std::string name;  // the Source's output name
    std::vector<int64_t> source_shape, target_shape;
    bool agree = false;
    double max_abs_error = 0;      // over finite pairs
    double relative_l2 = 0;        // ||T - S|| / ||S||
    double cosine = 0;             // cosine similarity of the flattened outputs
    int64_t outside_tolerance = 0; // elements with |T - S| > atol + rtol |S| (elementwise mode)
    int64_t nonfinite_mismatches = 0;  // NaN/Inf in one model where the other has a finite value or another NaN/Inf
  };
  std::vector<Output> outputs;
};

using Evidence = std::variant<std::monostate, LabelEvidence, BoxesEvidence, MaskEvidence, TextEvidence, TensorEvidence>;

// The evidence as JSON ({} for none). Strings go in as they are: callers dump with
// error_handler_t::replace so text from a charset can never make the JSON writer throw.
nlohmann::json evidence_to_json(const Evidence& evidence);

}  // namespace fetafix::compare
