// Files that are not regular files, and running as an ordinary user, for the bad-input tests.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace fetafix::testing {

bool make_fifo(const std::filesystem::path& path);
// A Unix socket file (bound, then the descriptor closed; the file stays).
bool make_socket(const std::filesystem::path& path);
// A character device with /dev/null's numbers (1,3): root only; false otherwise. Replacing it
// by mistake harms nothing outside the test's folder.
bool make_char_device(const std::filesystem::path& path);
bool running_as_root();

// Runs `fn` in a forked child (for process-wide settings such as rlimits) and returns its return
// value as the child's exit code (-1 if it did not exit normally).
int run_in_child(const std::function<int()>& fn);

// Permission checks do not apply to root, so tests of unreadable files run as "nobody" when
// the suite runs as root. Runs `fn` in a forked child (as nobody when root) and returns its
// return value as the child's exit code (-1 if it did not exit normally).
int run_unprivileged(const std::function<int()>& fn);
// The same for a shell command line: a prefix ("setpriv ... " when root, "" otherwise).
std::string unprivileged_shell_prefix();

}  // namespace fetafix::testing
