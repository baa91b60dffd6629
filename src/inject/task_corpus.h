// The corpus' task cases (issue 11): models whose outputs are not class scores — PP-OCRv4's text
// detector (mask) and recognizer (text), the built conv detector (boxes), the audio front end
// fed .npz samples (tensor) — with the samples each is compared on. Internal to corpus.cpp;
// docs/corpus.md lists the cases.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/result.h"
#include "inject/corpus.h"

namespace fetafix::inject {

// The task cases, in the order they are written (after the classification cases).
const std::vector<CorpusCase>& task_corpus_cases();

struct TaskBaseModel {
  onnx::ModelProto model;
  nlohmann::json preset_file;  // written as the case's preset.json; null: not fed images ('raw')
  std::string description;
};

// The base model `name` of a task case; nullopt when `name` is not a task base. When an asset it
// needs is missing, an empty model with `skipped` set.
Result<std::optional<TaskBaseModel>> make_task_base(const std::string& name, const CorpusOptions& options,
                                                    std::string& skipped);

// Writes the sample set `kind` (a CorpusCase::samples value) into dir/detection and
// dir/validation, options.task_samples files each; `skipped` set (and nothing to use) when its
// renderer or photos are missing.
Status write_task_samples(const std::string& kind, const CorpusOptions& options, const std::filesystem::path& dir,
                          std::string& skipped);

}  // namespace fetafix::inject
