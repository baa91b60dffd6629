// File input and output that never blocks on a special file, never leaves partial files and
// never touches an input (docs/cli.md, "Files").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace fetafix {

// Reads a whole regular file (symlinks followed). Refuses, with an error naming the file and
// calling it `what` ("patch", "preset"): a missing file, a folder, a device, FIFO or socket
// (opened without blocking, so a FIFO never hangs the run), an unreadable file, and a file over
// `max_bytes`.
Result<std::string> read_regular_file(const std::filesystem::path& path, std::string_view what,
                                      uint64_t max_bytes = uint64_t{1} << 31);

// The checks of read_regular_file without reading: for readers that take a path (libsndfile) or
// check sizes themselves. Errors start with the path.
Status check_regular_file(const std::filesystem::path& path);

// Writes `data` to `path` through a temporary file in the same folder, fsync and a rename,
// so readers see either the old file or the whole new one. A full disk (or a file-size limit)
// is an error naming `path`.
Status write_file_atomic(const std::filesystem::path& path, std::string_view data);

// Checks up front that `path` can be written, so a long run fails before it starts rather than at
// the end: the name is not empty; the path is absent or a regular file (a symlink is judged by
// what it points to) that is not read-only, never a folder, device, FIFO or socket; its folder
// exists, is not a virtual file system (/proc, /sys) and a file can really be created in it
// (probed with a temporary file, so read-only mounts are caught even for root).
Status check_writable(const std::filesystem::path& path);

// True when a and b name the same existing file (after symlinks; hard links included), or the
// same path.
bool same_file(const std::filesystem::path& a, const std::filesystem::path& b);

// The outputs of one run, written in two phases so that a run that fails half way writes
// nothing: add() writes each output to a synced temporary file beside its destination (a full
// disk fails here, naming the file), commit() renames them all into place. Whatever was not
// committed is removed when the object goes away.
class PendingOutputs {
 public:
  PendingOutputs() = default;
  PendingOutputs(const PendingOutputs&) = delete;
  PendingOutputs& operator=(const PendingOutputs&) = delete;
  ~PendingOutputs();

  // Errors: the file cannot be written; `path` is already one of this run's outputs.
  Status add(const std::filesystem::path& path, std::string_view data);
  // Creates `dir` (and its parents) now if missing, so files can be added into it; it is removed
  // again if the run is not committed and it is still empty.
  Status add_folder(const std::filesystem::path& dir);
  // Renames every added file into place, in the order added.
  Status commit();
  // Destinations added so far, in order.
  std::vector<std::filesystem::path> paths() const;

 private:
  struct Staged {
    std::filesystem::path destination, temporary;
  };
  std::vector<Staged> staged_;
  std::vector<std::filesystem::path> created_folders_;
  bool committed_ = false;
};

}  // namespace fetafix
