#pragma once
/// contra's error types. The library throws; only `main` turns errors into exit codes.
///
/// Messages follow "<component>: <what> (got X, expected Y)". Context is added when rethrowing with
/// `with_context` ("reading 'a/b.flac': ..."). At the CLI, `ConfigError`, `DataError`, `IoError`
/// and `UsageError` exit with 2 (the user can fix them); anything else is an internal error and
/// exits with 1.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace contra {

/// Base of every error contra throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
/// Bad command-line usage (unknown option, missing argument).
class UsageError : public Error {
 public:
  using Error::Error;
};
/// A configuration value or key is wrong (unknown key, out-of-range value, inconsistent settings).
class ConfigError : public Error {
 public:
  using Error::Error;
};
/// Input data is wrong (corrupt file, wrong sample rate, unknown id, NaN).
class DataError : public Error {
 public:
  using Error::Error;
};
/// The file system failed (cannot create, write, rename; disk full).
class IoError : public Error {
 public:
  using Error::Error;
};
/// A feature is not available in this build or on this machine (CUDA, a missing helper program).
class UnavailableError : public Error {
 public:
  using Error::Error;
};
/// Training diverged or another numerical failure (NaN/Inf loss).
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// Exit code for an exception caught in `main`: 2 for errors the user can fix, 1 otherwise.
int exit_code_for(const std::exception& e) noexcept;

/// Rethrows the exception currently being handled with `context + ": "` prepended, keeping its
/// type.
[[noreturn]] void rethrow_with_context(const std::string& context);

/// Throws `E` with a formatted message unless `condition` holds.
template <class E = Error, class... Args>
inline void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) throw E(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace contra
