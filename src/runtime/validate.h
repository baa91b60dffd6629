// The check every model fetafix writes gets before it is renamed into place (apply, repair,
// inject): ONNX Runtime must load it, and ONNX's checker must accept it where Debian's checker
// knows the model's opset and IR version (<= 17 / 8; loading never depends on the checker).
#pragma once

#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/result.h"

namespace fetafix::runtime {

// What ONNX's checker says about `model`: "" when it accepts it, the first line of its complaint
// otherwise. *checked is false (and "" returned) when the model is newer than the checker knows.
std::string onnx_checker_error(const onnx::ModelProto& model, bool* checked);

// Errors (naming `label`): ONNX Runtime cannot load `written`; ONNX Runtime cannot run `written`
// on zero inputs (unknown dims: 1 for the batch, 64 otherwise) although it runs `original` (the
// model it was made from; nullptr: no original) on them — loading alone does not create every
// kernel's checks, e.g. a Conv weight of the wrong rank; ONNX's checker rejects `written` although
// it accepts `original`. When the checker already rejected `original`, the output is not blamed
// for it: a warning is returned.
//
// kWarnOnly turns every checker complaint into a warning: for models that imitate converters
// (inject's planted faults, e.g. an extra graph output without a declared type, which ONNX Runtime
// accepts and the checker does not) and for repairs, whose every kept edit already ran in ONNX
// Runtime. apply uses kRefuseRegressions: a patch is untrusted input.
enum class CheckerPolicy { kRefuseRegressions, kWarnOnly };
Result<std::vector<std::string>> validate_written_model(const onnx::ModelProto& written,
                                                        const onnx::ModelProto* original, const std::string& label,
                                                        CheckerPolicy policy = CheckerPolicy::kRefuseRegressions);

}  // namespace fetafix::runtime
