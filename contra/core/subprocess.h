#pragma once
/// Running helper programs (the speech worker, launched ranks) without a shell.
#include <string>
#include <vector>

namespace contra {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0 otherwise
  std::string out;     // captured stdout
  std::string err;     // captured stderr
};

/// Runs argv[0] (a path, not searched in PATH) with arguments, waits, captures stdout and stderr.
/// Throws UnavailableError when the program cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace contra
