#include "support/ports.h"

#include <cstdlib>

namespace fetafix::testing {

std::filesystem::path ports_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("FETAFIX_PORTS"); env && *env) p = env;
  else p = std::filesystem::path(FETAFIX_BUILD_DIR) / "ports";
  std::error_code ec;
  return std::filesystem::exists(p / "index.json", ec) ? p : std::filesystem::path{};
}

}  // namespace fetafix::testing
