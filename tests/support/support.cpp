#include "tests/support/support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "contra/core/fs.h"

namespace contra::testing {

void SeededTest::SetUp() { torch::manual_seed(0); }

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "contra-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() { contra::remove_all(path_); }

std::string source_dir() {
  if (const char* env = std::getenv("CONTRA_SOURCE_DIR")) return env;
  return CONTRA_SOURCE_DIR;
}

std::string bin_dir() { return contra::executable_dir(); }

CommandResult run_command(const std::string& command) {
  TempDir dir;
  std::string out = dir.file("out"), err = dir.file("err");
  std::string full = "(" + command + ") >'" + out + "' 2>'" + err + "' </dev/null";
  int status = std::system(full.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace contra::testing
