#pragma once
/// Progress display for long work: a redrawn bar on a TTY (count/total, rate, ETA, extra text),
/// plain periodic lines otherwise (every `interval_s` seconds), both on stderr.
///
///   Progress progress("synthesising", total, "utt");
///   for (...) progress.advance(1, fmt::format("loss {:.3f}", loss));
///   progress.finish();
#include <chrono>
#include <cstdint>
#include <string>

namespace contra {

class Progress {
 public:
  Progress(std::string label, std::int64_t total, std::string unit = "it",
           double interval_s = 10.0);
  ~Progress();
  /// Adds `n` to the count and redraws when due. `extra` is shown after the rate.
  void advance(std::int64_t n = 1, const std::string& extra = "");
  /// Sets the count absolutely (resumed work).
  void set(std::int64_t done, const std::string& extra = "");
  /// Prints the final line (done/total, elapsed, mean rate).
  void finish(const std::string& extra = "");
  double elapsed_s() const;
  /// Renders a line for the given state (pure; used by tests).
  static std::string render(const std::string& label, std::int64_t done, std::int64_t total,
                            const std::string& unit, double elapsed_s, const std::string& extra,
                            int bar_width);

 private:
  void draw(bool final);
  std::string label_, unit_, extra_;
  std::int64_t total_, done_ = 0;
  double interval_s_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "1h02m", "3m05s", "12.3s".
std::string format_duration(double seconds);

}  // namespace contra
