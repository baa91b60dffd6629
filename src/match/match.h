// Source <-> Target alignment of the core computational layers (Conv, ConvTranspose, Gemm,
// MatMul with a weight, ...), robust to what converters do: renamed nodes; inserted or
// removed Transpose/Pad/Reshape/Identity/Cast/Q-DQ nodes; BatchNormalization folded into
// the Conv or split into Mul+Add; weights stored as Constant nodes; weights in another
// layout (OIHW vs HWIO/OHWI); NHWC graphs; another opset.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::match {

// The op types that count as core layers unless the user names others (--core-ops): matched and
// ranked as layers, the boundaries of the layer checks' neighbourhoods and regions, and the
// layers the report draws. MatMul counts only when one input is a weight.
inline const std::set<std::string>& default_core_ops() {
  static const std::set<std::string> ops{"Conv", "ConvTranspose", "Gemm", "MatMul"};
  return ops;
}

struct MatchOptions {
  std::set<std::string> core_ops = default_core_ops();
  // Pairs whose confidence is below this are left unmatched.
  double min_confidence = 0.5;
  // Structure fallback: when weight content pairs fewer than this share of the smaller model's
  // core nodes (different weights: a re-initialized or retrained Target, zeroed weights), the
  // nodes left unpaired are aligned by structure (op family, weight shape, attributes, position,
  // topological order). 0 turns it off.
  double structure_fallback_below = 0.5;
  // A structure pair needs at least this structure score (0..1, docs/matching.md).
  double min_structure_score = 0.7;
};

// Which evidence made a pair.
enum class MatchMethod { kContent, kStructure };
const char* match_method_name(MatchMethod method);  // "content", "structure"

struct NodeMatch {
  std::string source_node;  // node names (synthesized "<op>_<index>" names for unnamed nodes)
  std::string target_node;
  double confidence = 0;    // 0..1
  // How the Target's main weight relates to the Source's: target = transpose(source, perm)
  // (empty = same layout). Set when the weight layouts differ (e.g. OIHW vs HWIO).
  std::vector<int64_t> weight_permutation;
  // The Target node's weight has a BatchNormalization folded in that the Source applies
  // separately (or the reverse); `folded_bn_node` names the Source (resp. Target) BN.
  bool bn_folded_in_target = false;
  bool bn_folded_in_source = false;
  std::string folded_bn_node;
  std::string evidence;     // one line: what decided the pair
  MatchMethod method = MatchMethod::kContent;
};

struct MatchResult {
  std::vector<NodeMatch> pairs;                 // in Source topological order
  std::vector<std::string> unmatched_source;    // core nodes without a partner
  std::vector<std::string> unmatched_target;
  size_t source_core = 0, target_core = 0;      // core-node counts
  size_t content_pairs = 0, structure_pairs = 0;  // pairs by method
  bool structure_fallback = false;              // content paired too few; structure filled the gaps
};

Result<MatchResult> match_models(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                 const MatchOptions& options = {});

}  // namespace fetafix::match
