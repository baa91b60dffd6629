#include "support/photos.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "model/builder.h"
#include "support/assets.h"
#include "support/images.h"

namespace fetafix::testing {

std::filesystem::path synthetic_photos(const std::string& name, int count, unsigned seed) {
  // ctest runs each test in its own process, several at once: every process gets its own
  // folder (removed when it exits), made once however many tests use it.
  struct Folders {
    std::map<std::string, std::filesystem::path> made;
    ~Folders() {
      std::error_code ec;
      for (const auto& [n, dir] : made) std::filesystem::remove_all(dir, ec);
    }
  };
  static Folders folders;
  auto& made = folders.made;
  if (auto it = made.find(name); it != made.end()) return it->second;
  const auto dir = temp_dir(name + "_" + std::to_string(::getpid()));
  Rng rng(seed);
  for (int i = 0; i < count; ++i) {
    const int w = 48, h = 40;
    std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
    float base[3], grad[3][2];
    for (int c = 0; c < 3; ++c) {
      base[c] = rng.uniform(0, 255);
      grad[c][0] = rng.uniform(-4, 4);
      grad[c][1] = rng.uniform(-4, 4);
    }
    const float bx = rng.uniform(0, w), by = rng.uniform(0, h), br = rng.uniform(4, 16);
    const float blob[3] = {rng.uniform(0, 255), rng.uniform(0, 255), rng.uniform(0, 255)};
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) {
          const bool in_blob = (x - bx) * (x - bx) + (y - by) * (y - by) < br * br;
          float v = in_blob ? blob[c] : base[c] + grad[c][0] * (x - w / 2) + grad[c][1] * (y - h / 2);
          v += rng.uniform(-20, 20);
          rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
        }
    write_png_rgb(dir / ("photo" + std::to_string(100 + i) + ".png"), w, h, rgb);
  }
  made[name] = dir;
  return dir;
}

}  // namespace fetafix::testing
