#include "cli/cli_support.h"

#include <filesystem>

#include "common/fs.h"

namespace fetafix::cli {
namespace fs = std::filesystem;

Status check_output_path(const std::string& path, const std::vector<std::string>& inputs, const char* flag) {
  if (path.empty()) return {};
  for (const auto& input : inputs)
    if (same_file(path, input)) return make_error("{}: refusing to overwrite an input ({})", path, flag);
  return check_writable(path);
}

Status check_output_folder(const std::string& dir, const std::vector<std::string>& inputs, const char* flag) {
  if (dir.empty()) return {};
  for (const auto& input : inputs)
    if (same_file(dir, input)) return make_error("{}: refusing to overwrite an input ({})", dir, flag);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) return make_error("{}: not a folder ({})", dir, flag);
  return {};
}

}  // namespace fetafix::cli
