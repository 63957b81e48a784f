#pragma once
/// Audio I/O: WAV, FLAC and OGG through libsndfile; resampling through libsoxr (HQ).
///
///   auto wave = contra::data::read_audio("a.flac");                 // (1, samples) float at 16
///   kHz contra::data::write_audio("b.flac", wave, 16000);                // 16-bit, clipped,
///   atomic
///
/// Every failure is a DataError (bad input) or IoError (file system) naming the file.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace contra::data {

/// What the header and a full decode say about a file.
struct AudioInfo {
  std::int64_t sample_rate = 0;
  std::int64_t channels = 0;
  std::int64_t frames = 0;  // per channel, as decoded (not merely as the header claims)
  double duration_s = 0;
  double peak = 0;      // max |x| over all channels, in [-1, 1] full scale
  std::string format;   // "WAV", "FLAC", "OGG", ...
  std::string subtype;  // "PCM_16", "VORBIS", ...
};

struct AudioReadOptions {
  /// Output rate in Hz; the file is resampled (libsoxr HQ) when it differs. 0 keeps the file's
  /// rate.
  std::int64_t sample_rate = 16000;
  /// When false, a file whose rate differs from `sample_rate` is a DataError instead of resampled.
  bool resample = true;
  /// Divide by max|x| (silence is left as it is).
  bool normalize = false;
  /// Refuse files longer than this many seconds (guards memory against absurd or corrupt headers).
  double max_duration_s = 4 * 3600.0;
};

/// Reads a file, mixes to mono (mean of channels), resamples, optionally peak-normalises.
/// Returns float32 `(1, samples)`. Throws DataError: missing, empty, not audio, zero channels,
/// truncated, absurd frame counts, non-finite samples, unsupported rate conversion.
torch::Tensor read_audio(const std::string& path, const AudioReadOptions& options = {});

/// Decodes the whole file (to measure the peak and real length) and reports its properties.
AudioInfo audio_info(const std::string& path);

/// Header only (fast: no decoding): rate, channels and the frame count the header claims, checked
/// for the same absurd values as read_audio. `peak` is left 0.
AudioInfo probe_audio(const std::string& path);

enum class AudioFormat { kFlac, kWav };

/// Format from the extension (.flac, .wav); DataError for anything else.
AudioFormat audio_format_for(const std::string& path);

/// Writes mono `(samples)` or `(1, samples)` float audio as 16-bit PCM FLAC or WAV (by extension).
/// Clipping is on (|x| > 1 saturates instead of truncating the FLAC stream), every write is
/// checked, and the file appears under its name only when complete (temporary name + rename).
void write_audio(const std::string& path, const torch::Tensor& samples, std::int64_t sample_rate);
void write_audio(const std::string& path, const float* samples, std::int64_t count,
                 std::int64_t sample_rate);

/// Resamples mono float audio with libsoxr (HQ). Throws DataError for rates outside [1000, 384000]
/// or ratios beyond 64×.
std::vector<float> resample(const float* samples, std::int64_t count, std::int64_t in_rate,
                            std::int64_t out_rate);

}  // namespace contra::data
