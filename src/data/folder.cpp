#include "data/folder.h"

#include <algorithm>

namespace fetafix::data {
namespace fs = std::filesystem;

namespace {

// One folder's entries: wanted files go to `found`, real subfolders to `subfolders`.
Status scan_folder(const fs::path& folder, const fs::path& root, std::string_view what,
                   const std::function<bool(const fs::path&)>& wanted, std::vector<ListedFile>& found,
                   std::vector<fs::path>& subfolders) {
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) return make_error("cannot list {} '{}': {}", what, folder.string(), ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::directory_entry& entry = *it;
    std::error_code type_ec;
    if (entry.is_directory(type_ec) && !entry.is_symlink(type_ec)) {
      subfolders.push_back(entry.path());
      continue;
    }
    if (!wanted(entry.path()) || entry.is_directory(type_ec)) continue;
    found.push_back({entry.path(), entry.path().lexically_relative(root).generic_string()});
  }
  if (ec) return make_error("cannot list {} '{}': {}", what, folder.string(), ec.message());
  return {};
}

}  // namespace

Result<std::vector<ListedFile>> list_folder(const fs::path& dir, std::string_view what,
                                            const std::function<bool(const fs::path&)>& wanted) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (ec || !fs::exists(status)) return make_error("{} '{}' does not exist", what, dir.string());
  if (!fs::is_directory(status)) return make_error("{} '{}' is not a folder", what, dir.string());
  std::vector<ListedFile> found;
  std::vector<fs::path> pending{dir};
  while (!pending.empty()) {
    const fs::path folder = std::move(pending.back());
    pending.pop_back();
    FETAFIX_TRY_STATUS(scan_folder(folder, dir, what, wanted, found, pending));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return found;
}

}  // namespace fetafix::data
