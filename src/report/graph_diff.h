// The side-by-side view of Source and Target around one finding: a few nodes on each side
// (the finding's nodes and region, and a short chain before and after), aligned row by row
// so matched core layers sit side by side, nodes of the same op pair up between them, and
// a node with no counterpart gets a row of its own. Attributes that differ on a row and
// weights with a WB finding are flagged, so a reader sees the fault without a graph viewer.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "localize/finding.h"
#include "match/match.h"
#include "model/graph.h"

namespace fetafix::report {

// What the view shows of one node.
struct NodeCell {
  std::string name, op;
  std::vector<std::pair<std::string, std::string>> attributes;  // explicit attributes, file order
  struct Weight {
    int input_index = 0;
    std::string value;       // the stored tensor's name
    std::string type;        // "float32[8,3,3,3]"
    std::string difference;  // from a WB finding on this tensor, e.g. "576/576 differ, max |Δ| 0.21"; "" if none
  };
  std::vector<Weight> weights;
  bool core = false;           // a core layer (Conv, Gemm, ...)
  bool unmatched_core = false; // a core layer the matching left without a partner
  bool focus = false;          // one of the finding's own nodes
};

enum class RowKind {
  kMatched,     // a core pair from the matching
  kSameOp,      // same op type, aligned between matched layers
  kSourceOnly,  // no counterpart in the Target
  kTargetOnly,  // no counterpart in the Source
};

struct DiffRow {
  RowKind kind = RowKind::kSameOp;
  std::optional<NodeCell> source, target;
  std::set<std::string> differing_attributes;  // on rows with both sides
  std::string confidence;                      // kMatched: the matching's confidence
};

// One model prepared once for every finding: its graph view, core nodes and weights.
class GraphContext {
 public:
  static Result<std::shared_ptr<const GraphContext>> create(const onnx::ModelProto& model,
                                                            const std::set<std::string>& core_ops);
  const model::GraphView& view() const { return view_; }
  bool is_weight(const std::string& value) const { return weights_.count(value) > 0; }
  const std::string& weight_type(const std::string& value) const;
  bool is_core(size_t node) const;
  size_t topo_position(size_t node) const { return topo_position_[node]; }

 private:
  explicit GraphContext(model::GraphView view) : view_(std::move(view)) {}
  model::GraphView view_;
  std::map<std::string, std::string> weights_;  // value -> "dtype[shape]"
  std::set<std::string> core_ops_;
  std::vector<size_t> topo_position_;
};

// Weight differences from WB findings, by stored tensor name, per side.
struct WeightDifferences {
  std::map<std::string, std::string> source, target;
};
WeightDifferences weight_differences(const std::vector<localize::Finding>& findings);

struct SideBySideOptions {
  // Each side walks back and forward from the finding's nodes to the neighbouring core layer
  // (so both sides span the same stretch of the network), at most this many nodes each way.
  int max_walk = 8;
  size_t max_rows = 24; // a CG region can be long; the view keeps the rows nearest the finding
};

// Empty when the finding names no node on either side (PP, input-level ID).
std::vector<DiffRow> side_by_side(const GraphContext& source, const GraphContext& target,
                                  const match::MatchResult& matching, const localize::Finding& finding,
                                  const WeightDifferences& weights, const SideBySideOptions& options = {});

// "[1,1,1,1]", "1e-05", "'SAME_UPPER'", "tensor float32[3]".
std::string attribute_text(const onnx::AttributeProto& attribute);

}  // namespace fetafix::report
