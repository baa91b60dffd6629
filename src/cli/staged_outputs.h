// Outputs of several files, made in memory and added to a run's PendingOutputs (common/fs.h) so
// they are renamed into place together with the others, only once the whole run has succeeded.
#pragma once

#include <filesystem>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/fs.h"
#include "localize/localize.h"

namespace fetafix::cli {

// The Model Explorer files of report/model_explorer.h (mapping.json and the node data), into `dir`.
Status add_model_explorer_files(PendingOutputs& outputs, const std::filesystem::path& dir,
                                const onnx::ModelProto& source, const onnx::ModelProto& target,
                                const localize::LocalizeResult& localization,
                                const std::vector<localize::Finding>& findings);

}  // namespace fetafix::cli
