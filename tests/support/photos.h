// Synthetic "photos" for end-to-end tests: smooth colour gradients with a blob and noise,
// every one different, so small CNNs give varied labels.
#pragma once

#include <filesystem>
#include <string>

namespace fetafix::testing {

// Writes `count` 48x40 PNGs (seeded) into a fresh folder `name` under the test tmp dir, once
// per process; returns the folder.
std::filesystem::path synthetic_photos(const std::string& name = "synthetic_photos", int count = 40,
                                       unsigned seed = 42);

}  // namespace fetafix::testing
