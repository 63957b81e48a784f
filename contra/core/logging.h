#pragma once
/// The one logger (spdlog, stderr). stdout is reserved for results (tables, JSON).
/// In distributed runs only rank 0 logs at info level unless `set_log_rank(rank, all_ranks=true)`.
#include <string>

#include <spdlog/spdlog.h>

namespace contra {

/// The library-wide logger ("contra", coloured on a TTY, to stderr).
spdlog::logger& log();
/// Level by name: trace, debug, info, warn, error, off. Throws ConfigError for other names.
void set_log_level(const std::string& level);
/// Tags messages with the rank and silences info logs on ranks other than 0 (unless all_ranks).
void set_log_rank(int rank, bool all_ranks = false);

}  // namespace contra
