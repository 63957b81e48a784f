#include "contra/core/logging.h"

#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>

#include "contra/core/error.h"

namespace contra {

namespace {
std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = spdlog::stderr_color_mt("contra");
  logger->set_pattern("%^[%H:%M:%S %L]%$ %v");
  logger->set_level(spdlog::level::info);
  return logger;
}
}  // namespace

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = make_logger();
  return *logger;
}

void set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    throw ConfigError("log level: unknown '" + level +
                      "' (expected trace, debug, info, warn, error, off)");
  }
  log().set_level(parsed);
}

void set_log_rank(int rank, bool all_ranks) {
  log().set_pattern("%^[%H:%M:%S %L rank " + std::to_string(rank) + "]%$ %v");
  if (rank != 0 && !all_ranks) log().set_level(spdlog::level::warn);
}

}  // namespace contra
