#include "repair/written_model.h"

#include "model/model.h"
#include "runtime/validate.h"

namespace fetafix::repair {

Result<WrittenModel> written_model(const RepairResult& result, const onnx::ModelProto& original,
                                   const std::string& label, bool cleanup) {
  WrittenModel w;
  onnx::ModelProto m = result.repaired;
  if (cleanup) w.removed = model::cleanup_model(m);
  auto warnings = runtime::validate_written_model(m, &original, label, runtime::CheckerPolicy::kWarnOnly);
  if (!warnings.ok()) return Error{warnings.error().message, ErrorKind::kInternal};
  w.warnings = std::move(warnings).value();
  w.bytes = model::serialize_model(m);
  if (w.bytes.empty()) return make_error("{}: the repaired model is over protobuf's 2 GB limit", label);
  return w;
}

}  // namespace fetafix::repair
