// File output that never leaves partial files and never touches an input.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/result.h"

namespace fetafix {

// Writes `data` to `path` through a temporary file in the same folder and a rename,
// so readers see either the old file or the whole new one.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data);

// Checks up front that `path` can be created (its folder exists and is writable) so a
// long run fails before it starts rather than at the end.
Status check_writable(const std::filesystem::path& path);

// True when a and b name the same existing file (after symlinks), or the same path.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace fetafix
