#pragma once
// A 10-class MNIST-format set for recipe tests: class c is a bright horizontal bar at rows
// 3+2c..5+2c, plus noise; written as IDX files (train-* and t10k-*) into `dir`.
#include <string>

#include <torch/torch.h>

#include "contra/core/fs.h"
#include "contra/data/images.h"

namespace contra::testing {

inline void write_digits(const std::string& dir, int64_t train, int64_t test) {
  make_dirs(dir);
  auto make = [](int64_t n, int64_t seed) {
    torch::manual_seed(seed);
    torch::Tensor labels = torch::arange(n) % 10;
    torch::Tensor images = torch::randint(0, 60, {n, 1, 28, 28}, torch::kLong);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = labels[i].item<int64_t>();
      images[i][0].narrow(0, 3 + 2 * c, 3).fill_(250);
    }
    return std::make_pair(images.to(torch::kUInt8), labels);
  };
  auto [tx, ty] = make(train, 1);
  auto [vx, vy] = make(test, 2);
  data::write_idx_images(dir + "/train-images-idx3-ubyte", tx);
  data::write_idx_labels(dir + "/train-labels-idx1-ubyte", ty);
  data::write_idx_images(dir + "/t10k-images-idx3-ubyte", vx);
  data::write_idx_labels(dir + "/t10k-labels-idx1-ubyte", vy);
}

}  // namespace contra::testing
