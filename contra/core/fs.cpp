#include "contra/core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "contra/core/error.h"

namespace contra {
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

std::string temp_sibling(const std::string& path) {
  static std::atomic<int> counter{0};
  return fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter++);
}

void replace_directory(const std::string& staged, const std::string& target,
                       const std::string& context) {
  namespace fs = std::filesystem;
  std::string old;
  if (path_exists(target)) {
    old = temp_sibling(target) + ".old";
    std::error_code ec;
    fs::rename(target, old, ec);
    if (ec) {
      throw IoError(
          fmt::format("{}: moving the existing '{}' aside: {}", context, target, ec.message()));
    }
  }
  std::error_code ec;
  fs::rename(staged, target, ec);
  if (ec) {
    std::error_code back;
    if (!old.empty()) fs::rename(old, target, back);
    throw IoError(
        fmt::format("{}: moving '{}' to '{}': {}", context, staged, target, ec.message()));
  }
  if (!old.empty()) remove_all(old);
  const std::string parent = fs::path(target).parent_path().string();
  fsync_dir(parent.empty() ? "." : parent);
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), temp_(temp_sibling(path_)) {
  file_ = std::fopen(temp_.c_str(), "wb");
  if (!file_) throw IoError(fmt::format("writing '{}': {}", path_, errno_text()));
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) {
  if (data.empty()) return;
  if (std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
    throw IoError(fmt::format("writing '{}': {}", path_, errno_text()));
  }
}

void AtomicFile::commit() {
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    throw IoError(fmt::format("writing '{}': {}", path_, errno_text()));
  }
  int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) throw IoError(fmt::format("writing '{}': {}", path_, errno_text()));
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    throw IoError(fmt::format("renaming '{}' to '{}': {}", temp_, path_, errno_text()));
  }
  committed_ = true;
  auto parent = fs::path(path_).parent_path();
  fsync_dir(parent.empty() ? "." : parent.string());
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile out(path);
  out.write(content);
  out.commit();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("reading '{}': {}", path, errno_text()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("reading '{}': read failed", path));
  return buffer.str();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw IoError(fmt::format("creating directory '{}': {}", path, ec.message()));
}

void fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some file systems do not allow it
  ::fsync(fd);
  ::close(fd);
}

void remove_all(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

bool path_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

std::string executable_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return exe.parent_path().string();
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) throw IoError(fmt::format("reading '{}': {}", path, ec.message()));
  return size;
}

}  // namespace contra
