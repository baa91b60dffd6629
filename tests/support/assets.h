// Where the real models and photos of ../shared/assets are, and a clean skip when absent.
#pragma once

#include <filesystem>

#include <gtest/gtest.h>

namespace fetafix::testing {

// FETAFIX_ASSETS if set, else ../shared/assets beside the source tree; empty if absent.
std::filesystem::path assets_dir();

// A fresh, empty folder for one test under the build tree's tmp/.
std::filesystem::path temp_dir(const std::string& name);

}  // namespace fetafix::testing

// Skips the current test with a message naming what is missing.
#define FETAFIX_REQUIRE_ASSET(var, relpath)                                              \
  const std::filesystem::path var = ::fetafix::testing::assets_dir() / (relpath);       \
  if (::fetafix::testing::assets_dir().empty() || !std::filesystem::exists(var))        \
    GTEST_SKIP() << "asset not found: " << (relpath)                                      \
                 << " (set FETAFIX_ASSETS or place ../shared/assets beside the project)"
