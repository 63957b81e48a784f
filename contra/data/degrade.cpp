#include "contra/data/degrade.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "contra/core/error.h"

namespace contra::data {

void DegradeConfig::validate() const {
  check<ConfigError>(noise_probability >= 0 && noise_probability <= 1,
                     "noise_probability: must be in [0, 1] (got {})", noise_probability);
  check<ConfigError>(reverb_probability >= 0 && reverb_probability <= 1,
                     "reverb_probability: must be in [0, 1] (got {})", reverb_probability);
  check<ConfigError>(snr_db_min <= snr_db_max, "snr_db_min: must be <= snr_db_max (got {} > {})",
                     snr_db_min, snr_db_max);
  check<ConfigError>(rt60_min > 0 && rt60_min <= rt60_max && rt60_max <= 5,
                     "rt60_min: expected 0 < rt60_min <= rt60_max <= 5 s (got {}, {})", rt60_min,
                     rt60_max);
  check<ConfigError>(gain_db_min <= gain_db_max && gain_db_max <= 20,
                     "gain_db_min: expected gain_db_min <= gain_db_max <= 20 (got {}, {})",
                     gain_db_min, gain_db_max);
}

void add_noise(std::vector<float>& audio, double snr_db, SplitMix64& rng) {
  if (audio.empty()) return;
  double power = 0;
  for (float x : audio) power += double(x) * x;
  power /= static_cast<double>(audio.size());
  if (power <= 0) return;
  double sigma = std::sqrt(power / std::pow(10.0, snr_db / 10.0));
  for (float& x : audio) x += static_cast<float>(sigma * rng.normal());
}

namespace {
// Feedback comb: y[n] = x[n] + g·y[n−D]; g chosen so the comb decays by 60 dB in rt60 seconds.
void comb(const std::vector<float>& in, std::vector<float>& acc, int delay, double rt60,
          int sample_rate) {
  double g = std::pow(10.0, -3.0 * delay / (rt60 * sample_rate));
  std::vector<float> y(in.size());
  for (size_t n = 0; n < in.size(); ++n) {
    y[n] = in[n] + (n >= size_t(delay) ? static_cast<float>(g * y[n - delay]) : 0.0f);
    acc[n] += y[n];
  }
}
void allpass(std::vector<float>& x, int delay, float g) {
  std::vector<float> y(x.size());
  for (size_t n = 0; n < x.size(); ++n) {
    float xd = n >= size_t(delay) ? x[n - delay] : 0.0f;
    float yd = n >= size_t(delay) ? y[n - delay] : 0.0f;
    y[n] = -g * x[n] + xd + g * yd;
  }
  x.swap(y);
}
}  // namespace

void add_reverb(std::vector<float>& audio, double rt60_s, int sample_rate) {
  if (audio.empty()) return;
  const double scale = sample_rate / 44100.0;
  std::vector<float> wet(audio.size(), 0.0f);
  for (int d : {1557, 1617, 1491, 1422}) {
    comb(audio, wet, std::max(1, int(d * scale)), rt60_s, sample_rate);
  }
  allpass(wet, std::max(1, int(225 * scale)), 0.7f);
  allpass(wet, std::max(1, int(556 * scale)), 0.7f);
  // Match the wet energy to the dry energy, then mix half and half.
  double dry_e = 0, wet_e = 0;
  for (size_t i = 0; i < audio.size(); ++i) {
    dry_e += double(audio[i]) * audio[i];
    wet_e += double(wet[i]) * wet[i];
  }
  float k = wet_e > 0 ? static_cast<float>(std::sqrt(dry_e / wet_e)) : 0.0f;
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = 0.5f * audio[i] + 0.5f * k * wet[i];
}

void apply_gain(std::vector<float>& audio, double gain_db) {
  float g = static_cast<float>(std::pow(10.0, gain_db / 20.0));
  for (float& x : audio) x *= g;
}

void limit_peak(std::vector<float>& audio, float peak) {
  float m = 0;
  for (float x : audio) m = std::max(m, std::fabs(x));
  if (m > peak) {
    float g = peak / m;
    for (float& x : audio) x *= g;
  }
}

std::string degrade(std::vector<float>& audio, const DegradeConfig& config, int sample_rate,
                    SplitMix64& rng) {
  // Draw every random number in a fixed order, whether or not the effect applies.
  double u_reverb = rng.uniform(), rt60 = rng.uniform(config.rt60_min, config.rt60_max);
  double u_noise = rng.uniform(), snr = rng.uniform(config.snr_db_min, config.snr_db_max);
  double gain = rng.uniform(config.gain_db_min, config.gain_db_max);
  std::string what;
  if (u_reverb < config.reverb_probability) {
    add_reverb(audio, rt60, sample_rate);
    what += fmt::format("reverb {:.2f}s ", rt60);
  }
  if (u_noise < config.noise_probability) {
    add_noise(audio, snr, rng);
    what += fmt::format("noise {:.1f}dB ", snr);
  }
  apply_gain(audio, gain);
  what += fmt::format("gain {:.1f}dB", gain);
  limit_peak(audio);
  return what;
}

}  // namespace contra::data
