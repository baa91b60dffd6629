#include "cli/staged_outputs.h"

#include "common/json_text.h"
#include "report/model_explorer.h"

namespace fetafix::cli {

Status add_model_explorer_files(PendingOutputs& outputs, const std::filesystem::path& dir,
                                const onnx::ModelProto& source, const onnx::ModelProto& target,
                                const localize::LocalizeResult& localization,
                                const std::vector<localize::Finding>& findings) {
  FETAFIX_TRY_STATUS(outputs.add_folder(dir));
  FETAFIX_TRY_STATUS(outputs.add(dir / "mapping.json", json_text(report::model_explorer_mapping(localization.matching))));
  for (const auto& d : report::model_explorer_node_data(source, target, localization, findings))
    FETAFIX_TRY_STATUS(outputs.add(dir / d.file, json_text(d.json)));
  return {};
}

}  // namespace fetafix::cli
