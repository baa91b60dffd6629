// Rewrites made by other tools, whose result is a new model rather than an edit list:
// ONNX Runtime's saved optimized model, and ONNX's opset version converter.
#include <atomic>
#include <exception>
#include <filesystem>

#include <unistd.h>

#include <fmt/format.h>
#include <onnx/version_converter/convert.h>

#include "inject/injection_context.h"
#include "model/model.h"
#include "model/opset.h"
#include "runtime/session.h"

namespace fetafix::inject::detail {
namespace {

namespace fs = std::filesystem;

// A fresh private folder, removed when this goes out of scope.
class TempFolder {
 public:
  static Result<TempFolder> create() {
    static std::atomic<int> counter{0};
    std::error_code ec;
    const fs::path base = fs::temp_directory_path(ec);
    if (ec) return make_error("no temporary folder: {}", ec.message());
    TempFolder t;
    t.path_ = base / fmt::format("fetafix-inject-{}-{}", ::getpid(), counter++);
    fs::remove_all(t.path_, ec);
    if (!fs::create_directories(t.path_, ec) || ec)
      return make_error("cannot create temporary folder {}: {}", t.path_.string(), ec.message());
    return t;
  }
  TempFolder(TempFolder&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  ~TempFolder() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  TempFolder() = default;
  fs::path path_;
};

// The model as ONNX Runtime saves it after its basic optimizations (src/runtime: the one
// executor); higher levels would write ONNX Runtime's own fused operators.
Result<onnx::ModelProto> ort_optimized(const onnx::ModelProto& model) {
  FETAFIX_ASSIGN_OR_RETURN(TempFolder folder, TempFolder::create());
  const fs::path out = folder.path() / "optimized.onnx";
  runtime::SessionOptions options;
  options.threads = 1;
  options.save_optimized_to = out.string();
  auto session = runtime::Session::create(model, options, "the model to optimize");
  if (!session.ok()) return session.error();
  FETAFIX_ASSIGN_OR_RETURN(model::Model optimized, model::load_model(out));
  return std::move(optimized.proto);
}

Result<onnx::ModelProto> convert_opset(const onnx::ModelProto& model, const std::string& value) {
  if (value.empty()) return make_error("'opset' needs a target version, e.g. opset=17");
  FETAFIX_ASSIGN_OR_RETURN(int64_t target, parse_int(value, "opset"));
  const int64_t current = model::default_opset(model);
  if (target == current) return make_error("the model is already opset {}", target);
  if (target < 7 || target > 17)
    return make_error("opset {} is outside what ONNX 1.12's version converter reaches (7..17)", target);
  try {
    onnx::ModelProto converted = onnx::version_conversion::ConvertVersion(model, static_cast<int>(target));
    if (model::default_opset(converted) != target)
      return make_error("ONNX's version converter did not reach opset {} (from {})", target, current);
    return converted;
  } catch (const std::exception& e) {
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    return make_error("ONNX's version converter failed from opset {} to {}: {}", current, target, message);
  }
}

}  // namespace

bool is_whole_model_rewrite(const FaultSpec& spec) {
  return spec.benign() && (spec.fault == "ort-optimized" || spec.fault == "opset");
}

Result<onnx::ModelProto> rewrite_whole_model(const onnx::ModelProto& model, const FaultSpec& spec) {
  if (!spec.nodes.empty() || !spec.options.empty()) return make_error("'{}' takes no options", spec.fault);
  if (spec.fault == "ort-optimized") {
    if (!spec.value.empty()) return make_error("'ort-optimized' takes no value");
    return ort_optimized(model);
  }
  if (spec.fault == "opset") return convert_opset(model, spec.value);
  return make_error("fault '{}' is not supported yet", spec.text);
}

}  // namespace fetafix::inject::detail
