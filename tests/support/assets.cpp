#include "support/assets.h"

#include <cstdlib>

namespace fetafix::testing {

std::filesystem::path assets_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("FETAFIX_ASSETS"); env && *env) p = env;
  else p = FETAFIX_DEFAULT_ASSETS;
  std::error_code ec;
  return std::filesystem::is_directory(p, ec) ? std::filesystem::canonical(p, ec) : std::filesystem::path{};
}

std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::current_path() / "tmp" / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace fetafix::testing
