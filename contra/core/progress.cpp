#include "contra/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace contra {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  auto total = static_cast<long>(std::lround(seconds));
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}h{:02d}m", total / 3600, static_cast<int>((total % 3600) / 60));
}

Progress::Progress(std::string label, std::int64_t total, std::string unit, double interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      interval_s_(interval_s),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(std::int64_t n, const std::string& extra) { set(done_ + n, extra); }

void Progress::set(std::int64_t done, const std::string& extra) {
  done_ = done;
  if (!extra.empty()) extra_ = extra;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.2 : interval_s_)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  if (!extra.empty()) extra_ = extra;
  draw(true);
  finished_ = true;
}

std::string Progress::render(const std::string& label, std::int64_t done, std::int64_t total,
                             const std::string& unit, double elapsed_s, const std::string& extra,
                             int bar_width) {
  double rate = elapsed_s > 0 ? done / elapsed_s : 0.0;
  std::string bar;
  if (bar_width > 0 && total > 0) {
    int filled = static_cast<int>(bar_width * std::min<double>(1.0, double(done) / total));
    // Not `"[" + std::string(...) + ...`: GCC 12 in C++20 (LibTorch 2.x) warns -Wstringop-overflow
    // on that concatenation (a false positive).
    bar = fmt::format("[{}{}] ", std::string(filled, '#'), std::string(bar_width - filled, '.'));
  }
  std::string count = total > 0 ? fmt::format("{}/{}", done, total) : fmt::format("{}", done);
  std::string eta;
  if (total > 0 && done > 0 && done < total) {
    eta = " ETA " + format_duration((total - done) / std::max(rate, 1e-9));
  }
  std::string line = fmt::format("{}: {}{} {:.1f} {}/s {}{}", label, bar, count, rate, unit,
                                 format_duration(elapsed_s), eta);
  if (!extra.empty()) line += "  " + extra;
  return line;
}

void Progress::draw(bool final) {
  std::string line = render(label_, done_, total_, unit_, elapsed_s(), extra_, tty_ ? 30 : 0);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace contra
