#include "report/model_explorer.h"

#include <map>
#include <system_error>

#include "common/fs.h"

namespace fetafix::report {
namespace fs = std::filesystem;
using nlohmann::json;
using localize::Equivalence;
using localize::Finding;

json model_explorer_mapping(const match::MatchResult& matching) {
  json entries = json::array();
  for (const auto& p : matching.pairs) {
    json left = json::array({p.source_node}), right = json::array({p.target_node});
    if (!p.folded_bn_node.empty()) {
      if (p.bn_folded_in_target) left.push_back(p.folded_bn_node);   // Source's BN lives in the Target's layer
      if (p.bn_folded_in_source) right.push_back(p.folded_bn_node);
    }
    entries.push_back({{"leftNodeIds", left}, {"rightNodeIds", right}});
  }
  return {{"mappingEntries", entries}, {"showDiffHighlights", true}};
}

namespace {

std::string graph_id(const onnx::ModelProto& m) {
  return m.graph().name().empty() ? std::string("main_graph") : m.graph().name();
}

json node_data(const std::string& graph, json results, json colouring, const char* colour_key) {
  json g{{"results", std::move(results)}};
  g[colour_key] = std::move(colouring);
  return {{graph, std::move(g)}};
}

// White to red across the values (Model Explorer maps min -> stop 0, max -> stop 1).
json white_to_red() {
  return json::array({{{"stop", 0}, {"bgColor", "#ffffff"}}, {{"stop", 0.5}, {"bgColor", "#f6b4a8"}},
                      {{"stop", 1}, {"bgColor", "#d03535"}, {"textColor", "#ffffff"}}});
}

}  // namespace

std::vector<ModelExplorerNodeData> model_explorer_node_data(const onnx::ModelProto& source, const onnx::ModelProto& target,
                                                            const localize::LocalizeResult& localization,
                                                            const std::vector<Finding>& findings) {
  json s_problematic = json::object(), t_problematic = json::object();
  json s_diff = json::object(), t_diff = json::object();
  for (const auto& l : localization.activation.ranked) {
    if (l.rank < 0) continue;
    const double pct = 100.0 * l.problematic_fraction;
    s_problematic[l.source_node] = {{"value", pct}};
    t_problematic[l.target_node] = {{"value", pct}};
    s_diff[l.source_node] = {{"value", l.mean_abs_diff_dissimilar}};
    t_diff[l.target_node] = {{"value", l.mean_abs_diff_dissimilar}};
  }
  // Faults per node; a node with only harmless (equivalent) differences gets 0 and green.
  std::map<std::string, int> s_faults, t_faults;
  for (const auto& f : findings) {
    const int fault = f.is_fault() ? 1 : 0;
    if (!f.source_node.empty()) s_faults[f.source_node] += fault;
    if (!f.target_node.empty()) t_faults[f.target_node] += fault;
  }
  auto fault_results = [](const std::map<std::string, int>& counts) {
    json r = json::object();
    for (const auto& [node, n] : counts)
      r[node] = n > 0 ? json{{"value", n}, {"bgColor", "#d03535"}, {"textColor", "#ffffff"}}
                      : json{{"value", 0}, {"bgColor", "#bfe6cc"}};
    return r;
  };
  const json thresholds = json::array({{{"value", 0}, {"bgColor", "#bfe6cc"}}});
  const std::string sg = graph_id(source), tg = graph_id(target);
  return {
      {"source.problematic.json", node_data(sg, std::move(s_problematic), white_to_red(), "gradient")},
      {"target.problematic.json", node_data(tg, std::move(t_problematic), white_to_red(), "gradient")},
      {"source.mean_abs_diff.json", node_data(sg, std::move(s_diff), white_to_red(), "gradient")},
      {"target.mean_abs_diff.json", node_data(tg, std::move(t_diff), white_to_red(), "gradient")},
      {"source.findings.json", node_data(sg, fault_results(s_faults), thresholds, "thresholds")},
      {"target.findings.json", node_data(tg, fault_results(t_faults), thresholds, "thresholds")},
  };
}

Result<std::vector<fs::path>> write_model_explorer_files(const fs::path& dir, const onnx::ModelProto& source,
                                                         const onnx::ModelProto& target,
                                                         const localize::LocalizeResult& localization,
                                                         const std::vector<Finding>& findings) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) return make_error("{}: cannot create the Model Explorer folder", dir.string());
  std::vector<fs::path> written;
  auto write = [&](const std::string& name, const json& j) -> Status {
    const fs::path p = dir / name;
    FETAFIX_TRY_STATUS(write_file_atomic(p, j.dump(2) + "\n"));
    written.push_back(p);
    return {};
  };
  FETAFIX_TRY_STATUS(write("mapping.json", model_explorer_mapping(localization.matching)));
  for (const auto& d : model_explorer_node_data(source, target, localization, findings))
    FETAFIX_TRY_STATUS(write(d.file, d.json));
  return written;
}

}  // namespace fetafix::report
