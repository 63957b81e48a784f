#pragma once
/// Shared test helpers: a seeding fixture, temporary directories, paths to the source and build
/// trees.
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "contra/core/error.h"

namespace contra::testing {

/// Seeds LibTorch with 0 before each test (DESIGN.md §9).
class SeededTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

/// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Root of the source tree (for configs/ and tests/data/ fixtures).
std::string source_dir();
/// Folder holding the built executables (contra, contra-speechgen).
std::string bin_dir();

/// Result of running a command through the shell.
struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
/// Runs `command` with /bin/sh, capturing stdout and stderr.
CommandResult run_command(const std::string& command);

/// Writes bytes to a file (test fixtures).
void write_bytes(const std::string& path, const std::string& bytes);

/// The message of the ConfigError that `f()` throws, or "<no ConfigError>" when it throws none.
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const contra::ConfigError& e) {
    return e.what();
  }
  return "<no ConfigError>";
}

/// Expects `f()` to throw a DataError whose message contains `needle`.
inline void expect_data_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "expected DataError containing '" << needle << "'";
  } catch (const contra::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace contra::testing
