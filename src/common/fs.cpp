#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace fetafix {
namespace fs = std::filesystem;

Status write_file_atomic(const fs::path& path, std::string_view data) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = mkstemp(tmpl.data());
  if (fd < 0) return make_error("{}: cannot write: {}", path.string(), std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      return make_error("{}: cannot write: {}", path.string(), std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  // mkstemp creates 0600; outputs are ordinary files.
  ::fchmod(fd, 0644);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    return make_error("{}: cannot write: {}", path.string(), std::strerror(errno));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    return make_error("{}: cannot write: {}", path.string(), std::strerror(e));
  }
  return {};
}

Status check_writable(const fs::path& path) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error("{}: cannot write: folder {} does not exist", path.string(), dir.string());
  if (fs::is_directory(path, ec)) return make_error("{}: cannot write: is a folder", path.string());
  if (::access(dir.c_str(), W_OK) != 0) return make_error("{}: cannot write: folder {} is not writable", path.string(), dir.string());
  if (fs::exists(path, ec) && ::access(path.c_str(), W_OK) != 0) return make_error("{}: cannot write: file is read-only", path.string());
  return {};
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

}  // namespace fetafix
