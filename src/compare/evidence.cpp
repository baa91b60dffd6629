#include "compare/evidence.h"

#include <nlohmann/json.hpp>

namespace fetafix::compare {

namespace {

using nlohmann::json;

json top_k_json(const TopK& t) {
  json a = json::array();
  for (size_t i = 0; i < t.ids.size(); ++i) a.push_back({{"label", t.ids[i]}, {"score", t.scores[i]}});
  return a;
}

json detections_json(const std::vector<Detection>& ds) {
  json a = json::array();
  for (const auto& d : ds) a.push_back({{"label", d.label}, {"score", d.score}, {"box", d.box}});
  return a;
}

struct ToJson {
  json operator()(const std::monostate&) const { return json::object(); }
  json operator()(const LabelEvidence& e) const {
    return {{"source_top_k", top_k_json(e.source)},
            {"target_top_k", top_k_json(e.target)},
            {"target_labels_in_source_numbering", e.target_in_source},
            {"top_k_overlap", e.top_k_overlap}};
  }
  json operator()(const BoxesEvidence& e) const {
    json matches = json::array();
    for (const auto& m : e.matches) matches.push_back({{"source", m.source}, {"target", m.target}, {"iou", m.iou}});
    return {{"box_format", "xyxy"},
            {"normalized", e.normalized},
            {"source_detections", detections_json(e.source)},
            {"target_detections", detections_json(e.target)},
            {"matches", std::move(matches)}};
  }
  json operator()(const MaskEvidence& e) const {
    json classes = json::array();
    for (const auto& c : e.classes)
      classes.push_back({{"label", c.label}, {"source_pixels", c.source_pixels}, {"target_pixels", c.target_pixels},
                         {"iou", c.iou}});
    return {{"shape", e.shape}, {"pixels", e.pixels}, {"pixel_agreement", e.pixel_agreement},
            {"mean_iou", e.mean_iou}, {"classes", std::move(classes)}};
  }
  json operator()(const TextEvidence& e) const {
    return {{"source_text", e.source_text}, {"target_text", e.target_text}, {"source_ids", e.source_ids},
            {"target_ids", e.target_ids}, {"edits", e.edits}};
  }
  json operator()(const TensorEvidence& e) const {
    json outs = json::array();
    for (const auto& o : e.outputs)
      outs.push_back({{"name", o.name},
                      {"source_shape", o.source_shape},
                      {"target_shape", o.target_shape},
                      {"agree", o.agree},
                      {"max_abs_error", o.max_abs_error},
                      {"relative_l2", o.relative_l2},
                      {"cosine", o.cosine},
                      {"outside_tolerance", o.outside_tolerance},
                      {"nonfinite_mismatches", o.nonfinite_mismatches}});
    return {{"outputs", std::move(outs)}};
  }
};

}  // namespace

nlohmann::json evidence_to_json(const Evidence& evidence) { return std::visit(ToJson{}, evidence); }

}  // namespace fetafix::compare
