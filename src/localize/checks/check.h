// What localize's pipeline (localize.cpp) hands every check: the models, the detection run,
// the options, and what the earlier stages found. Each kind of evidence (finding.h) names its
// check's stage and runner, `static Result<std::vector<Finding>> run(const CheckContext&)`,
// defined beside the check in checks/<type>.cpp; the pipeline runs them stage by stage in the
// order of the Evidence variant. Internal to src/localize.
#pragma once

#include <string>
#include <vector>

#include "localize/localize.h"

namespace fetafix::localize {

struct CheckContext {
  const compare::ModelSide& source;   // presets bound to the models' inputs, as detection ran them
  const compare::ModelSide& target;
  const DetectionView& detection;
  const LocalizeOptions& options;
  const LocalizeStages& stages;
  // Filled before the stage that needs them.
  const match::MatchResult* matching = nullptr;      // kStructure and kLayer
  const data::Image* sample_image = nullptr;         // kStructure: the first usable photo
  const LayerCheckOptions* layer_options = nullptr;  // kLayer: with the observed value shapes
  // What checks report besides findings.
  PreprocessingReport* preprocessing = nullptr;
  std::vector<std::string>* notes = nullptr;
};

// Usable detection images that agree (similar) and that do not (dissimilar), ascending.
std::pair<std::vector<size_t>, std::vector<size_t>> split_by_agreement(const DetectionView& view);
// Up to `keep` of `indices`, chosen with a seeded shuffle and returned ascending.
std::vector<size_t> seeded_subset(std::vector<size_t> indices, size_t keep, uint64_t seed);

}  // namespace fetafix::localize
