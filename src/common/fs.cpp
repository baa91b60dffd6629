#include "common/fs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fetafix {
namespace fs = std::filesystem;

namespace {

fs::path folder_of(const fs::path& path) { return path.parent_path().empty() ? fs::path(".") : path.parent_path(); }

// "a character device", ... for a file type that is neither a regular file nor a folder.
const char* special_kind(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// A temporary name beside `path`, short enough for NAME_MAX even when the file name is long.
std::string temporary_template(const fs::path& path) {
  std::string name = path.filename().string();
  if (name.size() > 200) name.resize(200);
  return (folder_of(path) / ("." + name + ".tmp-XXXXXX")).string();
}

Status write_all(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("{}", std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

// Writes `data` to a new synced temporary file beside `path`; returns its name.
Result<fs::path> write_temporary(const fs::path& path, std::string_view data) {
  std::string tmpl = temporary_template(path);
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return make_error("{}: cannot write: {}", path.string(), std::strerror(errno));
  Status st = write_all(fd, data);
  // mkstemp creates 0600; outputs are ordinary files.
  if (st.ok() && ::fchmod(fd, 0644) != 0) st = make_error("{}", std::strerror(errno));
  if (st.ok() && ::fsync(fd) != 0) st = make_error("{}", std::strerror(errno));
  if (::close(fd) != 0 && st.ok()) st = make_error("{}", std::strerror(errno));
  if (!st.ok()) {
    ::unlink(tmpl.c_str());
    return make_error("{}: cannot write: {}", path.string(), st.error().message);
  }
  return fs::path(tmpl);
}

// Makes a rename durable: the folder entry itself is synced.
void sync_folder(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Folders whose "files" are kernel interfaces: writing there is never what a user means.
const char* virtual_file_system(const fs::path& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) != 0) return nullptr;
  switch (static_cast<unsigned long>(s.f_type)) {
    case PROC_SUPER_MAGIC: return "proc";
    case SYSFS_MAGIC: return "sysfs";
    case DEBUGFS_MAGIC: return "debugfs";
    case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC: return "cgroup";
    default: return nullptr;
  }
}

// Creates and removes a temporary file in `dir`: the only reliable answer to "can I write
// here" (permissions, read-only mounts, root, ACLs).
Status probe_folder(const fs::path& path, const fs::path& dir) {
  std::string probe = (dir / ".fetafix-probe-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0)
    return make_error("{}: cannot write: folder {} is not writable ({})", path.string(), dir.string(),
                      std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

}  // namespace

namespace {

// Opens `path` for reading if it is a regular file (symlinks followed); the open file and its size.
// O_NONBLOCK: opening a FIFO must not wait for a writer.
Result<std::pair<int, uint64_t>> open_regular_file(const fs::path& path, const std::string& label) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    struct stat link {};
    if (e == ENOENT && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode))
      return make_error("{}: dangling symbolic link", label);
    if (e == ENOENT) return make_error("{}: file not found", label);
    if (e == ELOOP) return make_error("{}: symbolic link loop", label);
    return make_error("{}: cannot be read: {}", label, std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool folder = S_ISDIR(st.st_mode);
    const mode_t mode = st.st_mode;
    ::close(fd);
    if (folder) return make_error("{}: is a folder, not a file", label);
    return make_error("{}: is {}, not a regular file", label, special_kind(mode));
  }
  return std::pair{fd, static_cast<uint64_t>(st.st_size)};
}

}  // namespace

Status check_regular_file(const fs::path& path) {
  FETAFIX_ASSIGN_OR_RETURN(auto opened, open_regular_file(path, path.string()));
  ::close(opened.first);
  return {};
}

Result<std::string> read_regular_file(const fs::path& path, std::string_view what, uint64_t max_bytes) {
  const std::string label = fmt::format("{} '{}'", what, path.string());
  FETAFIX_ASSIGN_OR_RETURN(auto opened, open_regular_file(path, label));
  const auto [fd, size] = opened;
  if (size > max_bytes) {
    ::close(fd);
    return make_error("{}: {} bytes is over the limit of {} bytes for this kind of file", label, size, max_bytes);
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error("{}: cannot be read: {}", label, std::strerror(e));
    }
    if (n == 0) break;  // shrank while reading
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(off);
  return bytes;
}

Status write_file_atomic(const fs::path& path, std::string_view data) {
  PendingOutputs out;
  FETAFIX_TRY_STATUS(out.add(path, data));
  return out.commit();
}

Status check_writable(const fs::path& path) {
  if (path.empty()) return make_error("output file name is empty");
  const std::string p = path.string();
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    const bool link = S_ISLNK(st.st_mode);
    const bool dangling = link && ::stat(path.c_str(), &st) != 0;  // st now describes the link's target
    if (!dangling) {
      if (S_ISDIR(st.st_mode)) return make_error("{}: cannot write: is a folder", p);
      if (!S_ISREG(st.st_mode))
        return make_error("{}: cannot write: is {}{}; refusing to replace it", p, link ? "a link to " : "",
                          special_kind(st.st_mode));
      if (::access(path.c_str(), W_OK) != 0) return make_error("{}: cannot write: file is read-only", p);
    }
  }
  const fs::path dir = folder_of(path);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return make_error("{}: cannot write: folder {} does not exist", p, dir.string());
  if (!fs::is_directory(dir, ec)) return make_error("{}: cannot write: {} is not a folder", p, dir.string());
  if (const char* vfs = virtual_file_system(dir))
    return make_error("{}: cannot write: folder {} is on the virtual file system {}, not a disk", p, dir.string(), vfs);
  return probe_folder(path, dir);
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

PendingOutputs::~PendingOutputs() {
  if (committed_) return;
  for (const auto& s : staged_) ::unlink(s.temporary.c_str());
  for (auto it = created_folders_.rbegin(); it != created_folders_.rend(); ++it) ::rmdir(it->c_str());
}

Status PendingOutputs::add(const fs::path& path, std::string_view data) {
  if (committed_) return make_error("{}: cannot write: the run's outputs were already written", path.string());
  for (const auto& s : staged_)
    if (same_file(s.destination, path))
      return make_error("{}: cannot write: the same file as another output of this run ({})", path.string(),
                        s.destination.string());
  FETAFIX_ASSIGN_OR_RETURN(fs::path temporary, write_temporary(path, data));
  staged_.push_back({path, std::move(temporary)});
  return {};
}

Status PendingOutputs::add_folder(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> missing;
  for (fs::path d = dir; !d.empty() && !fs::exists(d, ec); d = d.parent_path()) {
    missing.push_back(d);
    if (d == d.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) return make_error("{}: cannot create the folder: {}", dir.string(), ec.message());
  created_folders_.insert(created_folders_.end(), missing.rbegin(), missing.rend());
  return {};
}

Status PendingOutputs::commit() {
  committed_ = true;
  for (size_t i = 0; i < staged_.size(); ++i) {
    const Staged& s = staged_[i];
    if (::rename(s.temporary.c_str(), s.destination.c_str()) != 0) {
      const int e = errno;
      for (size_t j = i; j < staged_.size(); ++j) ::unlink(staged_[j].temporary.c_str());
      return make_error("{}: cannot write: {}", s.destination.string(), std::strerror(e));
    }
    sync_folder(folder_of(s.destination));
  }
  return {};
}

std::vector<fs::path> PendingOutputs::paths() const {
  std::vector<fs::path> out;
  for (const auto& s : staged_) out.push_back(s.destination);
  return out;
}

}  // namespace fetafix
