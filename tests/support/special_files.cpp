#include "support/special_files.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

namespace fetafix::testing {

namespace {
constexpr uid_t kNobody = 65534;
}

bool make_fifo(const std::filesystem::path& path) { return ::mkfifo(path.c_str(), 0644) == 0; }

bool make_socket(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path) return false;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool make_char_device(const std::filesystem::path& path) {
  return running_as_root() && ::mknod(path.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
}

bool running_as_root() { return ::geteuid() == 0; }

int run_in_child(const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) ::_exit(fn());
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int run_unprivileged(const std::function<int()>& fn) {
  return run_in_child([&] {
    if (running_as_root() && (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0))
      return 125;
    return fn();
  });
}

std::string unprivileged_shell_prefix() {
  return running_as_root() ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
}

}  // namespace fetafix::testing
