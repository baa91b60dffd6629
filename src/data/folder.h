// Listing a folder of inputs (images, samples) the same safe way everywhere (docs/cli.md,
// "Files"): recursively, in sorted order of the relative path, without following symlinked
// folders (no loops, no escaping the folder), and naming the very subfolder that cannot be read.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fetafix::data {

struct ListedFile {
  std::filesystem::path path;
  std::string name;  // relative to the listed folder, '/'-separated
};

// Every entry below `dir` whose name `wanted` accepts and that is not a folder, sorted by name.
// Entries that are not regular files (a dangling or looping symlink, a FIFO) are listed too:
// their readers refuse them, so --strict fails on them and otherwise they are skipped and
// counted, never silently dropped. `what` names the folder in errors ("image folder"): it does
// not exist, is not a folder, or a folder below it cannot be listed. An empty result is no error.
Result<std::vector<ListedFile>> list_folder(const std::filesystem::path& dir, std::string_view what,
                                            const std::function<bool(const std::filesystem::path&)>& wanted);

}  // namespace fetafix::data
