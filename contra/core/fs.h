#pragma once
/// File-system helpers that never leave a half-written file where a complete one is expected.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace contra {

/// Writes `content` to `path` atomically: a temporary sibling, fsync, rename. Throws IoError.
void write_file_atomic(const std::string& path, std::string_view content);
/// Reads a whole file. Throws IoError (missing, unreadable) naming the file.
std::string read_file(const std::string& path);
/// Creates a directory and its parents. Throws IoError.
void make_dirs(const std::string& path);
/// Fsyncs a directory so that a rename inside it is durable.
void fsync_dir(const std::string& path);
/// Removes a file or directory tree if it exists (no error when absent).
void remove_all(const std::string& path);
/// True when `path` exists.
bool path_exists(const std::string& path);
/// The folder of the running executable (resolved /proc/self/exe).
std::string executable_dir();
/// Size of a file in bytes; throws IoError when it cannot be read.
std::uint64_t file_size(const std::string& path);
/// Unique temporary sibling name for `path` ("<path>.tmp-<pid>-<n>").
std::string temp_sibling(const std::string& path);
/// Moves the finished directory `staged` to `target` (same file system): an existing `target` is
/// moved aside first and removed only after the new one is in place; if the move fails the old one
/// is put back and IoError names `context`, both paths and the reason. Fsyncs target's parent.
void replace_directory(const std::string& staged, const std::string& target,
                       const std::string& context);

/// A file written under a temporary name and renamed into place by `commit()`.
/// If destroyed without commit, the temporary file is removed and the target is untouched.
///
///   AtomicFile out("a/metrics.json");
///   out.write("...");
///   out.commit();
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view data);
  /// Flushes, fsyncs, renames over the target. Throws IoError (e.g. disk full) and keeps the old
  /// file.
  void commit();
  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

}  // namespace contra
