// Where the port corpus is (tools/ports, made by scripts/make-ports.sh with Debian's
// python3-torch), and a clean skip when it has not been made.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace fetafix::testing {

// $FETAFIX_PORTS if set, else <build>/ports; empty when that folder has no index.json.
std::filesystem::path ports_dir();

}  // namespace fetafix::testing

// Skips the current test unless the port case `name` is there; `var` is its folder.
#define FETAFIX_REQUIRE_PORT_CASE(var, name)                                                        \
  const std::filesystem::path var = ::fetafix::testing::ports_dir() / (name);                       \
  if (::fetafix::testing::ports_dir().empty() || !std::filesystem::exists(var / "target.onnx"))     \
    GTEST_SKIP() << "port case " << (name) << " not found: make the port corpus with "              \
                 << "scripts/make-ports.sh (needs Debian's python3-torch) or set FETAFIX_PORTS"
