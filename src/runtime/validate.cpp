#include "runtime/validate.h"

#include <onnx/checker.h>

#include "runtime/session.h"

namespace fetafix::runtime {
namespace {

// Debian's libonnx (1.12): its checker and schemas stop here.
constexpr int64_t kCheckerMaxOpset = 17;
constexpr int64_t kCheckerMaxIr = 8;

int64_t default_domain_opset(const onnx::ModelProto& m) {
  int64_t opset = 0;
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  return opset;
}

// Unknown dims of the zero inputs: a batch of one, 64 for the others (a spatial size every usual
// CNN accepts).
constexpr int64_t kUnknownBatch = 1, kUnknownDim = 64;

// Loading does not run kernels: a Conv weight of the wrong rank, say, loads and fails only when run.
Status runs_on_zeros(const onnx::ModelProto& model, const std::string& label) {
  SessionOptions options;
  options.threads = 1;
  options.optimize = false;
  FETAFIX_ASSIGN_OR_RETURN(auto session, Session::create(model, options, label));
  std::vector<Tensor> inputs;
  for (const auto& in : session->inputs()) {
    std::vector<int64_t> shape = in.shape;
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] < 0) shape[i] = i == 0 ? kUnknownBatch : kUnknownDim;
    inputs.emplace_back(in.dtype, std::move(shape));
  }
  auto ran = session->run(inputs);
  if (!ran.ok()) return ran.error();
  return {};
}

std::string first_line(std::string s) {
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s.empty() ? std::string("rejected") : s;
}

}  // namespace

std::string onnx_checker_error(const onnx::ModelProto& model, bool* checked) {
  *checked = default_domain_opset(model) <= kCheckerMaxOpset && model.ir_version() <= kCheckerMaxIr;
  if (!*checked) return "";
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return first_line(e.what());
  }
  return "";
}

Result<std::vector<std::string>> validate_written_model(const onnx::ModelProto& written,
                                                        const onnx::ModelProto* original, const std::string& label,
                                                        CheckerPolicy policy) {
  std::vector<std::string> warnings;
  bool checked = false;
  const std::string rejected = onnx_checker_error(written, &checked);
  if (!rejected.empty()) {
    bool original_checked = false;
    const bool original_rejected = original && !onnx_checker_error(*original, &original_checked).empty();
    if (!original_rejected && policy == CheckerPolicy::kRefuseRegressions)
      return make_error("{}: ONNX's checker rejects the model to be written: {}", label, rejected);
    warnings.push_back(fmt::format("{}: ONNX's checker rejects the model{}: {}", label,
                                   original_rejected ? " (as it already rejects the input)" : "", rejected));
  }
  FETAFIX_TRY_STATUS(check_loadable(written, label));
  // When the model it was made from runs on zeros, so must the written one.
  if (original && runs_on_zeros(*original, label).ok()) {
    if (auto st = runs_on_zeros(written, label); !st.ok())
      return make_error("{} (the model it was made from runs on the same zero inputs)", st.error().message);
  }
  return warnings;
}

}  // namespace fetafix::runtime
